"""Extra pipeline processes of one `stacktrail run` (STACKTRAIL_WORKERS).

A CPython process keeps at most one core busy, so a machine with cores to spare runs
several pipelines on one queue: competing consumers, as in the README's "Several
workers". Worker 0 is the process that was started; worker k (1 to N-1) is a child
`stacktrail run --only pipeline` whose settings differ only where two workers must not
share: its spool directory (`<spool dir>.worker<k>`), its metrics listener (the port + k)
and, when STACKTRAIL_ARCHIVE_WORKER is set, its name in object keys (`<name>-<k>`).

A child dies with its parent (PR_SET_PDEATHSIG on Linux), so a killed parent leaves no
consumer behind. One that exits on its own is restarted after a backoff (its spool's
recovery keeps what it made durable). On stop, each child gets SIGTERM and the shutdown
grace plus a margin to finish, then SIGKILL. SIGUSR1 (`stacktrail archive flush`) is
passed on, so every worker's spool is delivered. The parent is ready (/readyz) only while
every child runs and its own /readyz says ready.

A project's records are spread over every worker's spool, so the parent's API asks each
child about the project's backlog and retries (`WorkerDeliveries`): a child answers on
its probe listener (`child_delivery_routes`), to the loopback interface only.

A spool of a former worker (`.worker<k>` with k >= N, after the count went down) still
holding data is delivered once at start by `stacktrail archive flush` on it, so lowering
the count loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from ipaddress import ip_address
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from stacktrail.config import ENV_PREFIX, Settings, reachable_host
from stacktrail.domain.backlog import SpoolBacklog, combined
from stacktrail.domain.backoff import Backoff
from stacktrail.domain.names import is_valid_project_id
from stacktrail.telemetry import metrics
from stacktrail.telemetry.logging import describe

if TYPE_CHECKING:  # the API's modules load only where the API runs
    from stacktrail.api.context import DeliveryControl

log = logging.getLogger(__name__)

STOP_MARGIN = 15.0  # seconds beyond the shutdown grace a child gets before SIGKILL
STEADY_AFTER = 60.0  # a child that ran this long restarts after the shortest delay again
RESTART_FIRST, RESTART_CAP = 1.0, 60.0
FLUSH_TIMEOUT = 300.0  # seconds the flush of a former worker's spool may take
READY_TIMEOUT = 2.0  # seconds a child's /readyz may take (the parent's check has 5)
ASK_TIMEOUT = 5.0  # seconds a child may take to answer about a project's deliveries
DELIVERY_PATH = "/worker/delivery/{project_id}"
_SUFFIX = re.compile(r"\.worker(\d+)$")
_PR_SET_PDEATHSIG = 1

Command = Sequence[str]
PIPELINE_COMMAND: Command = (sys.executable, "-m", "stacktrail.cli", "run", "--only", "pipeline")
FLUSH_COMMAND: Command = (sys.executable, "-m", "stacktrail.cli", "archive", "flush")


def worker_spool(spool_dir: Path, k: int) -> Path:
    """The spool directory of worker `k` (0: the given one)."""
    return spool_dir if k == 0 else spool_dir.with_name(f"{spool_dir.name}.worker{k}")


def worker_env(settings: Settings, k: int) -> dict[str, str]:
    """The settings worker `k` (k >= 1) gets on top of the parent's environment."""
    env = {
        f"{ENV_PREFIX}WORKERS": "1",
        f"{ENV_PREFIX}WORKER_NUMBER": str(k),
        f"{ENV_PREFIX}SPOOL_DIR": str(worker_spool(Path(settings.spool_dir), k)),
        f"{ENV_PREFIX}METRICS_LISTEN": f"{settings.metrics_host}:{settings.metrics_port + k}",
    }
    if settings.archive_worker:
        env[f"{ENV_PREFIX}ARCHIVE_WORKER"] = f"{settings.archive_worker}-{k}"
    return env


def former_spools(spool_dir: Path, count: int) -> list[Path]:
    """Spools of workers beyond `count` that still hold data (files not starting with
    a dot: the lock and the seen ids alone are nothing to deliver)."""
    parent = spool_dir.parent
    if not parent.is_dir():
        return []
    found = []
    for path in sorted(parent.glob(f"{spool_dir.name}.worker*")):
        match = _SUFFIX.search(path.name)
        if match is None or int(match.group(1)) < count or not path.is_dir():
            continue
        if any(not entry.name.startswith(".") for entry in path.iterdir()):
            found.append(path)
    return found


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook that has the child sent SIGTERM when its parent dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


