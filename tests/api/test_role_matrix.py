"""Role x route: who may call each /v1 route on project A, with real Keystone tokens.

Allowed writes carry a stale If-Match (or an empty time frame), so they pass the policy
and then stop at 412/422 without changing anything the shared store's other tests see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from stacktrail.api import create_app
from stacktrail.api.routes import exports as export_routes
from stacktrail.archive.export_jobs import FAILED, ExportJobs
from stacktrail.config import Settings
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.timeframe import Timeframe
from stacktrail.domain.trail import ArchiveFormat
from stacktrail.keystone import KeystoneClient
from tests.api.keystone_users import KeystoneUsers, provision, token_of
from tests.api.test_admin_api import DEFAULTS
from tests.support.api import client_for
from tests.support.devstack import RUN_ID

SEEDED = ["a_reader", "a_member", "a_admin", "cloud_admin", "audit_admin"]
PROVISIONED = ["a_audit_viewer", "a_audit_admin", "b_audit_admin"]
WHO = [*SEEDED, *PROVISIONED]

READERS = {"a_reader", "a_member", "a_admin", "a_audit_viewer", "a_audit_admin", "cloud_admin"}
ADMINS = {"a_admin", "a_audit_admin", "cloud_admin"}
CLOUD = {"cloud_admin"}
EVERYBODY = set(WHO)
STALE = {"If-Match": '"999999"'}


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str  # {a}: project A's id, {export}: an export of project A
    allowed: set[str]
    status: int  # of an allowed call
    denied: int = 403
    body: Any = None
    headers: dict[str, str] | None = None


TRAIL = "/v1/projects/{a}/trail"
ROUTES = [
    Route("trail:get", "GET", TRAIL, READERS, 200),
    Route("trail:status", "GET", TRAIL + "/status", READERS, 200),
    Route("trail:changes", "GET", TRAIL + "/changes", READERS, 200),
    Route("trail:put", "PUT", TRAIL, ADMINS, 412, body={}, headers=STALE),
    Route("trail:patch", "PATCH", TRAIL, ADMINS, 412, body={}, headers=STALE),
    Route("trail:delete", "DELETE", TRAIL, ADMINS, 412, headers=STALE),
    Route("exports:list", "GET", "/v1/projects/{a}/exports", READERS, 200),
    Route(
        "export:create",
        "POST",
        "/v1/projects/{a}/exports",
        ADMINS,
        422,  # an empty frame: refused after the policy allowed it
        body={"from": "2025-01-02T00:00:00Z", "to": "2025-01-01T00:00:00Z"},
    ),
    Route("export:get", "GET", "/v1/exports/{export}", READERS, 200, denied=404),
    Route("trails:list", "GET", "/v1/trails", CLOUD, 200),
    Route("defaults:get", "GET", "/v1/defaults", EVERYBODY, 200),
    Route("defaults:put", "PUT", "/v1/defaults", CLOUD, 412, body=DEFAULTS, headers=STALE),
    Route("event-types", "GET", "/v1/event-types", EVERYBODY, 200),
    Route("digest-keys", "GET", "/v1/digest-keys", EVERYBODY, 200),  # public, no token needed
    Route("project:get", "GET", "/v1/projects/{a}", READERS, 200),
    # no search server here: allowed callers get as far as the 503
    Route("events:list", "GET", "/v1/projects/{a}/events", READERS, 503),
    Route("event:get", "GET", "/v1/projects/{a}/events/e1", READERS, 503),
    Route("files:list", "GET", "/v1/projects/{a}/files", READERS, 200),
    Route("delivery:get", "GET", TRAIL + "/delivery", READERS, 200),
    # no archive sink in this process: allowed callers get as far as the 503
    Route("delivery:retry", "POST", TRAIL + "/delivery/retry", ADMINS, 503),
]


@pytest.fixture(scope="session")
async def matrix_tokens(users: KeystoneUsers) -> dict[str, str]:
    extra = await provision(users, RUN_ID)
    # one after the other: the dev stack's Keystone runs on SQLite
    tokens = {name: await users.token(name) for name in SEEDED}
    for name in PROVISIONED:
        tokens[name] = await token_of(users, extra[name])
    return tokens


@pytest.fixture(scope="module")
async def export_id(store: TrailStore, users: KeystoneUsers) -> str:
    """A finished export of project A (created directly: no search needed)."""
    project = users.project_id("a")
    stored = await store.get_trail(project)
    trail = stored.trail()
    now = datetime.now(UTC)
    jobs = ExportJobs(store.engine)
    frame = Timeframe(now - timedelta(hours=1), now)
    job = await jobs.create(trail, frame, ArchiveFormat.NDJSON, user_id="u", user_name="matrix")
    await jobs.finish(job.id, FAILED, "not run in this test")
    return job.id


@pytest.fixture(scope="module")
def matrix_app(keystone_settings: Settings, store: TrailStore, keystone: KeystoneClient) -> FastAPI:
    app = create_app(keystone_settings, store, keystone)
    app.include_router(export_routes.router)
    return app


@pytest.fixture(scope="module")
async def http(matrix_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(matrix_app) as client:
        yield client


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
async def test_role_matrix(
    http: httpx.AsyncClient,
    users: KeystoneUsers,
    matrix_tokens: dict[str, str],
    export_id: str,
    route: Route,
    who: str,
) -> None:
    path = route.path.format(a=users.project_id("a"), export=export_id)
    headers = {"X-Auth-Token": matrix_tokens[who], **(route.headers or {})}
    response = await http.request(route.method, path, json=route.body, headers=headers)
    expected = route.status if who in route.allowed else route.denied
    assert response.status_code == expected, (who, route.name, response.text)


def test_every_v1_route_is_in_the_matrix(matrix_app: FastAPI) -> None:
    served = {
        (method.upper(), path)
        for path, operations in matrix_app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    }
    covered = {
        (
            route.method,
            route.path.replace("{a}", "{project_id}")
            .replace("{export}", "{export_id}")
            .replace("/e1", "/{event_id}"),
        )
        for route in ROUTES
    }
    assert served == covered
