"""clouds.yaml entries as the OpenStack client tools write them: found on the standard
search path, merged with secure.yaml, and authenticated against the dev stack's Keystone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from stacktrail_reader.clouds import CloudConfigError, load_cloud, search_path
from tests.support.devstack import reader_auth


def write(path: Path, clouds: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"clouds": clouds}))
    return path


def reader_entry(devstack: dict[str, str], letter: str, **auth: object) -> dict[str, object]:
    return {"auth": {**reader_auth(devstack, letter), **auth}, "region_name": "RegionOne"}


@pytest.fixture(autouse=True)
def no_client_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OS_CLIENT_CONFIG_FILE", "OS_CLIENT_SECURE_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_the_search_path_is_the_current_the_users_and_the_systems_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert search_path() == [
        tmp_path,
        tmp_path / "home" / ".config" / "openstack",
        Path("/etc/openstack"),
    ]


def test_the_first_file_found_wins_and_secure_yaml_adds_the_password(
    tmp_path: Path, devstack: dict[str, str]
) -> None:
    here, user = tmp_path / "here", tmp_path / "user"
    entry = reader_entry(devstack, "a")
    assert isinstance(entry["auth"], dict)
    password = entry["auth"].pop("password")
    write(user / "clouds.yaml", {"mine": reader_entry(devstack, "b")})
    write(here / "clouds.yaml", {"other": entry})
    # the first file found is the one read, as the OpenStack client tools do
    with pytest.raises(CloudConfigError, match=r"no cloud named 'mine' \(it has: other\)"):
        load_cloud("mine", [tmp_path / "empty", here, user])
    write(here / "clouds.yaml", {"mine": entry})
    write(here / "secure.yaml", {"mine": {"auth": {"password": password}}})
    cloud = load_cloud("mine", [here, user])
    assert cloud.path == here / "clouds.yaml"
    assert cloud.auth["username"] == devstack["DEVSTACK_PROJECT_A_READER_USER"]
    assert cloud.auth["password"] == password
    assert (cloud.auth_type, cloud.region_name, cloud.interface) == (
        "password",
        "RegionOne",
        "public",
    )
    session = cloud.session()
    assert session.get_project_id() == devstack["DEVSTACK_PROJECT_A_ID"]


def test_the_environment_names_the_file(
    tmp_path: Path, devstack: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "elsewhere.yaml", {"b": reader_entry(devstack, "b")})
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    cloud = load_cloud("b", [tmp_path / "nothing-here"])
    assert cloud.session().get_project_id() == devstack["DEVSTACK_PROJECT_B_ID"]


def test_dashes_aliases_and_a_plain_domain_read_as_the_client_tools_read_them(
    tmp_path: Path, devstack: dict[str, str]
) -> None:
    entry = reader_entry(devstack, "a")
    auth = entry["auth"]
    assert isinstance(auth, dict)
    del auth["user_domain_name"], auth["project_domain_name"]
    auth["domain-id"] = "default"  # the user's and the project's domain
    auth["tenant_name"] = auth.pop("project_name")  # a deprecated alias
    entry["auth-type"] = "password"
    write(tmp_path / "clouds.yml", {"a": entry})
    cloud = load_cloud("a", [tmp_path])
    assert cloud.auth["user_domain_id"] == cloud.auth["project_domain_id"] == "default"
    assert cloud.session().get_project_id() == devstack["DEVSTACK_PROJECT_A_ID"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"auth": {"username": "x"}}, "has no auth.auth_url"),
        ({"profile": "vexxhost", "auth": {"auth_url": "http://k"}}, "profiles are not supported"),
        ({"auth": {"auth_url": "http://k", "passwd": "x"}}, "auth key 'passwd' is not an option"),
        ({"auth_type": "nonesuch", "auth": {"auth_url": "http://k"}}, "unknown auth_type"),
    ],
)
def test_an_unusable_entry_is_refused_with_the_reason(
    tmp_path: Path, entry: dict[str, object], message: str
) -> None:
    write(tmp_path / "clouds.yaml", {"bad": entry})
    with pytest.raises(CloudConfigError, match=message):
        load_cloud("bad", [tmp_path]).session()


def test_no_clouds_yaml_anywhere_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(CloudConfigError, match=r"no clouds\.yaml found \(looked for .*nothing"):
        load_cloud("any", [tmp_path / "nothing"])


def test_wrong_credentials_fail_at_keystone(tmp_path: Path, devstack: dict[str, str]) -> None:
    from stacktrail_reader.sources import SourceError, SwiftSource

    write(tmp_path / "clouds.yaml", {"a": reader_entry(devstack, "a", password="wrong")})
    with pytest.raises(SourceError, match="keystone"):
        SwiftSource.from_cloud("a", "audit-trail", directories=[tmp_path])
    assert os.environ.get("OS_CLIENT_CONFIG_FILE") is None
