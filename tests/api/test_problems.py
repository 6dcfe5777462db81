"""Every error answer of the API is an RFC 9457 problem document, over real HTTP with real
Keystone: stacktrail's own refusals, FastAPI's own validation, unknown URLs and methods, and
the request limits; browsers asking for an unknown page still get an HTML page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from stacktrail.api import create_app
from stacktrail.config import Settings
from stacktrail.db import engine as db
from stacktrail.db.trail_store import TrailStore
from stacktrail.keystone import KeystoneClient
from stacktrail.web import mount_ui
from tests.api.keystone_users import KeystoneUsers
from tests.api.live_server import LiveServer
from tests.support.api import problem_detail, refusals

PROBLEM = "application/problem+json"


@pytest.fixture
async def live(keystone_settings: Settings, tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path}/problems.db"
    await db.upgrade(url)
    settings = keystone_settings.model_copy(update={"api_max_body_bytes": 4096})

    def build() -> tuple[TrailStore, FastAPI]:
        store = TrailStore(db.create_engine(url), settings)
        app = create_app(settings, store, KeystoneClient(settings))
        mount_ui(app, settings)
        return store, app

    server = LiveServer(settings, build)
    await asyncio.to_thread(server.start)
    try:
        yield server.url
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture
async def http(live: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live, timeout=30) as client:
        yield client


async def test_authentication_and_roles(http: httpx.AsyncClient, users: KeystoneUsers) -> None:
    a, b = users.project_id("a"), users.project_id("b")
    anonymous = await http.get(f"/v1/projects/{a}/trail")
    assert "X-Auth-Token" in problem_detail(anonymous, 401)
    assert anonymous.headers["www-authenticate"].startswith("Keystone uri=")
    token = {"X-Auth-Token": await users.token("a_admin")}
    other = await http.get(f"/v1/projects/{b}/trail", headers=token)
    assert b in problem_detail(other, 403)


async def test_unknown_urls_and_methods(http: httpx.AsyncClient, users: KeystoneUsers) -> None:
    token = {"X-Auth-Token": await users.token("a_admin")}
    missing = await http.get("/v1/no/such/thing", headers=token)
    assert problem_detail(missing, 404) == "There is nothing at /v1/no/such/thing."
    assert missing.json()["title"] == "Not Found"
    method = await http.delete("/v1/event-types", headers=token)
    assert problem_detail(method, 405) == (
        "DELETE is not allowed on /v1/event-types; allowed: GET."
    )
    assert method.headers["allow"] == "GET"
    page = await http.get("/no/such/page", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "There is no page at /no/such/page" in page.text


async def test_fastapis_own_validation(http: httpx.AsyncClient, users: KeystoneUsers) -> None:
    token = {"X-Auth-Token": await users.token("cloud_admin")}
    answer = await http.get("/v1/trails", params={"limit": "many", "offset": -1}, headers=token)
    assert refusals(answer) == [
        (
            ("query", "limit"),
            "Input should be a valid integer, unable to parse string as an integer",
        ),
        (("query", "offset"), "Input should be greater than or equal to 0"),
    ]
    body = answer.json()
    assert body["detail"].startswith("2 values are not accepted: limit: Input should be")
    assert body["errors"][1]["context"] == {"ge": "0"}
    assert "pointer" not in body["errors"][0]  # not in the body


async def test_body_refusals_name_every_field_path(
    http: httpx.AsyncClient, users: KeystoneUsers
) -> None:
    a = users.project_id("a")
    token = {"X-Auth-Token": await users.token("a_admin")}
    answer = await http.put(
        f"/v1/projects/{a}/trail",
        headers=token,
        json={
            "retention_days": 0,
            "events": {
                "include": ["ok.*", "a["],
                "rules": [
                    {"effect": "exclude", "service": ["compute"]},
                    {"effect": "include", "action": ["read", "b]"], "outcome": ["bad"]},
                ],
            },
        },
    )
    assert [where for where, _ in refusals(answer)] == [
        ("body", "retention_days"),
        ("body", "events", "include", 1),
        ("body", "events", "rules", 1, "action", 1),
        ("body", "events", "rules", 1, "outcome", 0),
    ]
    errors = answer.json()["errors"]
    assert errors[2]["field"] == "events.rules[1].action[1]"
    assert errors[2]["pointer"] == "#/events/rules/1/action/1"
    assert errors[2]["detail"] == "pattern 'b]': `]` without a matching `[`"
    assert errors[0]["code"] == "greater_than_equal"
    assert errors[0]["context"] == {"ge": "1"}
    assert answer.json()["detail"].startswith("4 values are not accepted: retention_days: ")


async def test_one_maximum_per_bound(http: httpx.AsyncClient, users: KeystoneUsers) -> None:
    """A trail's retention has one maximum, the operator's (also far above the limit of
    the operator's bounds); the operator's maximum has the limit the defaults show."""
    a = users.project_id("a")
    token = {"X-Auth-Token": await users.token("a_admin")}
    for days in (3651, 40000, 10**30):
        answer = await http.put(
            f"/v1/projects/{a}/trail", headers=token, json={"retention_days": days}
        )
        assert refusals(answer) == [
            (
                ("body", "retention_days"),
                f"retention_days {days} is above the operator's maximum of 3650 days",
            )
        ]
    admin = {"X-Auth-Token": await users.token("cloud_admin")}
    defaults = (await http.get("/v1/defaults", headers=admin)).json()
    assert defaults["max_retention_days"] == 3650
    assert defaults["retention_limit_days"] == 36500
    too_long = await http.put(
        "/v1/defaults", headers=admin, json={**defaults, "max_retention_days": 36501}
    )
    assert refusals(too_long) == [
        (("body", "max_retention_days"), "Input should be less than or equal to 36500")
    ]


async def test_preconditions_media_types_and_limits(
    http: httpx.AsyncClient, users: KeystoneUsers
) -> None:
    a = users.project_id("a")
    token = {"X-Auth-Token": await users.token("a_admin")}
    url = f"/v1/projects/{a}/trail"
    stale = await http.put(url, headers={**token, "If-Match": '"999"'}, json={})
    assert "read it again" in problem_detail(stale, 412)
    assert stale.headers["etag"]
    text = await http.patch(url, headers={**token, "Content-Type": "text/plain"}, content=b"{}")
    assert "application/merge-patch+json" in problem_detail(text, 415)
    big = await http.put(url, headers=token, json={"events": {"include": ["x" * 200] * 30}})
    assert "larger than 4096 bytes" in problem_detail(big, 413)
    assert big.json()["title"] == "Content Too Large"
    broken = await http.put(
        url, headers={**token, "Content-Type": "application/json"}, content=b"{"
    )
    ((where, message),) = refusals(broken)
    assert where == ("body",)
    assert "JSON" in message
