"""Liveness and readiness probes (no authentication)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from stacktrail.api.context import ReadinessCheck
from stacktrail.api.deps import Context
from stacktrail.api.schemas import Health, Readiness

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

CHECK_TIMEOUT_S = 5.0


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


async def _run(check: ReadinessCheck) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            result = await check()
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S:g}s"
    except Exception as exc:
        return f"failed: {exc or type(exc).__name__}"
    return "failed" if result is False else "ok"


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Some dependency is not ready."}},
    summary="The config store and the composition root's dependencies answer",
)
async def readyz(ctx: Context) -> JSONResponse:
    checks: dict[str, ReadinessCheck] = {"database": ctx.store.ping, **ctx.readiness}
    names = list(checks)
    results = await asyncio.gather(*(_run(checks[name]) for name in names))
    outcome = dict(zip(names, results, strict=True))
    ready = all(result == "ok" for result in results)
    if not ready:
        log.warning("not ready: %s", {k: v for k, v in outcome.items() if v != "ok"})
    body = Readiness(status="ready" if ready else "unavailable", checks=outcome)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
