"""A change of the operator's retention defaults re-dates the objects of exactly the
projects whose effective retention it moves (overrides kept, clamped ones included)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from stacktrail.archive.retention import ArchiveRetention
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.audit import Actor
from stacktrail.domain.document import TrailOverrides
from stacktrail.domain.ledger import DeliveredObject

ACTOR = Actor("u1", "tester")


def delivered(project: str) -> DeliveredObject:
    now = datetime.now(UTC)
    return DeliveredObject(
        project, "RegionOne", "c", f"{project}/k", "2025-01-01", 1, 1, "0" * 64, now
    )


async def test_defaults_change_queues_the_projects_it_moves(
    own_store: TrailStore, tmp_path: Path
) -> None:
    store = own_store
    ledger = SqlLedger(store.engine)
    projects = {"follows": {}, "own": {"retention_days": 30}, "long": {"retention_days": 900}}
    projects["touched"] = {"archive": {"interval": "1h"}}  # configured, retention inherited
    for project, overrides in projects.items():
        await store.put_trail(project, TrailOverrides.model_validate(overrides), ACTOR)
        await ledger.record_delivery(delivered(project))
    await ledger.record_delivery(delivered("never"))  # never configured
    retention = ArchiveRetention(store, LocalDirStore(tmp_path))
    assert await retention.detect_changes() == []

    defaults = await store.get_defaults()
    await store.put_defaults(replace(defaults, default_retention_days=60), ACTOR)
    assert sorted(await retention.detect_changes()) == ["follows", "never", "touched"]

    lower = replace(defaults, default_retention_days=60, max_retention_days=365)
    await store.put_defaults(lower, ACTOR)
    assert await retention.detect_changes() == ["long"]  # clamped from 900 to 365
    assert (await store.get_trail("long")).trail().retention_days == 365
