"""`stacktrail run --workers N`: one command, N pipeline processes on one queue.

Real RabbitMQ (own queue), an SQLite config store, the file store as the archive. The
settings each child derives, the children sharing the queue without loss or duplicate,
a child that dies being restarted, SIGTERM stopping all of them, a killed parent taking
its children with it, and the spool of a former worker being delivered at start.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette

from stacktrail.archive.spool import Spool
from stacktrail.config import load_settings
from stacktrail.domain.backlog import SpoolBacklog
from stacktrail.workers import (
    ASK_TIMEOUT,
    READY_TIMEOUT,
    ChildLinks,
    WorkerDeliveries,
    Workers,
    child_delivery_routes,
    former_spools,
    worker_env,
    worker_spool,
)
from tests.support.broker import publish_spread, until_drained
from tests.support.faults import archived_ids, duplicates, key_workers, pipeline_env
from tests.support.polling import eventually
from tests.support.segments import segment_spec
from tests.support.tcpproxy import free_port

STACKTRAIL = [sys.executable, "-m", "stacktrail.cli"]


def test_each_worker_gets_its_own_spool_port_and_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKTRAIL_SPOOL_DIR", "/srv/stacktrail/spool")
    monkeypatch.setenv("STACKTRAIL_METRICS_LISTEN", "0.0.0.0:9180")
    settings = load_settings()
    assert worker_spool(Path("/srv/stacktrail/spool"), 0) == Path("/srv/stacktrail/spool")
    assert worker_env(settings, 2) == {
        "STACKTRAIL_WORKERS": "1",  # a child never starts children of its own
        "STACKTRAIL_WORKER_NUMBER": "2",  # its log lines say `worker 2`
        "STACKTRAIL_SPOOL_DIR": "/srv/stacktrail/spool.worker2",
        "STACKTRAIL_METRICS_LISTEN": "0.0.0.0:9182",
    }
    monkeypatch.setenv("STACKTRAIL_ARCHIVE_WORKER", "ingest-a")
    assert worker_env(load_settings(), 1)["STACKTRAIL_ARCHIVE_WORKER"] == "ingest-a-1"


def test_former_spools_are_those_beyond_the_count_that_hold_data(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    for name, files in {
        "spool.worker1": ["0001.journal"],  # still a worker with --workers 2
        "spool.worker2": ["0002.journal"],
        "spool.worker3": [".lock", ".seen.0"],  # nothing to deliver
        "spool.workerX": ["0003.journal"],  # not a worker's name
        "other.worker4": ["0004.journal"],
    }.items():
        (tmp_path / name).mkdir()
        for file in files:
            (tmp_path / name / file).write_bytes(b"x")
    assert former_spools(spool, 2) == [tmp_path / "spool.worker2"]
    assert former_spools(spool, 1) == [tmp_path / "spool.worker1", tmp_path / "spool.worker2"]
    assert former_spools(tmp_path / "missing" / "spool", 1) == []


EARLY = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
PROJECT = uuid.UUID(int=42).hex


class _Spool:
    """One worker's answers about a project, as its archive sink would give them."""

    def __init__(self, backlog: SpoolBacklog, retries: dict[str, datetime], woken: int) -> None:
        self._backlog, self._retries, self._woken = backlog, retries, woken
        self.retried: list[str] = []

    async def next_retries(self, project_id: str) -> dict[str, datetime]:
        return self._retries

    async def retry_now(self, project_id: str) -> int:
        self.retried.append(project_id)
        return self._woken

    async def backlog(self, project_id: str) -> SpoolBacklog:
        return self._backlog


