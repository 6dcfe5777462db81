"""The digest chain heads in `scheduler_state`: per project and region, read back exactly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from stacktrail.archive.retention import set_state
from stacktrail.db.digest_chain import ChainHead, chain_head, chain_heads, state_name
from stacktrail.db.trail_store import TrailStore


async def test_heads_are_per_project_even_when_ids_look_like_wildcards(store: TrailStore) -> None:
    engine = store.engine
    stem = uuid.uuid4().hex[:8]
    wild, plain = f"{stem}_x", f"{stem}ax"  # `_` matches any one character in LIKE
    end = datetime(2026, 12, 2, 11, tzinfo=UTC)
    delivered = end + timedelta(seconds=40)
    head = ChainHead(end, "k", "s" * 64, "sig", end - timedelta(hours=1), "fp", delivered)
    await set_state(engine, state_name(wild, "RegionOne"), head.to_json())
    await set_state(engine, state_name(plain, "RegionOne"), {"end": "2026-12-02T10:00:00Z"})
    await set_state(engine, state_name(plain, "RegionTwo"), head.to_json())
    assert await chain_heads(engine, wild) == {"RegionOne": head}
    heads = await chain_heads(engine, plain)
    assert sorted(heads) == ["RegionOne", "RegionTwo"]
    assert heads["RegionOne"].key is None
    assert heads["RegionOne"].delivered_at is None  # a started chain has delivered nothing
    assert await chain_head(engine, wild, "RegionOne") == head
    assert await chain_head(engine, wild, "RegionTwo") is None


async def test_a_head_written_before_the_delivery_time_was_kept_uses_the_row_time(
    store: TrailStore,
) -> None:
    project = uuid.uuid4().hex
    old = {
        "end": "2026-12-02T11:00:00Z",
        "key": f"{project}/R/digests/2026/12/02/{project}_R_20261202T1000Z_digest.json",
        "sha256": "0",
        "signature": "s",
    }
    before = datetime.now(UTC)
    await set_state(store.engine, state_name(project, "R"), old)
    head = await chain_head(store.engine, project, "R")
    assert head is not None
    assert head.start == datetime(2026, 12, 2, 10, tzinfo=UTC)
    assert head.delivered_at is not None
    assert head.delivered_at >= before - timedelta(seconds=1)
