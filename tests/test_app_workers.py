"""Several `stacktrail run` processes on one queue (competing consumers), as a cloud scales
out: real RabbitMQ (own vhost), a PostgreSQL config store of the test's own, the file
store as the archive both workers share, each worker with its own spool directory and no
worker name set (the default must tell them apart).

No event is lost or archived twice, no object is written by both (every key names its
worker, and both workers' keys are there), and exactly one process leads the scheduler;
when it stops, the other takes over.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stacktrail.db import engine as db
from tests.support.broker import publish_spread, until_drained
from tests.support.config_store import create_postgres_database, drop_postgres_database
from tests.support.faults import archived_ids, duplicates, key_workers, pipeline_env
from tests.support.paths import REPO_ROOT
from tests.support.polling import eventually

STACKTRAIL = [sys.executable, "-m", "stacktrail.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    url = await create_postgres_database()
    await db.upgrade(url)
    yield url
    await drop_postgres_database(url)


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*STACKTRAIL, "run"], env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=90)


async def test_two_workers_share_a_queue_without_loss_duplicates_or_overwrites(
    amqp_url: str, database_url: str, tmp_path: Path
) -> None:
    queue = f"st-workers-{uuid.uuid4().hex[:8]}"
    archive = tmp_path / "archive"
    common = pipeline_env(amqp_url, queue, database_url, archive) | {
        "STACKTRAIL_SHUTDOWN_GRACE": "30s"
    }
    workers = [
        Worker(
            common
            | {
                "STACKTRAIL_SPOOL_DIR": str(tmp_path / f"spool-{name}"),
                "STACKTRAIL_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
            },
            tmp_path / f"{name}.log",
        )
        for name in ("a", "b")
    ]
    try:
        for worker in workers:
            await eventually(lambda w=worker: "consuming " in w.text(), within=90, every=0.2)
        # one leader, one follower
        await eventually(
            lambda: (
                sum("scheduler: leading as" in w.text() for w in workers) == 1
                and sum("another process leads" in w.text() for w in workers) == 1
            ),
            within=90,
            every=0.2,
        )
        projects = [uuid.UUID(int=i + 1).hex for i in range(20)]
        ids = await publish_spread(amqp_url, "workers", 3000, projects)
        await until_drained(amqp_url, queue)
        # both took a share (competing consumers), then the leader stops: the other leads
        leader = next(w for w in workers if "scheduler: leading as" in w.text())
        follower = next(w for w in workers if w is not leader)
        assert leader.stop() == 0
        await eventually(lambda: "scheduler: leading as" in follower.text(), within=60)
        assert follower.stop() == 0
    finally:
        for worker in workers:
            if worker.proc.poll() is None:
                worker.proc.kill()
                worker.proc.wait()

    copies = archived_ids(archive)
    assert [i for i in ids if i not in copies] == [], "events lost"
    assert duplicates(copies) == (0, 0)
    assert sum(copies.values()) == len(ids)
    names = key_workers(archive)
    assert len(names) == 2, f"object keys should name both workers: {sorted(names)}"
    for worker in workers:
        assert "pipeline stopped (0 messages left unacked" in worker.text()
