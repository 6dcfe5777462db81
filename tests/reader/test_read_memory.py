"""`stacktrail read` streams 100,000 records in bounded memory (a folder; real Swift in
bench/reader.py): its peak RSS barely grows from 10,000 records to 100,000."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from stacktrail.archive.stores.localdir import LocalDirStore
from tests.support.bulk_archive import REGION, measure_read, write_archive


@pytest.mark.slow
async def test_read_streams_100k_records_in_bounded_memory(tmp_path: Path) -> None:
    runs = []
    for count in (10_000, 100_000):
        project = uuid.uuid4().hex
        root = tmp_path / str(count)
        start, end = await write_archive(LocalDirStore(root), project, "audit", records=count)
        args = ["--project", project, "--from", start.isoformat(), "--to", end.isoformat()]
        env = {"STACKTRAIL_ARCHIVE_REGIONS": REGION}
        runs.append(measure_read([*args, "--dir", str(root / "audit")], env))
        assert runs[-1].lines == count
    small, large = runs
    # ten times the records, not ten times the memory: what grows is one day's id set
    assert large.peak_rss_mib < small.peak_rss_mib + 40, (small, large)
    assert large.peak_rss_mib < 400, large  # most of it is the command's imports
    print(f"\nread: {small} / {large}; {large.per_second:.0f} records/s")
