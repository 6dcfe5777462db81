"""Deliveries beside projects in backoff: what refused projects cost the ones that deliver.

In one run, for each number of refused projects (0 first: the baseline): a spool of
`--segments` sealed segments per refused project and `--healthy` segments of one project
that delivers, an uploader at `--concurrency` into the file store, which refuses every
refused project's put at once (403, as a container without the grant). Measured from
the uploader's start until the healthy project's last segment is delivered: wall time,
the process's CPU time and CPU per delivered segment, and the ratio of that CPU to the
baseline's (1.0: refused projects cost the others nothing). The refused projects' first
attempts (one failed put each) are part of the measured time.

    .venv/bin/python bench/backoff_scan.py [--refused 0,200,2000 --segments 20]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stacktrail.archive.spool import SegmentSpec, Spool  # noqa: E402
from stacktrail.archive.stores.base import Bucket  # noqa: E402
from stacktrail.archive.stores.localdir import LocalDirStore  # noqa: E402
from stacktrail.archive.uploader import Uploader  # noqa: E402
from stacktrail.domain.errors import PermanentError  # noqa: E402
from stacktrail.domain.ledger import MemoryLedger  # noqa: E402
from stacktrail.domain.trail import ArchiveFormat, WriteMode  # noqa: E402

REGION = "RegionOne"
HEALTHY = "healthy"
DAYS = [f"2026-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]


class RefusingStore(LocalDirStore):
    """The file store, refusing every project but the healthy one; `done` once it has
    stored `wanted` objects."""

    def __init__(self, root: Path, wanted: int) -> None:
        super().__init__(root)
        self.wanted = wanted
        self.stored = 0
        self.done = asyncio.Event()

    async def put(self, bucket: Bucket, key: str, body: bytes, headers: Mapping[str, str]) -> str:
        if bucket.project_id != HEALTHY:
            raise PermanentError("403 Forbidden", status=403)
        etag = await super().put(bucket, key, body, headers)
        self.stored += 1
        if self.stored >= self.wanted:
            self.done.set()
        return etag


def spec(project: str, day: str) -> SegmentSpec:
    return SegmentSpec(
        project_id=project,
        day=day,
        container="audit",
        prefix="",
        format=ArchiveFormat.NDJSON,
        regions=(REGION,),
        write_mode=WriteMode.RESELLER,
        retention_days=30,
        interval=900.0,
    )


def filled_spool(directory: Path, refused: int, segments: int, healthy: int) -> Spool:
    spool = Spool(directory, segment_max_bytes=1 << 20, max_bytes=1 << 36)
    spool.open()
    items = [
        (spec(f"refused{p}", DAYS[n]), orjson.dumps({"id": f"{p}-{n}"}))
        for p in range(refused)
        for n in range(segments)
    ]
    items += [(spec(HEALTHY, DAYS[n]), orjson.dumps({"id": f"h-{n}"})) for n in range(healthy)]
    for at in range(0, len(items), 5000):
        spool.write(items[at : at + 5000])
    spool.seal_all()
    return spool


async def measure(refused: int, args: argparse.Namespace) -> tuple[float, float]:
    """(wall s, CPU s) until the healthy project's segments are all delivered."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "spool").mkdir()
        spool = filled_spool(Path(tmp) / "spool", refused, args.segments, args.healthy)
        store = RefusingStore(Path(tmp) / "archive", args.healthy)
        uploader = Uploader(
            spool,
            store,
            MemoryLedger(),
            worker="bench",
            concurrency=args.concurrency,
            retry_max=300.0,
            delete_at=lambda _spec: int(datetime(2100, 1, 1, tzinfo=UTC).timestamp()),
        )
        wall, cpu = time.monotonic(), time.process_time()
        running = asyncio.create_task(uploader.run())
        done = asyncio.create_task(store.done.wait())
        await asyncio.wait([done, running], timeout=600, return_when=asyncio.FIRST_COMPLETED)
        if not done.done():
            done.cancel()
            if running.done():
                running.result()  # raises what ended the uploader
            raise RuntimeError(f"{store.stored} of {args.healthy} delivered after 600 s")
        wall, cpu = time.monotonic() - wall, time.process_time() - cpu
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await uploader.aclose()
        spool.close()
    return wall, cpu


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refused", default="0,200,2000", help="numbers of refused projects")
    parser.add_argument("--segments", type=int, default=20, help="sealed segments each")
    parser.add_argument("--healthy", type=int, default=300, help="segments that deliver")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # a refused project's warning each: not measured
    counts = [int(n) for n in args.refused.split(",")]
    if counts[0] != 0:
        counts.insert(0, 0)
    base: float | None = None
    for refused in counts:
        wall, cpu = await measure(refused, args)
        per = cpu / args.healthy
        base = per if base is None else base
        print(
            f"{refused:6d} refused projects ({refused * args.segments:7d} segments waiting): "
            f"{args.healthy} delivered in {wall:6.2f} s, CPU {cpu:6.2f} s, "
            f"{per * 1e3:6.2f} CPU ms per delivery, {per / base:5.2f}x the baseline's"
        )


if __name__ == "__main__":
    asyncio.run(main())