class ChildLinks:
    """HTTP to the children's probe listeners (worker k: the metrics port + k), over one
    kept client: building a client costs about 20 ms of CPU, a request on it 0.4 ms."""

    def __init__(self, settings: Settings, count: int) -> None:
        host = reachable_host(settings.metrics_host)
        self.urls = {k: f"http://{host}:{settings.metrics_port + k}" for k in range(1, count)}
        self._http: httpx.AsyncClient | None = None

    async def request(self, k: int, method: str, path: str, within: float) -> httpx.Response:
        """`within`: seconds the child has to answer."""
        if self._http is None:
            self._http = httpx.AsyncClient()
        return await self._http.request(method, self.urls[k] + path, timeout=within)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


class Workers:
    """Keeps workers 1 to `count - 1` running until `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        count: int,
        *,
        command: Command = PIPELINE_COMMAND,
        flush_command: Command = FLUSH_COMMAND,
    ) -> None:
        self._settings = settings
        self._count = count
        self._command = list(command)
        self._flush_command = list(flush_command)
        self._grace = settings.shutdown_grace.total_seconds() + STOP_MARGIN
        self._pids: dict[int, int] = {}
        self.children = ChildLinks(settings, count)
        metrics.WORKERS_RUNNING.set_function(lambda: 1 + len(self._pids))

    @property
    def pids(self) -> dict[int, int]:
        """Worker number -> pid of the children running now."""
        return dict(self._pids)

    async def run(self, stop: asyncio.Event) -> None:
        if self._count > 1:
            log.info(
                "running %d pipeline workers: this process and %d child process(es)",
                self._count,
                self._count - 1,
            )
        tasks = [asyncio.create_task(self._keep(k, stop)) for k in range(1, self._count)]
        tasks.append(asyncio.create_task(self._flush_former(stop)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.children.close()

    async def ready(self) -> bool:
        """Every child runs and its /readyz (on the metrics port + k) says ready; raises
        saying which one is not."""
        missing = [str(k) for k in range(1, self._count) if k not in self._pids]
        if missing:
            raise RuntimeError(f"worker {', '.join(missing)} not running (restarting)")
        for k in self.children.urls:
            try:
                response = await self.children.request(k, "GET", "/readyz", READY_TIMEOUT)
            except httpx.HTTPError as exc:
                raise RuntimeError(f"worker {k} does not answer /readyz: {describe(exc)}") from None
            if response.status_code != 200:
                checks = response.json().get("checks", {})
                failed = ", ".join(f"{n}: {r}" for n, r in checks.items() if r != "ok")
                raise RuntimeError(f"worker {k} not ready: {failed or response.status_code}")
        return True

    def signal(self, sig: int) -> None:
        """Send `sig` to every child running now (SIGUSR1: flush their spools too)."""
        for pid in self._pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        return {**os.environ, **extra}

    async def _keep(self, k: int, stop: asyncio.Event) -> None:
        backoff = Backoff(first=RESTART_FIRST, cap=RESTART_CAP)
        spool = worker_spool(Path(self._settings.spool_dir), k)
        while not stop.is_set():
            proc = await asyncio.create_subprocess_exec(
                *self._command,
                env=self._env(worker_env(self._settings, k)),
                preexec_fn=_die_with_parent(),
            )
            self._pids[k] = proc.pid
            log.info("worker %d started (pid %d, spool %s)", k, proc.pid, spool)
            started = time.monotonic()
            try:
                code = await _wait_or_stop(proc, stop, self._grace)
            finally:
                if proc.returncode is None:  # cancelled: nobody may be left consuming
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                self._pids.pop(k, None)
            if stop.is_set():
                log.info("worker %d stopped (exit status %s)", k, code)
                return
            if time.monotonic() - started >= STEADY_AFTER:
                backoff.reset()
            delay = backoff.next_delay()
            log.error(
                "worker %d (pid %d) exited unexpectedly with status %s; restarting it in %.1f s "
                "(its spool keeps what it made durable)",
                k,
                proc.pid,
                code,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()

    async def _flush_former(self, stop: asyncio.Event) -> None:
        for spool in former_spools(Path(self._settings.spool_dir), self._count):
            if stop.is_set():
                return
            log.warning(
                "spool %s of a former worker holds undelivered data: delivering it now", spool
            )
            proc = await asyncio.create_subprocess_exec(
                *self._flush_command,
                "--timeout",
                f"{FLUSH_TIMEOUT:g}",
                env=self._env({f"{ENV_PREFIX}WORKERS": "1", f"{ENV_PREFIX}SPOOL_DIR": str(spool)}),
                stdout=asyncio.subprocess.DEVNULL,
                preexec_fn=_die_with_parent(),
            )
            code = await _wait_or_stop(proc, stop, self._grace)
            if code != 0:
                log.warning(
                    "spool %s of a former worker was not delivered (exit status %s); it stays "
                    "on disk: STACKTRAIL_SPOOL_DIR=%s stacktrail archive flush",
                    spool,
                    code,
                    spool,
                )


def child_delivery_routes(control: DeliveryControl) -> list[BaseRoute]:
    """What a child serves its parent about one project's deliveries in its spool."""

    def refused(request: Request) -> JSONResponse | None:
        client = request.client.host if request.client is not None else ""
        try:
            local = ip_address(client).is_loopback
        except ValueError:
            local = False
        if not local:  # the listener may face the network: the parent asks from here
            return JSONResponse({"error": "only the parent process asks this"}, 403)
        if not is_valid_project_id(request.path_params["project_id"]):
            return JSONResponse({"error": "no such project"}, 404)
        return None

    async def delivery(request: Request) -> JSONResponse:
        if (answer := refused(request)) is not None:
            return answer
        project_id = request.path_params["project_id"]
        retries = await control.next_retries(project_id)
        backlog = await control.backlog(project_id)
        return JSONResponse(
            {
                "backlog": backlog.to_json(),
                "next_retries": {region: at.isoformat() for region, at in retries.items()},
            }
        )

    async def retry(request: Request) -> JSONResponse:
        if (answer := refused(request)) is not None:
            return answer
        return JSONResponse({"regions": await control.retry_now(request.path_params["project_id"])})

    return [
        Route(DELIVERY_PATH, delivery, methods=["GET"]),
        Route(f"{DELIVERY_PATH}/retry", retry, methods=["POST"]),
    ]


