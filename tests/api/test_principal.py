"""Role rules on token data as Keystone returns it (see test_role_matrix for the real thing)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stacktrail.api import policy
from stacktrail.api.auth import Principal
from stacktrail.api.policy import Policy, PolicyFileError, credentials
from stacktrail.config import Settings
from stacktrail.keystone import TokenInfo, token_info
from tests.support.config_store import make_settings

SETTINGS = make_settings(auth_mode="keystone", keystone_cloud_admin_project="admin")
RULES = Policy(SETTINGS)


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


def who(info: TokenInfo, settings: Settings | None = None) -> Principal:
    return (RULES if settings is None else Policy(settings)).principal_of(info)


def can_read(principal: Principal, project_id: str) -> bool:
    return RULES.allows(principal, policy.TRAIL_GET, project_id)


def can_write(principal: Principal, project_id: str) -> bool:
    return RULES.allows(principal, policy.TRAIL_UPDATE, project_id)


def test_admin_on_the_admin_project_is_cloud_admin() -> None:
    assert who(token("admin", "Default", ["admin"])).cloud_admin
    assert not who(token("admin", "Default", ["member"])).cloud_admin
    admin = who(token("admin", "Default", ["admin"]))
    assert RULES.allows(admin, policy.TRAILS_LIST)
    assert RULES.allows(admin, policy.DEFAULTS_UPDATE)
    assert can_write(admin, "p2")


def test_a_project_named_admin_in_another_domain_is_not() -> None:
    other = who(token("admin", "customer-domain", ["admin"]))
    assert not other.cloud_admin
    assert can_write(other, "p1")  # still the admin of its own project
    assert not can_read(other, "p2")


def test_cloud_admin_domain_setting() -> None:
    ccadmin = make_settings(
        keystone_cloud_admin_project="cloud_admin", keystone_cloud_admin_domain="ccadmin"
    )
    assert who(token("cloud_admin", "ccadmin", ["admin"]), ccadmin).cloud_admin
    assert not who(token("cloud_admin", "Default", ["admin"]), ccadmin).cloud_admin


def test_cloud_admin_project_by_id() -> None:
    by_id = make_settings(keystone_cloud_admin_project="f00d")
    info = token("whatever", "elsewhere", ["admin"], project_id="f00d")
    assert who(info, by_id).cloud_admin


def test_audit_admin_manages_only_its_own_project() -> None:
    auditor = who(token("x", "d", ["Audit_Admin"]))
    assert not auditor.cloud_admin  # it used to be cloud-wide
    assert can_write(auditor, "p1")
    assert can_read(auditor, "p1")
    assert not can_read(auditor, "p2")
    assert not RULES.allows(auditor, policy.TRAILS_LIST)
    assert not RULES.allows(auditor, policy.DEFAULTS_UPDATE)
    # not even on the cloud admin project: only `admin` there is a cloud admin
    assert not who(token("admin", "Default", ["audit_admin"])).cloud_admin


def test_project_roles() -> None:
    for role in ("reader", "member", "audit_viewer"):
        reader = who(token("a", "Default", [role]))
        assert can_read(reader, "p1"), role
        assert not can_write(reader, "p1"), role
        assert RULES.allows(reader, policy.TRAIL_STATUS, "p1")
        assert not RULES.allows(reader, policy.EXPORT_CREATE, "p1")
    nobody = who(token("a", "Default", ["load-balancer_member"]))
    assert not can_read(nobody, "p1")


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
    principal = who(info)
    assert not principal.cloud_admin
    assert not can_read(principal, "p1")
    assert not can_read(principal, "None")  # an absent project id is never the string "None"
    assert "project_id" not in credentials(principal)


def test_unknown_action_is_an_error() -> None:
    with pytest.raises(KeyError):
        RULES.allows(who(token("a", "Default", ["admin"])), "stacktrail:trail:typo", "p1")


def test_noauth_allows_everything() -> None:
    everybody = Principal.unauthenticated()
    for rule in policy.RULES:
        assert RULES.check(everybody, rule.name, {"project_id": "p9"})


def test_operator_policy_file_overrides_a_default(tmp_path: Path) -> None:
    reader = who(token("a", "Default", ["reader"]))
    assert not can_write(reader, "p1")
    path = tmp_path / "policy.yaml"
    path.write_text(
        '"stacktrail:trail:update": "role:reader and project_id:%(project_id)s"\n'
        '"stacktrail:trail:get": "!"\n'
    )
    operator = Policy(make_settings(policy_file=path))
    assert operator.path == str(path)
    assert operator.allows(reader, policy.TRAIL_UPDATE, "p1")
    assert not operator.allows(reader, policy.TRAIL_UPDATE, "p2")
    assert not operator.allows(reader, policy.TRAIL_GET, "p1")
    assert operator.allows(reader, policy.TRAIL_STATUS, "p1")  # the other defaults stay


def test_policy_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text('"stacktrail:trail:get": "!"\n')
    operator = Policy(make_settings(policy_file=path))
    reader = who(token("a", "Default", ["reader"]))
    assert not operator.allows(reader, policy.TRAIL_GET, "p1")
    path.write_text('"stacktrail:trail:get": "@"\n')
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))
    assert operator.allows(reader, policy.TRAIL_GET, "p2")


def test_unusable_policy_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="not a readable file"):
        Policy(make_settings(policy_file=tmp_path / "missing.yaml"))
    undefined = tmp_path / "undefined.yaml"
    undefined.write_text('"stacktrail:trail:get": "rule:no_such_rule"\n')
    with pytest.raises(PolicyFileError, match="rules that do not exist"):
        Policy(make_settings(policy_file=undefined))


def test_sample_policy_lists_every_default_and_loads(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from stacktrail.cli.main import app

    sample = tmp_path / "sample.yaml"
    result = CliRunner().invoke(app, ["policy", "sample", "--output", str(sample)])
    assert result.exit_code == 0, result.output
    rules = [line[1:] for line in sample.read_text().splitlines() if line.startswith('#"')]
    assert {line.split('"')[1] for line in rules} == {rule.name for rule in policy.RULES}
    uncommented = tmp_path / "policy.yaml"
    uncommented.write_text("\n".join(rules) + "\n")
    operator = Policy(make_settings(policy_file=uncommented))
    reader = who(token("a", "Default", ["reader"]))
    assert operator.allows(reader, policy.TRAIL_GET, "p1")
    assert not operator.allows(reader, policy.TRAIL_UPDATE, "p1")
