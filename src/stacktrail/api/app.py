"""The REST API as a FastAPI application; the composition root serves it."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import stacktrail
from stacktrail.api.auth import TokenCache, TokenValidator
from stacktrail.api.context import (
    AclWriter,
    ApiContext,
    DeliveryControl,
    Emit,
    PendingSpoolBytes,
    ReadinessCheck,
)
from stacktrail.api.limits import RequestLimits
from stacktrail.api.policy import Policy
from stacktrail.api.problems import install as install_problems
from stacktrail.api.problems import problem_response
from stacktrail.api.routes import admin as routes_admin
from stacktrail.api.routes import delivery as routes_delivery
from stacktrail.api.routes import digests as routes_digests
from stacktrail.api.routes import events as routes_events
from stacktrail.api.routes import files as routes_files
from stacktrail.api.routes import health as routes_health
from stacktrail.api.routes import projects as routes_projects
from stacktrail.api.routes import trails as routes_trails
from stacktrail.config import AuthMode, Settings
from stacktrail.db.engine import StoreError
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.event_browse import EventBrowser
from stacktrail.keystone import KeystoneClient

log = logging.getLogger(__name__)

AUTH_DISABLED_HEADER = (b"x-stacktrail-auth", b"DISABLED")


class _AuthDisabledHeader:
    """Marks every response while authentication is off, so nobody mistakes it for prod."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), AUTH_DISABLED_HEADER]
            await send(message)

        await self.app(scope, receive, send_marked)


NO_STORE = (b"cache-control", b"no-store")


class _NoStore:
    """`Cache-Control: no-store` on the API's answers: they are per caller (and token),
    so no shared or browser cache may keep them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    message["headers"] = [*headers, NO_STORE]
            await send(message)

        await self.app(scope, receive, send_marked)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    log.error("config store unavailable during %s %s: %s", request.method, request.url.path, exc)
    return problem_response(request, 503, "the config store is unavailable")


def create_app(
    settings: Settings,
    store: TrailStore,
    keystone: TokenValidator | None,
    *,
    ledger: SqlLedger | None = None,
    emit: Emit | None = None,
    pending_spool_bytes: PendingSpoolBytes | None = None,
    readiness: Mapping[str, ReadinessCheck] | None = None,
    events: EventBrowser | None = None,
    delivery: DeliveryControl | None = None,
    acl_writer: AclWriter | None = None,
) -> FastAPI:
    """The API. `keystone` validates tokens (None only with `auth_mode = noauth`);
    `emit` publishes the CADF event of every configuration change; `pending_spool_bytes`
    tells the spooled bytes of (project, region); `readiness` adds checks to /readyz;
    `events` reads a project's events (from search); `delivery` tells the next retry of a
    failing delivery and retries now; `acl_writer` names the ACL-mode writer to grant."""
    if settings.auth_mode == AuthMode.NOAUTH:
        tokens = None
        log.warning(
            "AUTHENTICATION IS DISABLED (auth_mode=noauth): anybody reaching %s may read and "
            "change every project's audit trail. Never run this in production.",
            settings.api_listen,
        )
    else:
        if keystone is None:
            raise ValueError("auth_mode=keystone needs a Keystone client to validate tokens")
        tokens = TokenCache(keystone, settings.token_cache_ttl.total_seconds())

    # Swagger UI and ReDoc from files shipped with fastapi-offline: /docs works offline
    app = FastAPIOffline(
        static_url="/static-docs",
        title="stacktrail",
        version=stacktrail.__version__,
        description="Per-project audit trails for OpenStack: trail configuration, "
        "operator defaults, delivery status.",
    )
    app.state.stacktrail = ApiContext(
        settings=settings,
        store=store,
        ledger=ledger if ledger is not None else SqlLedger(store.engine),
        tokens=tokens,
        policy=Policy(settings),
        emit=emit,
        pending_spool_bytes=pending_spool_bytes,
        readiness=dict(readiness or {}),
        events=events,
        delivery=delivery,
        acl_writer=acl_writer,
        projects=keystone if isinstance(keystone, KeystoneClient) else None,
    )
    app.include_router(routes_health.router)
    app.include_router(routes_digests.router)
    app.include_router(routes_trails.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_events.router)
    app.include_router(routes_delivery.router)
    app.include_router(routes_projects.router)
    app.include_router(routes_files.router)
    install_problems(app)
    for error in (
        StoreError,
        OperationalError,
        DBAPIError,
        PoolTimeout,
        ConnectionError,
        TimeoutError,
    ):
        app.add_exception_handler(error, _store_unavailable)
    app.add_middleware(_NoStore)
    if tokens is None:
        app.add_middleware(_AuthDisabledHeader)
    # outermost: bodies are bounded before any route, dependency or token check runs
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.api_max_body_bytes,
        body_timeout=settings.api_body_timeout.total_seconds(),
        max_json_depth=settings.api_max_json_depth,
    )
    return app
