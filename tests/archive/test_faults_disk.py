"""A full disk under the spool (a small tmpfs): logged once, readiness degrades, nothing
is lost, and everything is spooled once there is room again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from stacktrail.archive.sink import ArchiveSink
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.domain.delivery import Outcome
from stacktrail.domain.ledger import MemoryLedger
from tests.support.sinks import BEFORE_MIDNIGHT, Acks, make_event, make_trail, sink_settings


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


async def test_a_full_disk_is_logged_once_degrades_readiness_and_loses_nothing(
    tmp_path: Path, small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    filler = small_disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as fh:
        fh.write(b"\0" * (480 << 10))  # leaves a few KiB for the spool
    settings = sink_settings(tmp_path, spool_dir=small_disk / "spool", spool_max_bytes=1 << 20)
    sink = ArchiveSink(settings, LocalDirStore(tmp_path / "archive"), MemoryLedger())
    await sink.start()
    acks = Acks()
    project = "fade0000fade0000fade0000fade0000"
    trail = make_trail(project, "st-disk")
    events = [make_event(project, BEFORE_MIDNIGHT, i) for i in range(400)]
    caplog.set_level(logging.INFO, logger="stacktrail.archive.sink")

    async def feed() -> None:
        for event in events:
            await sink.put(acks.record(trail, event))

    feeder = asyncio.create_task(feed())
    try:
        for _ in range(100):  # the writer keeps failing (ENOSPC) and puts wait for room
            if sink.health(300):
                break
            await asyncio.sleep(0.1)
        assert "spool writes fail: OSError: [Errno 28]" in sink.health(300)
        await asyncio.sleep(3)  # three more retries, none of them logged
        failures = [r for r in caplog.records if "write failed" in r.getMessage()]
        assert len(failures) == 1, [r.getMessage() for r in failures]
        assert "No space left on device" in failures[0].getMessage()
        assert Outcome.REJECTED not in acks.outcomes.values()
        assert REGISTRY.get_sample_value("stacktrail_spool_bytes") == 0  # nothing durable

        os.unlink(filler)  # room again
        await asyncio.wait_for(feeder, 30)
        await acks.wait(len(events))
        assert set(acks.outcomes.values()) == {Outcome.DELIVERED}
        assert any("works again" in r.getMessage() for r in caplog.records)
        assert sink.health(300) == ""
        assert (REGISTRY.get_sample_value("stacktrail_spool_bytes") or 0) > 0
        assert (REGISTRY.get_sample_value("stacktrail_archive_oldest_undelivered_seconds") or 0) > 0
    finally:
        feeder.cancel()
        await sink.stop(2)
