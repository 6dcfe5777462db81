"""Engine creation and schema migrations of the config store (Alembic, run in-process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from stacktrail.domain.trail import TrailSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30


class StoreError(Exception):
    """The config store cannot be used; the message is meant for the operator."""


class NotMigratedError(StoreError):
    """The database schema is not at the revision this version of stacktrail needs."""


def display_url(database_url: str) -> str:
    """The URL with its password masked, for messages and logs."""
    return make_url(database_url).render_as_string(hide_password=True)


def _set_sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def create_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for `sqlite+aiosqlite://` or `postgresql+asyncpg://` URLs.

    A SQLite file's parent directory is created; SQLite runs in WAL mode so that readers
    (the pipeline's reload) never wait for a writer.
    """
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_S})
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        return engine
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        return create_async_engine(url, **kwargs)
    raise StoreError(
        f"unsupported database URL {display_url(database_url)}: "
        "use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db"
    )


def _alembic_config(
    connection: Connection | None = None, settings: TrailSettings | None = None
) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    if settings is not None:  # data migrations that need the operator's settings read them
        config.attributes["trail_settings"] = settings
    return config


def head_revision() -> str:
    """The revision this version of stacktrail expects."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def _upgrade(connection: Connection, revision: str, settings: TrailSettings | None) -> None:
    command.upgrade(_alembic_config(connection, settings), revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(
    database_url: str, revision: str = "head", *, settings: TrailSettings | None = None
) -> None:
    """Bring the schema to `revision` (default: the newest); safe to run repeatedly.
    `settings` lets data migrations compare stored values with the operator's settings."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, revision, settings)
    finally:
        await engine.dispose()


async def downgrade(
    database_url: str, revision: str, *, settings: TrailSettings | None = None
) -> None:
    """Take the schema (and data migrations) back to `revision`."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(
                lambda sync: command.downgrade(_alembic_config(sync, settings), revision)
            )
    finally:
        await engine.dispose()


async def current_revision(database_url: str) -> str | None:
    """The schema revision of the database; None when it was never migrated."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
    finally:
        await engine.dispose()


async def check_current(database_url: str) -> None:
    """Raise NotMigratedError unless the database is at the expected revision."""
    try:
        current = await current_revision(database_url)
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"database at {display_url(database_url)} is unreachable: {exc}") from exc
    expected = head_revision()
    if current == expected:
        return
    known = {
        script.revision
        for script in ScriptDirectory.from_config(_alembic_config()).walk_revisions()
    }
    where = display_url(database_url)
    if current is not None and current not in known:
        raise NotMigratedError(
            f"database at {where} has revision {current}, newer than this version of "
            f"stacktrail knows (expected {expected}): upgrade stacktrail"
        )
    raise NotMigratedError(
        f"database at {where} is not migrated (revision {current or 'none'}, "
        f"expected {expected}): run `stacktrail db upgrade`"
    )
