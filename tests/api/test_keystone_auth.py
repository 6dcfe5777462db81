"""Roles against the dev stack's real Keystone (tokens issued for the seeded users)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from stacktrail.api import create_app
from stacktrail.api.auth import TokenCache
from stacktrail.config import Settings
from stacktrail.db.trail_store import TrailStore
from stacktrail.keystone import InvalidToken, KeystoneClient, TokenInfo
from tests.api.keystone_users import KeystoneUsers
from tests.api.test_admin_api import DEFAULTS
from tests.support.api import TOKEN_CACHE_TTL, Emitted, client_for


@pytest.fixture(scope="session")
async def tokens(users: KeystoneUsers) -> dict[str, str]:
    names = ["a_admin", "a_member", "a_reader", "b_admin", "cloud_admin", "audit_admin"]
    # one after the other: the dev stack's Keystone runs on SQLite
    return {name: await users.token(name) for name in names}


def auth(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def trail(project_id: str) -> str:
    return f"/v1/projects/{project_id}/trail"


async def test_project_admin_reads_and_changes_only_its_project(
    keystone_client: httpx.AsyncClient,
    users: KeystoneUsers,
    tokens: dict[str, str],
    emitted: Emitted,
) -> None:
    http, headers = keystone_client, auth(tokens["a_admin"])
    a, b = users.project_id("a"), users.project_id("b")
    current = await http.get(trail(a), headers=headers)
    assert current.status_code == 200
    assert "X-Stacktrail-Auth" not in current.headers
    changed = await http.patch(
        trail(a),
        json={"retention_days": 33},
        headers={**headers, "If-Match": current.headers["ETag"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["updated_by"]["user_name"] == users.env["DEVSTACK_PROJECT_A_ADMIN_USER"]
    initiator = emitted[-1]["initiator"]
    assert initiator["name"] == users.env["DEVSTACK_PROJECT_A_ADMIN_USER"]
    assert initiator["project_id"] == a
    assert emitted[-1]["target"]["project_id"] == a
    assert (await http.get(trail(a) + "/status", headers=headers)).status_code == 200
    assert (await http.get(trail(a) + "/changes", headers=headers)).status_code == 200

    assert (await http.get(trail(b), headers=headers)).status_code == 403
    assert (await http.put(trail(b), json={}, headers=headers)).status_code == 403
    assert (await http.patch(trail(b), json={}, headers=headers)).status_code == 403
    assert (await http.delete(trail(b), headers=headers)).status_code == 403
    assert (await http.get(trail(b) + "/status", headers=headers)).status_code == 403
    assert (await http.get("/v1/trails", headers=headers)).status_code == 403
    assert (await http.put("/v1/defaults", json=DEFAULTS, headers=headers)).status_code == 403
    bounds = await http.get("/v1/defaults", headers=headers)
    assert bounds.status_code == 200
    assert bounds.json()["max_retention_days"] == 3650
    assert (await http.get("/v1/event-types", headers=headers)).status_code == 200
    over = await http.patch(trail(a), json={"retention_days": 5000}, headers=headers)
    assert over.status_code == 422  # within the operator's bounds only


@pytest.mark.parametrize("who", ["a_reader", "a_member"])
async def test_reader_and_member_only_read_their_project(
    keystone_client: httpx.AsyncClient, users: KeystoneUsers, tokens: dict[str, str], who: str
) -> None:
    http, headers = keystone_client, auth(tokens[who])
    a, b = users.project_id("a"), users.project_id("b")
    assert (await http.get(trail(a), headers=headers)).status_code == 200
    assert (await http.get(trail(a) + "/status", headers=headers)).status_code == 200
    for method in ("PUT", "PATCH"):
        response = await http.request(method, trail(a), json={"enabled": False}, headers=headers)
        assert response.status_code == 403, method
        assert "admin role" in response.json()["detail"]
    assert (await http.delete(trail(a), headers=headers)).status_code == 403
    assert (await http.get(trail(b), headers=headers)).status_code == 403
    assert (await http.get("/v1/trails", headers=headers)).status_code == 403


async def test_audit_admin_is_not_cloud_wide(
    keystone_client: httpx.AsyncClient, users: KeystoneUsers, tokens: dict[str, str]
) -> None:
    """The auditor holds audit_admin on the cloud admin project: under the legacy Keystone
    policy any project admin can grant itself that role, so it manages that project only."""
    headers = auth(tokens["audit_admin"])
    for letter in ("a", "b"):
        project = users.project_id(letter)
        response = await keystone_client.put(trail(project), json={}, headers=headers)
        assert response.status_code == 403, response.text
        assert (await keystone_client.get(trail(project), headers=headers)).status_code == 403
    assert (await keystone_client.get("/v1/trails", headers=headers)).status_code == 403
    response = await keystone_client.put("/v1/defaults", json=DEFAULTS, headers=headers)
    assert response.status_code == 403


@pytest.mark.parametrize("who", ["cloud_admin"])
async def test_cloud_admins_change_every_project_and_the_defaults(
    keystone_settings: Settings,
    own_store: TrailStore,
    keystone: KeystoneClient,
    users: KeystoneUsers,
    tokens: dict[str, str],
    who: str,
) -> None:
    app = create_app(keystone_settings, own_store, keystone)
    headers = auth(tokens[who])
    async with client_for(app) as http:
        for letter in ("a", "b"):
            project = users.project_id(letter)
            response = await http.put(trail(project), json={"retention_days": 77}, headers=headers)
            assert response.status_code == 200, response.text
            assert (await http.get(trail(project), headers=headers)).json()["retention_days"] == 77
        listed = await http.get("/v1/trails", headers=headers)
        assert listed.status_code == 200
        assert {t["project_id"] for t in listed.json()["trails"]} == {
            users.project_id("a"),
            users.project_id("b"),
        }
        response = await http.put("/v1/defaults", json=DEFAULTS, headers=headers)
        assert response.status_code == 200, response.text
        reset = await http.delete(trail(users.project_id("b")), headers=headers)
        assert reset.status_code == 200
        assert (await http.get("/v1/projects/unscoped/trail", headers=headers)).status_code == 200


async def test_missing_and_invalid_tokens_are_401(
    keystone_client: httpx.AsyncClient, users: KeystoneUsers, keystone_settings: Settings
) -> None:
    a = users.project_id("a")
    for headers in ({}, auth("not-a-token"), auth("gAAAAAB" + "x" * 180), auth(" ")):
        for path in (trail(a), "/v1/defaults", "/v1/event-types", "/v1/trails"):
            response = await keystone_client.get(path, headers=headers)
            assert response.status_code == 401, (headers, path)
            assert response.headers["WWW-Authenticate"] == (
                f'Keystone uri="{keystone_settings.keystone_url}"'
            )
    # the probes need no token
    assert (await keystone_client.get("/healthz")).status_code == 200
    assert (await keystone_client.get("/readyz")).status_code == 200


async def test_revoked_token_is_refused_after_the_cache_ttl(
    keystone_client: httpx.AsyncClient, users: KeystoneUsers
) -> None:
    token = await users.token("a_reader")
    a = users.project_id("a")
    assert (await keystone_client.get(trail(a), headers=auth(token))).status_code == 200
    await users.revoke(token)
    await asyncio.sleep(TOKEN_CACHE_TTL.total_seconds() + 0.2)
    assert (await keystone_client.get(trail(a), headers=auth(token))).status_code == 401


async def test_service_user_refused_by_keystone_is_503(
    keystone_settings: Settings, store: TrailStore, users: KeystoneUsers, tokens: dict[str, str]
) -> None:
    wrong = keystone_settings.model_copy(update={"keystone_password": "wrong-password"})
    app = create_app(wrong, store, KeystoneClient(wrong))
    async with client_for(app) as http:
        response = await http.get(trail(users.project_id("a")), headers=auth(tokens["a_admin"]))
    assert response.status_code == 503
    assert "cannot validate" in response.json()["detail"]


async def test_keystone_client_reads_tokens(
    keystone: KeystoneClient, users: KeystoneUsers, tokens: dict[str, str]
) -> None:
    info = await keystone.validate(tokens["a_admin"])
    assert info.project_id == users.project_id("a")
    assert info.user_name == users.env["DEVSTACK_PROJECT_A_ADMIN_USER"]
    assert {"admin", "member", "reader"} <= info.roles  # implied roles are included
    auditor = await keystone.validate(tokens["audit_admin"])
    assert "audit_admin" in auditor.roles


@pytest.fixture
async def unversioned_keystone(keystone_settings: Settings) -> AsyncIterator[KeystoneClient]:
    url = keystone_settings.keystone_url.removesuffix("/v3")
    return KeystoneClient(keystone_settings.model_copy(update={"keystone_url": url}))


async def test_keystone_url_without_version(
    unversioned_keystone: KeystoneClient, tokens: dict[str, str]
) -> None:
    assert (await unversioned_keystone.validate(tokens["a_reader"])).roles >= {"reader"}


class CountingKeystone:
    """The real Keystone client, counting the validations that reach Keystone."""

    def __init__(self, client: KeystoneClient) -> None:
        self.client = client
        self.calls = 0

    async def validate(self, user_token: str) -> TokenInfo:
        self.calls += 1
        return await self.client.validate(user_token)


async def test_token_cache_shares_and_expires_validations(
    keystone: KeystoneClient, users: KeystoneUsers
) -> None:
    counting = CountingKeystone(keystone)
    cache = TokenCache(counting, ttl=0.5)
    token = await users.token("a_member")
    infos = await asyncio.gather(*(cache.validate(token) for _ in range(10)))
    assert counting.calls == 1
    assert {info.user_id for info in infos} == {infos[0].user_id}
    await cache.validate(token)
    assert counting.calls == 1
    await asyncio.sleep(0.6)
    await cache.validate(token)
    assert counting.calls == 2

    for _ in range(3):
        with pytest.raises(InvalidToken):
            await cache.validate("gAAAAABnot-a-real-token")
    assert counting.calls == 3  # a refused token is remembered too
