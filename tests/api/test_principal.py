"""Role rules on token data as Keystone returns it (see test_keystone_auth for the real thing)."""

from __future__ import annotations

from stacktrail.api.auth import Principal
from stacktrail.keystone import TokenInfo, token_info
from tests.trails.fixtures import make_settings

SETTINGS = make_settings(auth_mode="keystone", keystone_cloud_admin_project="admin")


def token(project: str, domain: str, roles: list[str], project_id: str = "p1") -> TokenInfo:
    return token_info(
        {
            "user": {"id": "u1", "name": "someone"},
            "project": {
                "id": project_id,
                "name": project,
                "domain": {"id": domain.lower(), "name": domain},
            },
            "roles": [{"id": f"r-{r}", "name": r} for r in roles],
            "expires_at": "2030-01-01T00:00:00.000000Z",
        }
    )


def test_admin_on_the_admin_project_is_cloud_admin() -> None:
    assert Principal.from_token(token("admin", "Default", ["admin"]), SETTINGS).cloud_admin
    assert not Principal.from_token(token("admin", "Default", ["member"]), SETTINGS).cloud_admin


def test_a_project_named_admin_in_another_domain_is_not() -> None:
    other = Principal.from_token(token("admin", "customer-domain", ["admin"]), SETTINGS)
    assert not other.cloud_admin
    assert other.can_write("p1")  # still the admin of its own project
    assert not other.can_read("p2")


def test_cloud_admin_project_by_id() -> None:
    by_id = make_settings(keystone_cloud_admin_project="f00d")
    info = token("whatever", "elsewhere", ["admin"], project_id="f00d")
    assert Principal.from_token(info, by_id).cloud_admin


def test_audit_admin_anywhere_and_role_case() -> None:
    assert Principal.from_token(token("x", "d", ["Audit_Admin"]), SETTINGS).cloud_admin


def test_project_roles() -> None:
    reader = Principal.from_token(token("a", "Default", ["reader"]), SETTINGS)
    assert reader.can_read("p1")
    assert not reader.can_write("p1")
    nobody = Principal.from_token(token("a", "Default", ["load-balancer_member"]), SETTINGS)
    assert not nobody.can_read("p1")


def test_domain_scoped_token() -> None:
    info = token_info(
        {
            "user": {"id": "u1", "name": "d-admin"},
            "domain": {"id": "d1", "name": "customers"},
            "roles": [{"id": "r", "name": "admin"}],
        }
    )
    assert info.project_id is None
    assert info.domain_id == "d1"
    who = Principal.from_token(info, SETTINGS)
    assert not who.cloud_admin
    assert not who.can_read("p1")
