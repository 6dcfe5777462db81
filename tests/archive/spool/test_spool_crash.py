"""A spool writer killed with SIGKILL, or failing mid-batch, loses no acknowledged record.

The writer runs in a child process and prints the number of the last record of each
batch after `Spool.write` returned (the moment the archive sink would ack). The parent
kills it at a random instant, opens the spool like a restarted process, and checks that
every acknowledged record is there, in order, and that every file ends on a whole frame.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest

from stacktrail.archive.spool import Spool
from stacktrail.archive.spool.framing import scan
from stacktrail.archive.spool.journal import JOURNAL_MAGIC

WRITER = textwrap.dedent(
    """
    import os, resource, signal, sys
    import orjson
    from stacktrail.domain.trail import ArchiveFormat
    from stacktrail.archive.spool import SegmentSpec, Spool
    from stacktrail.domain.trail import WriteMode

    directory, segment_max, batch_size, fsize_limit = sys.argv[1:5]
    if int(fsize_limit):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(fsize_limit), int(fsize_limit)))

    def spec(project):
        return SegmentSpec(project, "2024-05-17", "audit", "", ArchiveFormat.JSON,
                           ("RegionOne",), WriteMode.RESELLER, 30, 3600.0)

    spool = Spool(directory, segment_max_bytes=int(segment_max), max_bytes=1 << 40)
    spool.open()
    n = 0
    while True:
        batch = []
        for _ in range(int(batch_size)):
            body = {"id": f"event-{n:08d}", "n": n, "pad": "x" * (200 + n % 700)}
            batch.append((spec(f"p{n % 3}"), orjson.dumps(body)))
            n += 1
        try:
            spool.write(batch)
        except OSError as exc:
            # the journal is cut back to its last batch; no segment counts the failed one
            ok = all(os.path.getsize(path) == durable for path, durable in spool.journal_files())
            ok = ok and all(s.durable_size == s.size for s in spool.segments())
            print(f"failed {exc.errno} consistent={ok}", flush=True)
            sys.exit(0)
        print(n - 1, flush=True)
    """
)


def start_writer(
    directory: Path, *, segment_max: int, batch: int, fsize_limit: int = 0
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER,
            str(directory),
            str(segment_max),
            str(batch),
            str(fsize_limit),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def recovered_records(directory: Path) -> dict[str, list[int]]:
    """Open the spool as a restarted process would; project -> record numbers in order."""
    spool = Spool(directory, segment_max_bytes=1 << 30, max_bytes=1 << 40)
    spool.open()
    try:
        by_project: dict[str, list[int]] = {}
        for path, _durable in spool.journal_files():
            assert scan(path.read_bytes(), JOURNAL_MAGIC).clean, f"{path.name} is not cut"
        for seg in spool.segments():
            assert seg.sealed, "recovery seals every segment left open"
            if not seg.in_journal:
                assert scan(seg.path.read_bytes()).clean, f"{seg.path.name} is not cut"
            for raw in spool.read(seg):
                event = orjson.loads(raw)
                assert event["id"] == f"event-{event['n']:08d}"
                assert event["pad"] == "x" * (200 + event["n"] % 700)
                by_project.setdefault(seg.spec.project_id, []).append(event["n"])
        return by_project
    finally:
        spool.close()


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(6))
def test_sigkill_loses_no_acknowledged_record(tmp_path: Path, round_: int) -> None:
    rng = random.Random(round_)
    writer = start_writer(tmp_path, segment_max=rng.choice([64 << 10, 1 << 20, 8 << 20]), batch=600)
    assert writer.stdout is not None
    acked = -1
    deadline = time.monotonic() + rng.uniform(0.3, 1.5)
    while time.monotonic() < deadline:
        line = writer.stdout.readline()
        if not line:
            break
        acked = int(line)
    os.kill(writer.pid, signal.SIGKILL)
    # lines printed before the kill were acknowledged too
    for line in writer.stdout:
        acked = max(acked, int(line))
    writer.wait()
    assert acked > 0, "the writer acknowledged nothing before the kill"

    by_project = recovered_records(tmp_path)
    for project, numbers in by_project.items():
        assert numbers == sorted(set(numbers)), f"{project}: records out of order or twice"
    found = {n for numbers in by_project.values() for n in numbers}
    missing = set(range(acked + 1)) - found
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:5]}"
    assert found == set(range(len(found))), "only whole batches' prefixes survive"


def test_a_failed_batch_is_rolled_back(tmp_path: Path) -> None:
    """A batch that cannot be written (here: the file size limit) leaves nothing behind."""
    writer = start_writer(tmp_path, segment_max=1 << 30, batch=50, fsize_limit=256 << 10)
    out, _ = writer.communicate(timeout=60)
    lines = out.split()
    assert "failed 27" in out, out  # EFBIG
    assert "consistent=True" in out, out
    acked = max(int(x) for x in lines if x.isdigit())
    by_project = recovered_records(tmp_path)
    found = sorted(n for numbers in by_project.values() for n in numbers)
    assert found == list(range(acked + 1))