async def test_a_child_answers_its_parent_only_over_loopback() -> None:
    spool = _Spool(SpoolBacklog(10, 1, EARLY, 100, failing=True, held_back=False), {}, 1)
    app = Starlette(routes=child_delivery_routes(spool))
    path = f"/worker/delivery/{PROJECT}"
    outside = httpx.ASGITransport(app=app, client=("203.0.113.5", 4000))
    async with httpx.AsyncClient(transport=outside, base_url="http://worker") as http:
        assert (await http.get(path)).status_code == 403
        assert (await http.post(path + "/retry")).status_code == 403
    assert spool.retried == []
    local = httpx.ASGITransport(app=app, client=("127.0.0.1", 4000))
    async with httpx.AsyncClient(transport=local, base_url="http://worker") as http:
        answer = (await http.get(path)).json()
        assert SpoolBacklog.from_json(answer["backlog"]).bytes == 10
        assert (await http.post(path + "/retry")).json() == {"regions": 1}
        assert (await http.get("/worker/delivery/not-a-project!")).status_code == 404
    assert spool.retried == [PROJECT]


async def test_a_child_that_accepts_and_never_answers_costs_the_parent_its_time_limits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Worker 1's listener takes the connection and stays silent (a hung child): the
    parent's readiness gives up after READY_TIMEOUT, its status questions after
    ASK_TIMEOUT, and the status leaves that child out."""
    held: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    port = free_port()
    server = await asyncio.start_server(silent, "127.0.0.1", port + 1)
    settings = load_settings(metrics_listen=f"127.0.0.1:{port}")
    workers = Workers(settings, 2)
    workers._pids[1] = os.getpid()  # as if child 1 ran: only its answer is missing
    own = _Spool(SpoolBacklog(50, 1, EARLY, 100, failing=False, held_back=False), {}, 0)
    try:
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="worker 1 does not answer /readyz"):
            await workers.ready()
        assert time.monotonic() - started < READY_TIMEOUT + 1
        started = time.monotonic()
        backlog = await WorkerDeliveries(own, workers.children).backlog(PROJECT)
        assert time.monotonic() - started < ASK_TIMEOUT + 1
        assert backlog.bytes == 50  # this process's spool alone
        assert "worker 1 did not say what its spool holds" in caplog.text
    finally:
        await workers.children.close()
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_the_parent_adds_up_its_childrens_spools_and_skips_one_that_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Worker 1 answers on the metrics port + 1 (a real listener); worker 2 is down."""
    port = free_port()
    settings = load_settings(metrics_listen=f"127.0.0.1:{port}")
    child = _Spool(
        SpoolBacklog(300, 3, EARLY, 100, failing=True, held_back=True),
        {"RegionOne": EARLY + timedelta(minutes=1), "RegionTwo": EARLY},
        2,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=child_delivery_routes(child)),
            host="127.0.0.1",
            port=port + 1,
            log_config=None,
            lifespan="off",
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, within=10, every=0.05)
        own = _Spool(
            SpoolBacklog(50, 1, EARLY + timedelta(hours=1), 100, failing=False, held_back=False),
            {"RegionOne": EARLY + timedelta(minutes=5)},
            1,
        )
        links = ChildLinks(settings, 3)
        deliveries = WorkerDeliveries(own, links)
        assert await deliveries.backlog(PROJECT) == SpoolBacklog(
            350, 4, EARLY, 200, failing=True, held_back=True
        )
        assert await deliveries.next_retries(PROJECT) == {
            "RegionOne": EARLY + timedelta(minutes=1),  # the earliest of the workers'
            "RegionTwo": EARLY,
        }
        assert await deliveries.retry_now(PROJECT) == 2
        assert own.retried == child.retried == [PROJECT]
        assert f"worker 2 did not say what its spool holds of project {PROJECT}" in caplog.text
        await links.close()
    finally:
        server.should_exit = True
        await serving


def _env(amqp_url: str, queue: str, tmp_path: Path, metrics: str) -> dict[str, str]:
    database = f"sqlite+aiosqlite:///{tmp_path}/config.db"
    return pipeline_env(amqp_url, queue, database, tmp_path / "archive") | {
        "STACKTRAIL_SPOOL_DIR": str(tmp_path / "spool"),
        "STACKTRAIL_METRICS_LISTEN": metrics,
        "STACKTRAIL_SHUTDOWN_GRACE": "20s",
    }


