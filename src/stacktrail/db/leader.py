"""The scheduler's leader lock: exactly one process acts at a time.

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) held on a
  connection of its own (an engine without a pool, so nothing else ever uses or recycles
  it). When the leader dies its connection closes and the server releases the lock; a
  waiting process takes it at its next attempt. The leader checks its connection every
  few seconds and stops acting when it is gone.
- SQLite: an exclusive `fcntl.flock` on `<database file>.scheduler.lock`. The kernel
  drops it when the process dies. Processes sharing a SQLite file share a host, so a
  file lock is exactly as wide as the database. An in-memory database gets a lock of
  this process only.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

LOCK_NAME = "stacktrail-scheduler"
CHECK_TIMEOUT_S = 10.0


def lock_key(name: str = LOCK_NAME) -> int:
    """A signed 64-bit advisory lock key derived from a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class LeaderLock(Protocol):
    async def try_acquire(self) -> bool:
        """Take the lock if free; True when this process holds it (now or already)."""
        ...

    async def still_held(self) -> bool:
        """False when the lock may have been lost (then stop acting at once)."""
        ...

    async def release(self) -> None: ...


class PostgresLeaderLock:
    def __init__(self, url: URL, name: str = LOCK_NAME) -> None:
        self._engine: AsyncEngine = create_async_engine(url, poolclass=NullPool)
        self._key = lock_key(name)
        self._conn: AsyncConnection | None = None

    async def try_acquire(self) -> bool:
        if self._conn is not None:
            return await self.still_held()
        conn = await self._engine.connect()
        try:
            got = bool(
                await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key})
            )
            await conn.commit()  # the lock is session-level: it outlives the transaction
        except BaseException:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def still_held(self) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            # A session-level lock lives as long as the session: a live connection holds it.
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await conn.scalar(text("SELECT 1"))
                await conn.commit()
        except Exception as exc:
            log.warning("scheduler: the leader lock connection failed: %s", exc)
            await self._drop()
            return False
        return True

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    async def release(self) -> None:
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
                await conn.commit()
        await self._drop()
        await self._engine.dispose()


_LOCAL_LOCKS: dict[str, asyncio.Lock] = {}


class FileLeaderLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    async def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    async def still_held(self) -> bool:
        return self._fd is not None

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class LocalLeaderLock:
    """In-memory SQLite: one process only; the lock is shared inside it by name."""

    def __init__(self, name: str = LOCK_NAME) -> None:
        self._lock = _LOCAL_LOCKS.setdefault(name, asyncio.Lock())
        self._held = False

    async def try_acquire(self) -> bool:
        if self._held:
            return True
        if self._lock.locked():
            return False
        await self._lock.acquire()
        self._held = True
        return True

    async def still_held(self) -> bool:
        return self._held

    async def release(self) -> None:
        if self._held:
            self._held = False
            self._lock.release()


def sqlite_lock_path(database: str) -> Path:
    return Path(database).expanduser().resolve().with_name(Path(database).name + ".scheduler.lock")


def leader_lock(engine: AsyncEngine, name: str = LOCK_NAME) -> LeaderLock:
    """The lock that fits the config store's database (see the module doc)."""
    url = engine.url
    backend = url.get_backend_name()
    if backend == "postgresql":
        return PostgresLeaderLock(url, name)
    if backend == "sqlite":
        database = url.database or ""
        if not database or database == ":memory:" or database.startswith("file:"):
            return LocalLeaderLock(name)
        return FileLeaderLock(sqlite_lock_path(database))
    raise ValueError(f"no leader lock for database backend {backend!r}")
