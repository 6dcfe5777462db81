from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from stacktrail.trails import db
from stacktrail.trails.tables import metadata
from tests.trails.fixtures import BACKENDS, fresh_database


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
