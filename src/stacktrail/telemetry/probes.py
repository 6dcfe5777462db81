"""/healthz, /readyz and /metrics for processes that do not run the API.

`stacktrail run --only pipeline` (or `--only scheduler`) does the work but serves no
API; orchestrators still need to probe it and Prometheus to scrape it. The answers have
the API's shape, so one probe configuration serves every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from stacktrail.telemetry.logging import describe

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool | None]]  # False or raising: not ready
CHECK_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 64  # probes and scrapes only


async def _run(check: Check) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            result = await check()
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S:g}s"
    except Exception as exc:
        return f"failed: {describe(exc)}"
    return "failed" if result is False else "ok"


def probe_app(checks: Mapping[str, Check], routes: Sequence[BaseRoute] = ()) -> Starlette:
    """`routes`: served beside the probes (a child worker's answers for its parent)."""

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> JSONResponse:
        names = list(checks)
        results = await asyncio.gather(*(_run(checks[name]) for name in names))
        outcome = dict(zip(names, results, strict=True))
        ready = all(result == "ok" for result in results)
        if not ready:
            failed = ", ".join(f"{k}: {v}" for k, v in outcome.items() if v != "ok")
            log.warning("not ready: %s", failed)
        body = {"status": "ready" if ready else "unavailable", "checks": outcome}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            *routes,
        ]
    )


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Signals belong to the composition root, which sets `stop`.
        yield


async def serve_probes(
    checks: Mapping[str, Check],
    host: str,
    port: int,
    stop: asyncio.Event,
    routes: Sequence[BaseRoute] = (),
) -> None:
    """Serve until `stop` is set; raises OSError when it cannot listen."""
    config = uvicorn.Config(
        probe_app(checks, routes),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=5,
    )
    server = _Server(config)

    async def run() -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn exits when it cannot bind
            raise OSError(f"cannot serve /metrics on {host}:{port}") from None

    serving = asyncio.create_task(run(), name="probes-server")
    stopping = asyncio.create_task(stop.wait(), name="probes-stop")
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        server.should_exit = True
        await serving