class Run:
    """`stacktrail run --only pipeline --workers N`, its output in a file."""

    def __init__(
        self, env: dict[str, str], workers: int, log: Path, extra: tuple[str, ...] = ()
    ) -> None:
        self.log = log
        self.env = env
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*STACKTRAIL, "run", "--only", "pipeline", "--workers", str(workers), *extra],
                env=env,
                cwd=log.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> dict[int, int]:
        """Worker number -> pid, as the last "started" line of each says."""
        found = re.findall(r"worker (\d+) started \(pid (\d+)", self.text())
        return {int(k): int(pid) for k, pid in found}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in self.children().values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (not yet reaped) is dead for our purpose
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def _ready(port: int) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    return response.status_code, response.json()


def _acked(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, follow_redirects=True).text
    match = re.search(r"^stacktrail_messages_acked_total (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_workers_share_the_queue_restart_and_stop_together(
    amqp_url: str, tmp_path: Path
) -> None:
    queue = f"st-nworkers-{uuid.uuid4().hex[:8]}"
    port = free_port()
    run = Run(_env(amqp_url, queue, tmp_path, f"127.0.0.1:{port}"), 2, tmp_path / "run.log")
    try:
        await eventually(lambda: run.text().count("consuming ") == 2, within=90, every=0.2)
        assert set(run.children()) == {1}
        assert (tmp_path / "spool.worker1" / ".lock").exists()
        # the parent is ready once its child is; the child's lines say who wrote them
        await eventually(lambda: _ready(port)[0] == 200, within=30, every=0.2)
        assert _ready(port)[1]["checks"]["workers"] == "ok"
        assert re.search(r"INFO +worker 1 stacktrail\.ingest\.\S+: consuming ", run.text())
        projects = [uuid.UUID(int=i + 1).hex for i in range(10)]
        ids = await publish_spread(amqp_url, "nworkers", 3000, projects)
        await until_drained(amqp_url, queue)
        # both took a share, each counted on its own metrics port
        assert _acked(port) > 0
        assert _acked(port + 1) > 0
        assert _acked(port) + _acked(port + 1) >= len(ids)

        # a child that dies is started again, on its spool
        first = run.children()[1]
        os.kill(first, signal.SIGKILL)
        # until it is back, the parent says it is not ready, and why
        await eventually(lambda: _ready(port)[0] == 503, within=10, every=0.05)
        assert _ready(port)[1]["checks"]["workers"].startswith("failed: worker 1 ")
        await eventually(lambda: run.children()[1] != first, within=30, every=0.2)
        assert f"worker 1 (pid {first}) exited unexpectedly with status -9" in run.text()
        await eventually(lambda: run.text().count("consuming ") == 3, within=90, every=0.2)

        # `stacktrail archive flush` reaches every worker's spool through the parent
        flushed = subprocess.run(
            [*STACKTRAIL, "archive", "flush"],
            env=run.env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert f"(pid {run.proc.pid}) was asked to flush now" in flushed.stdout, flushed
        await eventually(lambda: run.text().count("archive flush: delivered") == 2, within=30)

        # SIGTERM to the parent stops every worker, each after finishing its work
        second = run.children()[1]
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(timeout=90) == 0
        assert not _alive(second)
        assert "worker 1 stopped (exit status 0)" in run.text()
    finally:
        run.close()

    copies = archived_ids(tmp_path / "archive")
    assert [i for i in ids if i not in copies] == [], "events lost"
    assert duplicates(copies) == (0, 0)
    names = key_workers(tmp_path / "archive")
    assert len(names) == 2, f"object keys should name both workers: {sorted(names)}"


async def test_the_parents_api_shows_the_backlog_of_every_worker(
    amqp_url: str, tmp_path: Path
) -> None:
    """A project's records are spread over both spools: the delivery status (and the UI
    that shows it) counts them all, and a retry reaches both workers."""
    queue = f"st-nbacklog-{uuid.uuid4().hex[:8]}"
    port, api = free_port(), free_port()
    env = _env(amqp_url, queue, tmp_path, f"127.0.0.1:{port}") | {
        "STACKTRAIL_API_LISTEN": f"127.0.0.1:{api}",
        "STACKTRAIL_ARCHIVE_INTERVAL": "1h",  # the records stay in the spools
        "STACKTRAIL_SPOOL_PROJECT_MAX_BYTES": str(8 << 20),
    }
    run = Run(env, 2, tmp_path / "api.log", extra=("--only", "api", "--local"))
    status = f"http://127.0.0.1:{api}/v1/projects/{PROJECT}/trail/delivery"
    try:
        await eventually(lambda: run.text().count("consuming ") == 2, within=90, every=0.2)
        await eventually(lambda: "API and web UI listening" in run.text(), within=30)
        ids = await publish_spread(amqp_url, "nbacklog", 600, [PROJECT])
        await until_drained(amqp_url, queue)
        # the parent serves its metrics with the API
        assert _acked(port + 1) > 0  # the child's spool holds some
        assert _acked(api) > 0  # and the parent's
        await eventually(lambda: _acked(api) + _acked(port + 1) >= len(ids), within=30)
        async with httpx.AsyncClient(timeout=30) as http:
            backlog = (await http.get(status)).json()["backlog"]
            assert backlog["records"] == len(ids)
            assert backlog["share_bytes"] == 2 * (8 << 20)  # each spool holds a share
            retried = await http.post(status + "/retry")
            assert retried.status_code == 202
            assert retried.json()["regions"] == 0  # nothing failing: nothing to wake
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(timeout=90) == 0
    finally:
        run.close()
    assert "did not say what its spool holds" not in run.text()


async def test_a_killed_parent_takes_its_workers_with_it(amqp_url: str, tmp_path: Path) -> None:
    queue = f"st-orphan-{uuid.uuid4().hex[:8]}"
    run = Run(_env(amqp_url, queue, tmp_path, f"127.0.0.1:{free_port()}"), 3, tmp_path / "r.log")
    try:
        await eventually(lambda: run.text().count("consuming ") == 3, within=90, every=0.2)
        pids = list(run.children().values())
        assert len(pids) == 2
        run.proc.kill()
        run.proc.wait()
        await eventually(lambda: not any(_alive(p) for p in pids), within=60, every=0.2)
    finally:
        run.close()


async def test_the_spool_of_a_former_worker_is_delivered_at_start(
    amqp_url: str, tmp_path: Path
) -> None:
    """--workers went from 2 to 1: what worker 1 left spooled still reaches the store."""
    day = datetime.now(UTC) - timedelta(hours=1)
    spool = Spool(tmp_path / "spool.worker1", segment_max_bytes=1 << 20, max_bytes=1 << 26)
    spool.open()
    spec = segment_spec(uuid.UUID(int=7).hex, day.date().isoformat(), interval=3600.0)
    ids = [f"former-{i}" for i in range(5)]
    spool.write([(spec, orjson.dumps({"id": e, "eventTime": day.isoformat()})) for e in ids])
    spool.close()

    queue = f"st-former-{uuid.uuid4().hex[:8]}"
    run = Run(_env(amqp_url, queue, tmp_path, f"127.0.0.1:{free_port()}"), 1, tmp_path / "f.log")
    try:
        await eventually(
            lambda: set(ids) <= set(archived_ids(tmp_path / "archive")), within=90, every=0.5
        )
        assert "spool.worker1 of a former worker holds undelivered data" in run.text()
        await eventually(lambda: former_spools(tmp_path / "spool", 1) == [], within=30)
        assert run.children() == {}  # one worker: no child
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(timeout=60) == 0
    finally:
        run.close()
    assert duplicates(archived_ids(tmp_path / "archive")) == (0, 0)
