"""The D1 request sequence against the real Keystone: a project admin names `..`."""

from __future__ import annotations

import httpx
import pytest

from tests.api.keystone_users import KeystoneUsers
from tests.support.api import refusals


@pytest.mark.parametrize("container", ["..", "."])
async def test_a_dot_container_with_another_accounts_prefix_is_422(
    keystone_client: httpx.AsyncClient, users: KeystoneUsers, container: str
) -> None:
    a, b = users.project_id("a"), users.project_id("b")
    headers = {"X-Auth-Token": await users.token("a_admin")}
    body = {"archive": {"container": container, "prefix": f"AUTH_{b}/victim", "write_mode": "acl"}}
    before = await keystone_client.get(f"/v1/projects/{a}/trail", headers=headers)
    for method in ("PATCH", "PUT"):
        response = await keystone_client.request(
            method, f"/v1/projects/{a}/trail", json=body, headers=headers
        )
        ((where, message),) = refusals(response)
        assert where == ("body", "archive", "container")
        assert "must not be `.` or `..`" in message
    after = await keystone_client.get(f"/v1/projects/{a}/trail", headers=headers)
    assert after.json() == before.json()  # nothing was stored


async def test_an_upper_case_project_id_is_not_a_project(
    keystone_client: httpx.AsyncClient, users: KeystoneUsers
) -> None:
    """Case-exact ids: B.upper() would fold onto B's index; the API does not take it."""
    headers = {"X-Auth-Token": await users.token("cloud_admin")}
    b = users.project_id("b")
    response = await keystone_client.get(f"/v1/projects/{b.upper()}/trail", headers=headers)
    assert response.status_code == 422, response.text
