"""Project ids Keystone does not know are refused (404, clear message); names come from
Keystone; every failing project is listed for operators, changed trail or not. Real
Keystone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx

from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.ledger import DeliveryError
from tests.api.keystone_users import KeystoneUsers


def auth(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


async def test_a_name_or_an_unknown_id_is_not_a_project(
    keystone_client: httpx.AsyncClient, users: KeystoneUsers
) -> None:
    admin = auth(await users.token("cloud_admin"))
    for bogus in ("project-b", uuid.uuid4().hex):
        answer = await keystone_client.patch(
            f"/v1/projects/{bogus}/trail",
            json={"retention_days": 30},
            headers={**admin, "Content-Type": "application/merge-patch+json"},
        )
        assert answer.status_code == 404, answer.text
        assert f"Keystone knows no project with id {bogus}" in answer.json()["detail"]
        for path in ("/trail", "/trail/status", "/events", "/files", "/trail/delivery", ""):
            assert (
                await keystone_client.get(f"/v1/projects/{bogus}{path}", headers=admin)
            ).status_code == 404, path
    b = users.project_id("b")
    known = await keystone_client.get(f"/v1/projects/{b}", headers=admin)
    assert known.json() == {"id": b, "name": "project-b"}
    own = await keystone_client.get(
        f"/v1/projects/{users.project_id('a')}", headers=auth(await users.token("a_reader"))
    )
    assert own.json()["name"] == "project-a"


async def test_failing_projects_on_the_defaults_are_listed(
    keystone_client: httpx.AsyncClient, users: KeystoneUsers, store: TrailStore
) -> None:
    untouched = f"f{uuid.uuid4().hex[1:]}"  # never had a trail of its own
    await SqlLedger(store.engine).record_error(
        DeliveryError(untouched, "RegionOne", "PUT x: HTTP 403 Forbidden", datetime.now(UTC))
    )
    admin = auth(await users.token("cloud_admin"))
    failing = await keystone_client.get("/v1/trails", params={"in_error": "true"}, headers=admin)
    assert failing.status_code == 200, failing.text
    entry = next(t for t in failing.json()["trails"] if t["project_id"] == untouched)
    assert entry["in_error"] is True
    every = await keystone_client.get("/v1/trails", params={"limit": 1000}, headers=admin)
    assert [t["project_id"] for t in every.json()["trails"]].count(untouched) == 1
    healthy = await keystone_client.get("/v1/trails", params={"in_error": "false"}, headers=admin)
    assert untouched not in {t["project_id"] for t in healthy.json()["trails"]}
