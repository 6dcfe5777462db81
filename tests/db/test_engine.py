from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from stacktrail.db import engine as db
from stacktrail.db import tables as t
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.tables import metadata
from tests.support.config_store import BACKENDS, fresh_database

DAILY_REVISION = "0003_ingest_daily"
EVENT_TYPES_REVISION = "0004_project_event_types"
OVERRIDES_REVISION = "0005_trail_overrides"
HEAD_REVISION = "0007_digests"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def test_one_line_of_revisions() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [HEAD_REVISION] == [db.head_revision()]
    assert script.get_revision(HEAD_REVISION).down_revision == OVERRIDES_REVISION
    assert script.get_revision(OVERRIDES_REVISION).down_revision == EVENT_TYPES_REVISION
    assert script.get_revision(EVENT_TYPES_REVISION).down_revision == DAILY_REVISION
    assert script.get_revision(DAILY_REVISION).down_revision == "0002_jobs"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_fresh_database_upgrade_then_current(backend: str, db_dir: Path) -> None:
    async with fresh_database(backend, db_dir) as url:
        await db.upgrade(url)
        await db.check_current(url)
        assert await db.current_revision(url) == db.head_revision()
        await db.upgrade(url)  # again: nothing to do
        engine = db.create_engine(url)
        try:
            async with engine.connect() as conn:
                tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        finally:
            await engine.dispose()
        assert set(metadata.tables) <= tables


@pytest.mark.parametrize("backend", BACKENDS)
async def test_daily_counts_start_from_the_hourly_ones(backend: str, db_dir: Path) -> None:
    """Upgrading a database with hourly counters fills the daily ones from them; a
    downgrade drops the table and the upgrade runs again."""
    hours = {
        ("p1", datetime(2025, 6, 1, 0, tzinfo=UTC)): 1,
        ("p1", datetime(2025, 6, 1, 23, tzinfo=UTC)): 2,
        ("p1", datetime(2025, 6, 2, 0, tzinfo=UTC)): 40,
        ("p2", datetime(2025, 6, 1, 12, tzinfo=UTC)): 300,
    }
    async with fresh_database(backend, db_dir) as url:
        await db.upgrade(url, "0002_jobs")
        engine = db.create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    t.ingest_counts.insert(),
                    [{"project_id": p, "hour": h, "count": n} for (p, h), n in hours.items()],
                )
            await db.upgrade(url)
            await db.check_current(url)
            query = select(t.ingest_daily).order_by(t.ingest_daily.c.project_id, "day")
            async with engine.connect() as conn:
                rows = [tuple(row) for row in (await conn.execute(query)).all()]
            assert rows == [
                ("p1", date(2025, 6, 1), 3),
                ("p1", date(2025, 6, 2), 40),
                ("p2", date(2025, 6, 1), 300),
            ]
            days = await SqlLedger(engine).events_per_day("p1", 3, datetime(2025, 6, 2, tzinfo=UTC))
            assert [d.count for d in days] == [0, 3, 40]

            async with engine.begin() as conn:
                await conn.run_sync(
                    lambda sync: command.downgrade(alembic_config(sync), "0002_jobs")
                )
            async with engine.connect() as conn:
                tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert "ingest_daily" not in tables
            assert "ingest_counts" in tables
        finally:
            await engine.dispose()
        await db.upgrade(url)
        assert await db.current_revision(url) == HEAD_REVISION


@pytest.mark.parametrize("backend", BACKENDS)
async def test_unmigrated_database_is_refused_clearly(backend: str, db_dir: Path) -> None:
    async with fresh_database(backend, db_dir) as url:
        with pytest.raises(db.NotMigratedError) as caught:
            await db.check_current(url)
        message = str(caught.value)
        assert f"is not migrated (revision none, expected {db.head_revision()})" in message
        assert "run `stacktrail db upgrade`" in message


async def test_older_revision_is_refused(db_dir: Path) -> None:
    async with fresh_database("sqlite", db_dir) as url:
        await db.upgrade(url)
        engine = db.create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff'")
        finally:
            await engine.dispose()
        with pytest.raises(db.NotMigratedError, match="newer than this version"):
            await db.check_current(url)


async def test_sqlite_parent_directory_is_created(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/deep/er/stacktrail.db"
    await db.upgrade(url)
    assert (tmp_path / "deep" / "er" / "stacktrail.db").is_file()


def test_password_is_masked_and_unknown_backends_refused() -> None:
    url = "postgresql+asyncpg://user:secret@db.example/stacktrail"
    assert "secret" not in db.display_url(url)
    with pytest.raises(db.StoreError, match="unsupported database URL"):
        db.create_engine("mysql+aiomysql://user:secret@db/x")


async def test_unreachable_database(db_dir: Path) -> None:
    with pytest.raises(db.StoreError, match="unreachable") as caught:
        await db.check_current("postgresql+asyncpg://postgres:pw@127.0.0.1:1/nothing")
    assert "pw" not in str(caught.value)