class WorkerDeliveries:
    """`DeliveryControl` over this process's spool and every child's: the backlog adds
    up, a region is retried next at the earliest of the workers' times, and a retry
    reaches every worker. A child that does not answer (restarting) is left out, logged."""

    def __init__(self, local: DeliveryControl, children: ChildLinks) -> None:
        self._local = local
        self._children = children

    async def _ask(self, method: str, project_id: str, tail: str = "") -> list[dict[str, Any]]:
        answers = []
        path = DELIVERY_PATH.format(project_id=project_id) + tail
        for k in self._children.urls:
            try:
                response = await self._children.request(k, method, path, ASK_TIMEOUT)
                response.raise_for_status()
                answers.append(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                log.warning(
                    "worker %d did not say what its spool holds of project %s: %s",
                    k,
                    project_id,
                    describe(exc),
                )
        return answers

    async def next_retries(self, project_id: str) -> Mapping[str, datetime]:
        earliest = dict(await self._local.next_retries(project_id))
        for answer in await self._ask("GET", project_id):
            for region, at in answer["next_retries"].items():
                when = datetime.fromisoformat(at)
                earliest[region] = min(earliest.get(region, when), when)
        return earliest

    async def retry_now(self, project_id: str) -> int:
        woken = await self._local.retry_now(project_id)
        for answer in await self._ask("POST", project_id, "/retry"):
            woken = max(woken, int(answer["regions"]))  # regions, not workers
        return woken

    async def backlog(self, project_id: str) -> SpoolBacklog:
        answers = await self._ask("GET", project_id)
        parts = [await self._local.backlog(project_id)]
        return combined(parts + [SpoolBacklog.from_json(a["backlog"]) for a in answers])


async def _wait_or_stop(
    proc: asyncio.subprocess.Process, stop: asyncio.Event, grace: float
) -> int | None:
    """The child's exit status; when `stop` is set first, SIGTERM, then after `grace`
    seconds SIGKILL."""
    exited = asyncio.ensure_future(proc.wait())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not exited.done():
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(exited)
        except TimeoutError:
            log.warning("child pid %d did not stop within %.0f s: killed", proc.pid, grace)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    return await exited
