"""What the API tells whom, and how bad requests end: event types per project, the editor
of the defaults, `Cache-Control`, deep JSON, oversized and revoked tokens (real Keystone)."""

from __future__ import annotations

import json
import logging
import uuid

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacktrail.api import create_app
from stacktrail.api.limits import json_depth
from stacktrail.config import Settings
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import TrailStore
from stacktrail.keystone import MAX_TOKEN_LENGTH, KeystoneClient
from tests.api.keystone_users import KeystoneUsers
from tests.api.test_admin_api import DEFAULTS
from tests.support.api import client_for

__all__ = ["tokens"]  # the session fixture of Keystone tokens
from tests.api.test_keystone_auth import auth, tokens, trail
from tests.support.api import refusals


def nested(depth: int) -> str:
    """A JSON object `depth` levels deep (too deep for `json.dumps` to write)."""
    return '{"filter": ' + '{"a": ' * (depth - 1) + '"deep"' + "}" * (depth - 1) + "}"


async def test_thousand_deep_patch_is_422(client: httpx.AsyncClient) -> None:
    response = await client.patch(
        "/v1/projects/p1/trail",
        content=nested(1000),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    ((where, message),) = refusals(response)
    assert where == ("body",)
    assert "nested 1000 levels deep; at most 32" in message
    fine = await client.patch("/v1/projects/p1/trail", json={"retention_days": 9})
    assert fine.status_code == 200, fine.text


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n'),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=30,
)


@given(json_values)
def test_json_depth_counts_nesting_not_brackets_in_strings(value: object) -> None:
    assert json_depth(json.dumps(value).encode()) == _depth(value)
    assert json_depth(json.dumps(value, ensure_ascii=False).encode()) == _depth(value)


async def test_api_answers_are_not_stored(client: httpx.AsyncClient) -> None:
    for path in ("/v1/defaults", "/v1/event-types", "/v1/projects/p1/trail", "/v1/nowhere"):
        response = await client.get(path)
        assert response.headers["Cache-Control"] == "no-store", path


async def test_oversized_token_is_401_not_503(
    keystone_client: httpx.AsyncClient, users: KeystoneUsers, caplog: pytest.LogCaptureFixture
) -> None:
    # within stacktrail's own bound, too large for Keystone's HTTP server (431)
    token = "a" * MAX_TOKEN_LENGTH
    with caplog.at_level(logging.ERROR):
        response = await keystone_client.get(trail(users.project_id("a")), headers=auth(token))
    assert response.status_code == 401, response.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_revoked_token_cannot_write_at_once(
    keystone_client: httpx.AsyncClient, users: KeystoneUsers
) -> None:
    token = await users.token("a_admin")
    a = users.project_id("a")
    assert (await keystone_client.get(trail(a), headers=auth(token))).status_code == 200
    await users.revoke(token)
    # reads may trust the cache for STACKTRAIL_TOKEN_CACHE_TTL; writes ask Keystone
    response = await keystone_client.patch(trail(a), json={"enabled": True}, headers=auth(token))
    assert response.status_code == 401, response.text


async def unscoped_token(users: KeystoneUsers) -> str:
    """A token of project A's admin without any scope (and so without roles)."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": users.env["DEVSTACK_PROJECT_A_ADMIN_USER"],
                        "domain": {"id": "default"},
                        "password": users.env["DEVSTACK_PROJECT_A_ADMIN_PASSWORD"],
                    }
                },
            },
            "scope": "unscoped",  # not the user's default project
        }
    }
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{users.url}/auth/tokens", json=body)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


async def test_event_types_and_defaults_editor_per_caller(
    keystone_settings: Settings,
    own_store: TrailStore,
    keystone: KeystoneClient,
    users: KeystoneUsers,
    tokens: dict[str, str],
) -> None:
    a, b = users.project_id("a"), users.project_id("b")
    tag = uuid.uuid4().hex[:8]
    both, only_b = f"{tag}.identity.user.created", f"{tag}.compute.instance.create.end"
    ledger = SqlLedger(own_store.engine)
    await ledger.record_event_types({both: 5, only_b: 7})
    await ledger.record_project_event_types({(a, both): 2, (b, both): 3, (b, only_b): 7})
    app = create_app(keystone_settings, own_store, keystone)
    unscoped = await unscoped_token(users)
    async with client_for(app) as http:
        changed = await http.put("/v1/defaults", json=DEFAULTS, headers=auth(tokens["cloud_admin"]))
        assert changed.status_code == 200, changed.text
        admin = users.env["DEVSTACK_CLOUD_ADMIN_USER"]

        for who in ("a_reader", "a_admin"):
            listed = await http.get("/v1/event-types", headers=auth(tokens[who]))
            assert listed.status_code == 200
            seen = {e["event_type"]: e["count"] for e in listed.json()["event_types"]}
            assert seen == {both: 2}, who  # A's own count, nothing only B produced
            defaults = (await http.get("/v1/defaults", headers=auth(tokens[who]))).json()
            assert defaults["updated_by"] is None
            assert admin not in json.dumps(defaults)
            assert {e["event_type"] for e in defaults["event_types"]} == {both}

        listed = await http.get("/v1/event-types", headers=auth(tokens["cloud_admin"]))
        seen = {e["event_type"]: e["count"] for e in listed.json()["event_types"]}
        assert (seen[both], seen[only_b]) == (5, 7)
        defaults = (await http.get("/v1/defaults", headers=auth(tokens["cloud_admin"]))).json()
        assert defaults["updated_by"]["user_name"] == admin

        refused = await http.get("/v1/event-types", headers=auth(unscoped))
        assert refused.status_code == 403
        assert "project-scoped" in refused.json()["detail"]
        defaults = (await http.get("/v1/defaults", headers=auth(unscoped))).json()
        assert defaults["event_types"] == []
        assert defaults["updated_by"] is None
