"""A large archive (many objects of many records) written straight into a store, for the
reader's memory and throughput checks (tests/reader, bench/reader.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from stacktrail.archive.layout import build_body, object_headers, object_key, spec_delete_at
from stacktrail.archive.spool import SegmentSpec
from stacktrail.archive.stores.base import Bucket, ObjectStore
from stacktrail.domain.trail import ArchiveFormat, WriteMode
from tests.support.corpus import make_event

REGION = "RegionOne"
START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)


async def write_archive(
    objects: ObjectStore,
    project: str,
    container: str,
    *,
    records: int,
    per_object: int = 5000,
    fmt: ArchiveFormat = ArchiveFormat.NDJSON,
) -> tuple[datetime, datetime]:
    """`records` events over two days in objects of `per_object`; returns the frame."""
    bucket = Bucket(project, REGION, container, WriteMode.RESELLER)
    await objects.ensure_container(bucket)
    span = timedelta(days=2)
    step = span / records
    for first in range(0, records, per_object):
        count = min(per_object, records - first)
        times = [START + step * (first + i) for i in range(count)]
        spec = SegmentSpec(
            project_id=project,
            day=times[0].date().isoformat(),
            container=container,
            prefix="",
            format=fmt,
            regions=(REGION,),
            write_mode=WriteMode.RESELLER,
            retention_days=30,
            interval=60.0,
        )
        body = build_body(spec, [orjson.dumps(make_event(project, t)) for t in times])
        key = object_key(
            spec, REGION, times[-1].strftime("%Y%m%dT%H%MZ"), "bulk", uuid.uuid4().hex[:8]
        )
        await objects.put(bucket, key, body.data, object_headers(body, spec_delete_at(spec)))
    return START, START + span


@dataclass(frozen=True, slots=True)
class ReadRun:
    lines: int
    seconds: float
    peak_rss_mib: float

    @property
    def per_second(self) -> float:
        return self.lines / self.seconds


def measure_read(args: list[str], env: dict[str, str]) -> ReadRun:
    """Run `stacktrail read ARGS`, count its output lines, and its peak RSS: the command's
    own high-water mark (VmHWM, read while it runs). Not wait4's ru_maxrss: on Linux that
    also counts the forked copy of this (large, long-running) test process before exec."""
    command = [str(Path(sys.executable).parent / "stacktrail"), "read", *args]
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, env={**os.environ, **env})
    assert proc.stdout is not None
    lines = 0
    peak_kib = 0
    while chunk := proc.stdout.read(1 << 20):
        lines += chunk.count(b"\n")
        peak_kib = max(peak_kib, _high_water_kib(proc.pid))
    proc.wait()
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"stacktrail read exited {proc.returncode}")
    return ReadRun(lines, seconds, peak_kib / 1024)


def _high_water_kib(pid: int) -> int:
    """The process's peak resident set so far (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0
