"""Migration 0005_trail_overrides on a database of complete documents written under older
defaults (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from stacktrail.config import Settings
from stacktrail.db import engine as db
from stacktrail.db import tables as t
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.audit import Actor
from stacktrail.domain.defaults import OperatorDefaults
from stacktrail.domain.document import TrailInput, TrailSpec, requested_spec
from stacktrail.domain.trail import ArchiveFormat
from tests.support.config_store import BACKENDS, fresh_database

ALICE = Actor("u-alice", "alice")
BEFORE = "0004_project_event_types"


def defaults(retention: int, interval_m: int, container: str, fmt: str) -> OperatorDefaults:
    return OperatorDefaults(
        retention, 3650, timedelta(minutes=interval_m), timedelta(minutes=1), container,
        ArchiveFormat(fmt),
    )  # fmt: skip


def complete(store: TrailStore, members: dict[str, Any], under: OperatorDefaults) -> TrailSpec:
    """The complete document a write stored before overrides (defaults copied in)."""
    return requested_spec(TrailInput.model_validate(members).requested(), under, store.settings)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_complete_documents_become_overrides(
    backend: str, db_dir: Path, settings: Settings
) -> None:
    async with fresh_database(backend, db_dir) as url:
        await db.upgrade(url, BEFORE)
        store = TrailStore(db.create_engine(url), settings)
        try:
            d0 = await store.get_defaults()  # from the settings: 90 days, 15m, audit-trail
            await store.put_trail("a", complete(store, {"retention_days": 30}, d0), ALICE)
            d1 = defaults(60, 5, "logs-v1", "json")
            await store.put_defaults(d1, ALICE)
            await store.put_trail(
                "b", complete(store, {"archive": {"container": "mine"}}, d1), ALICE
            )
            # a later PATCH of a: the old code merged it onto a's stored (d0) values
            a1 = (await store.get_trail("a")).spec.model_dump(mode="json")
            a1["archive"]["format"] = "csv"
            await store.put_trail("a", TrailSpec.model_validate(a1), ALICE)
            await store.put_trail("gone", complete(store, {"enabled": False}, d1), ALICE)
            await store.delete_trail("gone", ALICE)
            # c lost its history (restored from a dump without it): judged by today's defaults
            d2 = defaults(120, 10, "logs-v2", "ndjson")
            await store.put_defaults(d2, ALICE)
            c_doc = complete(store, {"retention_days": 45}, d2).model_dump(mode="json")
            c_doc["archive"]["interval"] = "10m"
            async with store.engine.begin() as conn:
                await conn.execute(
                    insert(t.trails).values(
                        project_id="c",
                        config=c_doc,
                        enabled=True,
                        version=3,
                        seq=0,
                        updated_at=datetime.now(UTC),
                        updated_by_id="u",
                        updated_by_name="restore",
                    )
                )
            counter = await store.config_version()
            async with store.engine.connect() as conn:
                history = await conn.scalar(select(func.count()).select_from(t.trail_changes))
        finally:
            await store.close()

        await db.upgrade(url, settings=settings)

        store = TrailStore(db.create_engine(url), settings)
        try:
            a = await store.get_trail("a")
            b = await store.get_trail("b")
            c = await store.get_trail("c")
            assert a.overrides.document() == {"retention_days": 30, "archive": {"format": "csv"}}
            assert b.overrides.document() == {"archive": {"container": "mine"}}
            assert c.overrides.document() == {"retention_days": 45}
            assert (a.version, b.version, c.version) == (2, 1, 3)  # ETags stay valid
            # what they inherited now follows today's defaults
            assert a.spec.archive.interval == "10m"
            assert a.spec.archive.container == "logs-v2"
            assert b.spec.retention_days == 120
            assert not (await store.get_trail("gone")).configured
            assert await store.config_version() == counter + 1  # running processes reload
            async with store.engine.connect() as conn:
                after = await conn.scalar(select(func.count()).select_from(t.trail_changes))
            assert after == history  # the history stays as recorded

            # downgrade: complete documents again, from today's defaults
            await db.downgrade(url, BEFORE, settings=settings)
            async with store.engine.connect() as conn:
                rows = dict(
                    (await conn.execute(select(t.trails.c.project_id, t.trails.c.config))).all()
                )
            assert TrailSpec.model_validate(rows["a"]).archive.interval == "10m"
            assert TrailSpec.model_validate(rows["a"]).retention_days == 30
            assert rows["gone"] is None
        finally:
            await store.close()
