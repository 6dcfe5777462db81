from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import PreconditionFailed, TrailStore
from stacktrail.domain.audit import Actor
from stacktrail.domain.defaults import OperatorDefaults
from stacktrail.domain.document import TrailInput, TrailSpec, resolve
from stacktrail.domain.ledger import DeliveryError
from stacktrail.domain.trail import ArchiveFormat

ALICE = Actor("u-alice", "alice", project_id="p-alice")
BOB = Actor("u-bob", "bob")


async def spec_of(store: TrailStore, **members: object) -> TrailSpec:
    defaults = await store.get_defaults()
    return resolve(TrailInput.model_validate(members), defaults, store.settings).spec


async def test_unconfigured_trail_reads_as_defaults(store: TrailStore, project_id: str) -> None:
    stored = await store.get_trail(project_id)
    assert stored.version == 0
    assert not stored.configured
    assert stored.updated_at is None
    assert stored.spec.retention_days == 90
    assert stored.document() is None


async def test_put_bumps_version_and_records_history(store: TrailStore, project_id: str) -> None:
    old, new = await store.put_trail(project_id, await spec_of(store, retention_days=30), ALICE)
    assert (old.version, new.version) == (0, 1)
    assert new.configured
    assert new.spec.retention_days == 30
    assert new.updated_by is not None
    assert new.updated_by.user_name == "alice"
    _, newer = await store.put_trail(
        project_id, await spec_of(store, retention_days=31), BOB, frozenset({1})
    )
    assert newer.version == 2
    assert (await store.get_trail(project_id)).spec.retention_days == 31

    changes = await store.changes(project_id)
    assert [(c.action, c.version, c.user_name) for c in changes] == [
        ("update/trail", 2, "bob"),
        ("update/trail", 1, "alice"),
    ]
    assert changes[1].old is None
    assert changes[1].new is not None
    assert changes[1].new["retention_days"] == 30
    assert changes[0].old == changes[1].new
    assert changes[1].user_project_id == "p-alice"
    assert [c.version for c in await store.changes(project_id, before=changes[0].id)] == [1]


async def test_stale_if_match_fails(store: TrailStore, project_id: str) -> None:
    spec = await spec_of(store)
    await store.put_trail(project_id, spec, ALICE, frozenset({0}))
    with pytest.raises(PreconditionFailed) as caught:
        await store.put_trail(project_id, spec, BOB, frozenset({0}))
    assert caught.value.current_version == 1
    with pytest.raises(PreconditionFailed):
        await store.delete_trail(project_id, BOB, frozenset())
    assert len(await store.changes(project_id)) == 1


async def test_concurrent_writers_with_the_same_version_one_wins(
    store: TrailStore, project_id: str
) -> None:
    spec = await spec_of(store)
    results = await asyncio.gather(
        *(store.put_trail(project_id, spec, ALICE, frozenset({0})) for _ in range(5)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, PreconditionFailed) for r in results if isinstance(r, BaseException))
    assert (await store.get_trail(project_id)).version == 1


async def test_delete_resets_but_keeps_counting(store: TrailStore, project_id: str) -> None:
    assert (await store.delete_trail(project_id, ALICE))[1].version == 0  # nothing to reset
    await store.put_trail(project_id, await spec_of(store, enabled=False), ALICE)
    old, new = await store.delete_trail(project_id, BOB, frozenset({1}))
    assert old.configured
    assert not new.configured
    assert new.version == 2  # a stale ETag from before the reset can never match again
    assert new.spec.enabled is True
    again_old, again_new = await store.delete_trail(project_id, BOB)
    assert again_old.version == again_new.version == 2
    changes = await store.changes(project_id)
    assert [c.action for c in changes] == ["delete/trail", "update/trail"]
    assert changes[0].new is None


async def test_list_filters_and_pages(store: TrailStore) -> None:
    tag = uuid.uuid4().hex[:10]
    ids = [f"{tag}-{i:02d}" for i in range(7)]
    for i, project in enumerate(ids):
        await store.put_trail(project, await spec_of(store, enabled=i % 2 == 0), ALICE)
    await store.delete_trail(ids[6], ALICE)  # reset: no longer listed
    ledger = SqlLedger(store.engine)
    await ledger.record_error(
        DeliveryError(ids[1], "RegionOne", "403 Forbidden", datetime.now(UTC))
    )

    page = await store.list_trails(search=tag, limit=4)
    assert [t.project_id for t in page.trails] == ids[:4]
    assert page.next_marker == ids[3]
    assert page.in_error == {ids[1]}
    rest = await store.list_trails(search=tag, limit=4, marker=page.next_marker)
    assert [t.project_id for t in rest.trails] == ids[4:6]
    assert rest.next_marker is None
    by_offset = await store.list_trails(search=tag.upper(), limit=2, offset=2)
    assert [t.project_id for t in by_offset.trails] == ids[2:4]
    enabled = await store.list_trails(search=tag, enabled=True)
    assert [t.project_id for t in enabled.trails] == [ids[0], ids[2], ids[4]]
    failing = await store.list_trails(search=tag, in_error=True)
    assert [t.project_id for t in failing.trails] == [ids[1]]
    healthy = await store.list_trails(search=tag, in_error=False)
    assert ids[1] not in [t.project_id for t in healthy.trails]
    assert (await store.list_trails(search="no_such-thing_")).trails == []


async def test_changed_since_returns_only_changes(store: TrailStore, project_id: str) -> None:
    start = await store.config_version()
    everything = await store.changed_since(None)
    assert everything.defaults_changed
    await store.put_trail(project_id, await spec_of(store), ALICE)
    delta = await store.changed_since(start)
    assert delta.version > start
    assert project_id in {t.project_id for t in delta.trails}
    assert not delta.defaults_changed
    assert (await store.changed_since(delta.version)).trails == []


async def test_defaults_round_trip(own_store: TrailStore) -> None:
    store = own_store
    initial = await store.get_defaults()
    assert initial.version == 0
    assert initial == OperatorDefaults.from_settings(store.settings)
    new = OperatorDefaults(
        default_retention_days=30,
        max_retention_days=400,
        default_interval=timedelta(minutes=5),
        min_interval=timedelta(seconds=30),
        default_container="logs",
        default_format=ArchiveFormat.NDJSON,
    )
    start = await store.config_version()
    old, stored = await store.put_defaults(new, ALICE, frozenset({0}))
    assert old.version == 0
    assert stored.version == 1
    assert stored.default_container == "logs"
    assert stored.updated_by is not None
    assert stored.updated_by.user_id == "u-alice"
    with pytest.raises(PreconditionFailed):
        await store.put_defaults(new, BOB, frozenset({0}))
    assert (await store.changed_since(start)).defaults_changed
    unconfigured = await store.get_trail("never-configured")
    assert unconfigured.spec.retention_days == 30
    assert unconfigured.spec.archive.container == "logs"
    assert unconfigured.spec.archive.interval == "5m"
    history = await store.changes(None)
    assert history[0].action == "update/defaults"
    assert history[0].new is not None
    assert history[0].new["default_format"] == "ndjson"
