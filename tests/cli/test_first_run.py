"""`stacktrail run` as a new user meets it: the local mode on embedded defaults, and
SIGTERM / SIGINT during start-up waits. Real RabbitMQ; search is a closed port."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.devstack import ROOT

STACKTRAIL = [sys.executable, "-m", "stacktrail.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def first_run_env(tmp_path: Path) -> dict[str, str]:
    """The embedded defaults (cwd is a fresh directory: SQLite, spool and archive under
    ./var), with a queue and port of this test's own."""
    queue = f"st-first-{uuid.uuid4().hex[:8]}"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STACKTRAIL_", "OS_"))}
    return base | {
        "PYTHONPATH": str(ROOT / "src"),
        "STACKTRAIL_AMQP_QUEUE": queue,
        "STACKTRAIL_AMQP_DEAD_LETTER_EXCHANGE": f"{queue}.dead",
        "STACKTRAIL_AMQP_BINDINGS": "nova:notifications.#",
        "STACKTRAIL_API_LISTEN": f"127.0.0.1:{free_port()}",
    }


class Process:
    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.log = cwd / "stacktrail.log"
        self.out = cwd / "stdout.txt"
        with self.log.open("wb") as err, self.out.open("wb") as out:
            self.proc = subprocess.Popen(
                [*STACKTRAIL, *args], env=env, cwd=cwd, stdout=out, stderr=err
            )

    def wait_for(self, pattern: str, *, stdout: bool = False, timeout: float = 90) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        path = self.out if stdout else self.log
        while time.monotonic() < deadline:
            found = re.search(pattern, path.read_text())
            if found:
                return found
            assert self.proc.poll() is None, f"exited early:\n{self.log.read_text()}"
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} never appeared:\n{self.log.read_text()}")

    def signal_and_time(self, sig: int) -> tuple[int, float]:
        start = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        return code, time.monotonic() - start

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.kill()


def test_local_mode_serves_the_ui_on_embedded_defaults(
    first_run_env: dict[str, str], tmp_path: Path, processes: list[Process]
) -> None:
    service = Process(["run", "--local"], first_run_env, tmp_path)
    processes.append(service)
    url = service.wait_for(r"open (http://127\.0\.0\.1:\d+/) in a browser", stdout=True)[1]
    assert url == f"http://{first_run_env['STACKTRAIL_API_LISTEN']}/"
    with httpx.Client(base_url=url, follow_redirects=True, timeout=10) as http:
        login = http.get("/login")
        assert login.status_code == 200
        assert "LOCAL MODE — NOT FOR PRODUCTION" in login.text
        assert "[LOCAL MODE]" in login.text  # in the title too, visible in every tab
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert csrf is not None
        admin = http.post("/login", data={"csrf_token": csrf[1], "method": "noauth"})
        assert admin.status_code == 200
        assert str(admin.url).endswith("/admin")
        assert "LOCAL MODE — NOT FOR PRODUCTION" in admin.text
    assert (tmp_path / "var" / "stacktrail.db").exists()  # the embedded SQLite store
    code, _ = service.signal_and_time(signal.SIGTERM)
    assert code == 0


def test_local_mode_refuses_a_public_listen_address(
    first_run_env: dict[str, str], tmp_path: Path
) -> None:
    env = first_run_env | {"STACKTRAIL_API_LISTEN": "0.0.0.0:8080"}
    result = subprocess.run(
        [*STACKTRAIL, "run", "--local"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "only on a loopback address, not 0.0.0.0:8080" in result.stderr


def test_without_keystone_run_says_how_to_try_it_locally(
    first_run_env: dict[str, str], tmp_path: Path, processes: list[Process]
) -> None:
    service = Process(["run"], first_run_env, tmp_path)
    processes.append(service)
    service.wait_for(r"not starting the API and web UI: .*stacktrail run --local")
    assert service.signal_and_time(signal.SIGTERM)[0] == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_wait_for_search_within_a_second(
    first_run_env: dict[str, str], tmp_path: Path, processes: list[Process], sig: int
) -> None:
    env = first_run_env | {"STACKTRAIL_SEARCH_URL": f"http://127.0.0.1:{free_port()}"}
    service = Process(["run", "--only", "pipeline", "--only", "scheduler"], env, tmp_path)
    processes.append(service)
    service.wait_for(r"search not ready: the index template is not installed yet")
    code, took = service.signal_and_time(sig)
    assert code == 0
    assert took < 1.0, f"took {took:.2f}s"
    assert "stopping during start-up" in service.log.read_text()


def test_settings_hide_the_broker_password(first_run_env: dict[str, str], tmp_path: Path) -> None:
    env = first_run_env | {"STACKTRAIL_AMQP_URL": "amqp://guest:hunter2@127.0.0.1:5672/%2F"}
    result = subprocess.run(
        [*STACKTRAIL, "settings"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert "STACKTRAIL_AMQP_URL=amqp://guest:***@127.0.0.1:5672/%2F" in result.stdout
