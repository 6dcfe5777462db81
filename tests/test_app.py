"""The `stacktrail run` process as operators run it: kill -9, SIGTERM, restart.

Real RabbitMQ (own vhost) and the OpenSearch-compatible osmem-server (no OpenSearch
cluster can run here).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from stacktrail.search.documents import index_name
from tests.support import search
from tests.support.broker import publish, queue_depth
from tests.support.cadf_factory import DEFAULT_EVENT_TIME, make_notification

ROOT = Path(__file__).resolve().parent.parent
STACKTRAIL = [sys.executable, "-m", "stacktrail.cli"]
PROJECT = "cccc0000cccc0000cccc0000cccc0000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def env(amqp_url: str, search_url: str, index_template: str, tmp_path: Path) -> dict[str, str]:
    queue = f"st-{uuid.uuid4().hex[:8]}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("STACKTRAIL_")}
    return base | {
        "STACKTRAIL_AMQP_URL": amqp_url,
        "STACKTRAIL_AMQP_QUEUE": queue,
        "STACKTRAIL_AMQP_DEAD_LETTER_EXCHANGE": f"{queue}.dead",
        "STACKTRAIL_AMQP_BINDINGS": "nova:notifications.#",
        "STACKTRAIL_SEARCH_URL": search_url,
        "STACKTRAIL_SEARCH_INDEX_TEMPLATE": index_template,
        "STACKTRAIL_ARCHIVE_ENABLED": "false",
        "STACKTRAIL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/config.db",
        "STACKTRAIL_SPOOL_DIR": str(tmp_path / "spool"),
        "STACKTRAIL_LOG_LEVEL": "INFO",
        # every run mode serves /metrics; a port of its own, as tests run side by side
        "STACKTRAIL_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
    }


class Service:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*STACKTRAIL, "run", "--only", "pipeline"],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def signal(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def service(env: dict[str, str], tmp_path: Path) -> Iterator[Service]:
    svc = Service(env, tmp_path / "stacktrail.log")
    yield svc
    svc.stop()


async def wait_for_queue(env: dict[str, str]) -> None:
    for _ in range(600):  # a loaded machine may need a minute to start a process
        try:
            await queue_depth(env["STACKTRAIL_AMQP_URL"], env["STACKTRAIL_AMQP_QUEUE"])
            return
        except Exception:
            await asyncio.sleep(0.2)
    raise AssertionError("the pipeline never declared its queue")


async def test_kill_9_mid_stream_loses_nothing(service: Service, env: dict[str, str]) -> None:
    total = 10_000
    index = index_name(env["STACKTRAIL_SEARCH_INDEX_TEMPLATE"], PROJECT, DEFAULT_EVENT_TIME)
    service.start()
    await wait_for_queue(env)  # the queue and its bindings exist from now on
    assert service.signal(signal.SIGTERM) == 0
    bodies = (
        make_notification(event_id=f"k9-{i}", initiator_project=PROJECT) for i in range(total)
    )
    await publish(env["STACKTRAIL_AMQP_URL"], bodies)
    service.start()  # a full queue: the kill lands mid-stream
    seen = await search.wait_for_count(env["STACKTRAIL_SEARCH_URL"], index, 1000, timeout=60)
    assert seen < total, "the whole stream was done before the kill: nothing tested"
    assert service.signal(signal.SIGKILL) == -signal.SIGKILL
    service.start()
    url = env["STACKTRAIL_SEARCH_URL"]
    assert await search.wait_for_count(url, index, total, timeout=120) == total
    assert await search.ids(url, index) == {f"k9-{i}" for i in range(total)}
    assert service.signal(signal.SIGTERM) == 0
    assert await queue_depth(env["STACKTRAIL_AMQP_URL"], env["STACKTRAIL_AMQP_QUEUE"]) == 0


async def test_sigterm_finishes_in_flight_and_exits_0(
    service: Service, env: dict[str, str]
) -> None:
    index = index_name(env["STACKTRAIL_SEARCH_INDEX_TEMPLATE"], PROJECT, DEFAULT_EVENT_TIME)
    service.start()
    await wait_for_queue(env)
    await publish(
        env["STACKTRAIL_AMQP_URL"],
        (make_notification(event_id=f"t-{i}", initiator_project=PROJECT) for i in range(3000)),
    )
    await search.wait_for_count(env["STACKTRAIL_SEARCH_URL"], index, 500)
    assert service.signal(signal.SIGTERM) == 0
    indexed = await search.count(env["STACKTRAIL_SEARCH_URL"], index)
    left = await queue_depth(env["STACKTRAIL_AMQP_URL"], env["STACKTRAIL_AMQP_QUEUE"])
    # Everything acked is indexed, everything not indexed is back in the queue.
    assert indexed + left == 3000
    log = service.log.read_text()
    assert "consuming" in log
    assert "stopped" in log


def _metric(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_only_pipeline_serves_probes_and_metrics_that_move(
    service: Service, env: dict[str, str], tmp_path: Path
) -> None:
    service.env = env | {
        "STACKTRAIL_ARCHIVE_ENABLED": "true",
        "STACKTRAIL_ARCHIVE_STORE": "file",
        "STACKTRAIL_ARCHIVE_DIR": str(tmp_path / "archive"),
        "STACKTRAIL_ARCHIVE_INTERVAL": "1s",
    }
    base = f"http://{env['STACKTRAIL_METRICS_LISTEN']}"
    service.start()
    await wait_for_queue(env)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for _ in range(300):
            try:
                if (await http.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"]) >= {"database", "broker", "acks", "search"}
        before = (await http.get("/metrics")).text
        now = datetime.now(UTC)  # within the archive's retention
        bodies = (
            make_notification(event_id=f"m-{i}", initiator_project=PROJECT, event_time=now)
            for i in range(200)
        )
        await publish(env["STACKTRAIL_AMQP_URL"], bodies)
        index = index_name(env["STACKTRAIL_SEARCH_INDEX_TEMPLATE"], PROJECT, now)
        assert await search.wait_for_count(env["STACKTRAIL_SEARCH_URL"], index, 200) == 200
        delivered = 'stacktrail_archive_objects_total{result="delivered"}'
        after = before
        for _ in range(150):  # the events may arrive in more than one delivered object
            after = (await http.get("/metrics")).text
            if (
                _metric(after, "stacktrail_archive_events_delivered_total") >= 200
                and _metric(after, "stacktrail_messages_acked_total") >= 200
            ):
                break
            await asyncio.sleep(0.2)
    assert _metric(after, "stacktrail_messages_consumed_total") >= 200
    assert _metric(before, "stacktrail_messages_consumed_total") == 0
    assert _metric(after, "stacktrail_messages_acked_total") >= 200
    assert _metric(after, "stacktrail_search_bulk_seconds_count") > 0
    assert _metric(after, delivered) > _metric(before, delivered)
    assert _metric(after, "stacktrail_archive_events_delivered_total") >= 200
    assert "stacktrail_spool_bytes" in after
    assert "stacktrail_archive_oldest_undelivered_seconds" in after
    assert service.signal(signal.SIGTERM) == 0
    log = service.log.read_text()
    assert f"/healthz, /readyz and /metrics on {base}" in log
    # the report is periodic, so a slow run may split the 200 events over two lines
    reported = re.findall(
        r"archive delivery: \d+ objects \((\d+) events, \d+ bytes\) for 1 projects", log
    )
    assert sum(int(n) for n in reported) == 200, log
    assert "FlushSummary(" not in log


def test_invalid_settings_exit_2_with_a_clear_message(env: dict[str, str]) -> None:
    bad = env | {"STACKTRAIL_ARCHIVE_INTERVAL": "often"}
    result = subprocess.run(
        [*STACKTRAIL, "run"], env=bad, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "archive_interval (STACKTRAIL_ARCHIVE_INTERVAL)" in result.stderr


def test_help_explains_every_command() -> None:
    result = subprocess.run([*STACKTRAIL, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("run", "settings"):
        assert command in result.stdout
    result = subprocess.run(
        [*STACKTRAIL, "run", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "SIGTERM" in result.stdout
    assert "--only" in result.stdout
