"""Exactly one scheduler acts: advisory lock on PostgreSQL, file lock on SQLite; when the
leader dies another process takes over."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from stacktrail.db import engine as db
from stacktrail.db.leader import FileLeaderLock, LocalLeaderLock, PostgresLeaderLock, leader_lock
from stacktrail.scheduler import leader_info
from tests.support.config_store import fresh_database
from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT

SCRIPT = """
import asyncio, logging, sys
from pathlib import Path
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.scheduler import SchedulerConfig, run_scheduler
from stacktrail.db import engine as db
from stacktrail.db.trail_store import TrailStore
from tests.support.config_store import make_settings

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
url, holder, root = sys.argv[1:4]

async def main():
    settings = make_settings(database_url=url, archive_store="file")
    store = TrailStore(db.create_engine(url), settings)
    config = SchedulerConfig(tick=0.2, lock_retry=0.3, lock_check=0.3)
    await run_scheduler(
        settings, store, None, LocalDirStore(Path(root)), asyncio.Event(),
        config=config, holder=holder,
    )

asyncio.run(main())
"""


async def test_postgres_lock_is_exclusive_until_released(tmp_path: Path) -> None:
    async with fresh_database("postgresql", tmp_path) as url:
        first = PostgresLeaderLock(make_url(url))
        second = PostgresLeaderLock(make_url(url))
        try:
            assert await first.try_acquire()
            assert await first.try_acquire()  # held already
            assert not await second.try_acquire()
            assert await first.still_held()
            await first.release()
            assert await second.try_acquire()
        finally:
            await first.release()
            await second.release()


async def test_file_lock_is_exclusive_until_released(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    first, second = leader_lock(engine), leader_lock(engine)
    assert isinstance(first, FileLeaderLock)
    assert first.path == tmp_path / "c.db.scheduler.lock"
    assert await first.try_acquire()
    assert not await second.try_acquire()
    await first.release()
    assert await second.try_acquire()
    await second.release()
    await engine.dispose()
    memory = db.create_engine("sqlite+aiosqlite:///:memory:")
    local_a, local_b = leader_lock(memory), leader_lock(memory)
    assert isinstance(local_a, LocalLeaderLock)
    assert await local_a.try_acquire()
    assert not await local_b.try_acquire()
    await local_a.release()
    await memory.dispose()


class Process:
    """A scheduler subprocess whose log lines are collected as they come."""

    def __init__(self, url: str, holder: str, root: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STACKTRAIL_")}
        self.popen = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, url, holder, str(root)],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    async def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log:
            assert time.monotonic() < deadline, f"no {text!r} in: {self.log}"
            assert self.popen.poll() is None, f"exited: {self.log}"
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)


async def _holders_during(url: str, seconds: float) -> set[str]:
    engine = db.create_engine(url)
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            info = await leader_info(engine)
            if info is not None and time.time() - _epoch(info.heartbeat) < 2:
                seen.add(info.holder)
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
    return seen


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def _wait_for_holder(url: str, holder: str, timeout: float) -> float:
    engine = db.create_engine(url)
    start = time.monotonic()
    try:
        while time.monotonic() - start < timeout:
            info = await leader_info(engine)
            if info is not None and info.holder == holder:
                return time.monotonic() - start
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
    raise AssertionError(f"{holder} did not take over within {timeout} s")


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_one_of_two_processes_leads_and_the_other_takes_over(
    backend: str, tmp_path: Path
) -> None:
    async with fresh_database(backend, tmp_path) as url:
        await db.upgrade(url)
        first = Process(url, "first", tmp_path)
        second: Process | None = None
        try:
            await _wait_for_holder(url, "first", 60)
            second = Process(url, "second", tmp_path)
            await second.wait_for_line("another process leads; second waits", 60)
            assert await _holders_during(url, 2.0) == {"first"}, "only the leader acts"
            assert "leading as second" not in second.log
            first.kill()
            took = await _wait_for_holder(url, "second", 30)
            assert took < 15
            await second.wait_for_line("leading as second", 10)
            assert await _holders_during(url, 1.0) == {"second"}
        finally:
            first.kill()
            if second is not None:
                second.kill()
