"""`stacktrail read` throughput and peak RSS, from a folder and from real Swift, in one run.

Writes N records (objects of 5,000) into a folder and into a Swift container of the dev
stack's project A, then streams them with `stacktrail read` to a pipe. Prints records/s
(net of the command's start-up, measured with an empty frame) and peak RSS against the
empty run's.

    DEVSTACK_ENV_FILE=/work/main/var/dev-stack/env .venv/bin/python bench/reader.py --count 100000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.bulk_archive import REGION, ReadRun, measure_read, write_archive  # noqa: E402
from tests.support.devstack import ENV_FILE, read_env_file  # noqa: E402
from tests.support.stores import keystone_settings, user_session  # noqa: E402

from stacktrail.archive.stores.localdir import LocalDirStore  # noqa: E402
from stacktrail.archive.stores.swift import SwiftStore  # noqa: E402
from stacktrail.keystone import KeystoneClient  # noqa: E402
from stacktrail_reader.records import ArchiveReader  # noqa: E402
from stacktrail_reader.sources import FolderSource, Source, SwiftSource  # noqa: E402


def report(name: str, empty: ReadRun, run: ReadRun, library: float) -> None:
    print(
        f"{name:7} {run.lines:>8} records: library {library:>7.0f} records/s; command "
        f"{run.seconds:6.2f} s ({empty.seconds:.2f} s of it start-up), peak RSS "
        f"{run.peak_rss_mib:.0f} MiB (empty frame {empty.peak_rss_mib:.0f} MiB)"
    )


def library_rate(source: Source, project: str, start: datetime, end: datetime) -> float:
    """Records/s of the reader library itself, in this process."""
    began = time.monotonic()
    count = sum(1 for _ in ArchiveReader(source, project, REGION).records(start, end))
    return count / (time.monotonic() - began)


async def main(count: int) -> None:
    env = read_env_file(ENV_FILE)
    project = env["DEVSTACK_PROJECT_A_ID"]
    container = f"bench-reader-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start, end = await write_archive(LocalDirStore(root), project, container, records=count)
        frame = ["--project", project, "--from", start.isoformat(), "--to", end.isoformat()]
        nothing = ["--project", project, "--from", "2000-01-01", "--to", "2000-01-02"]
        base = {"STACKTRAIL_ARCHIVE_REGIONS": REGION}
        folder = ["--dir", str(root / container)]
        rate = library_rate(FolderSource(root / container), project, start, end)
        empty = measure_read([*nothing, *folder], base)
        report("folder", empty, measure_read([*frame, *folder], base), rate)

    settings = keystone_settings(env)
    swift = SwiftStore(KeystoneClient(settings))
    try:
        await write_archive(swift, project, container, records=count)
    finally:
        await swift.aclose()
    swift_env = {
        **base,
        "STACKTRAIL_ARCHIVE_STORE": "swift",
        "STACKTRAIL_KEYSTONE_URL": settings.keystone_url,
        "STACKTRAIL_KEYSTONE_USERNAME": settings.keystone_username,
        "STACKTRAIL_KEYSTONE_PASSWORD": settings.keystone_password,
        "STACKTRAIL_KEYSTONE_PROJECT_NAME": settings.keystone_project_name,
    }
    where = ["--container", container]
    session = user_session(
        env,
        env["DEVSTACK_PROJECT_A_READER_USER"],
        env["DEVSTACK_PROJECT_A_READER_PASSWORD"],
        env["DEVSTACK_PROJECT_A_NAME"],
    )
    account = f"{env['DEVSTACK_SWIFT_URL']}/v1/AUTH_{project}"
    rate = library_rate(SwiftSource(session, container, account_url=account), project, start, end)
    empty = measure_read([*nothing, *where], swift_env)
    report("swift", empty, measure_read([*frame, *where], swift_env), rate)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().count))
