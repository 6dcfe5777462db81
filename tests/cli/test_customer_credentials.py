"""`stacktrail validate` and `stacktrail read` with the customer's own credentials from a
clouds.yaml entry (`--os-cloud` / OS_CLOUD) or OS_* variables, against the dev stack's
real Keystone and Swift: project A's user validates A's archive and is refused B's."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from stacktrail.archive.digests import DigestWriter
from stacktrail.archive.stores.swift import SwiftStore
from stacktrail.cli.main import app
from stacktrail.db.ledger import SqlLedger
from stacktrail.keystone import KeystoneClient
from stacktrail_reader import digest as d
from tests.support.config_store import make_settings, migrated_store
from tests.support.devstack import reader_auth
from tests.support.digests import REGION, Deliverer, a_day, configure_trail, day_start, new_key
from tests.support.stores import ProjectAdmin, unique

HOUR = timedelta(hours=1)


class Archive:
    def __init__(self, container: str, deliverer: Deliverer, a: str, b: str) -> None:
        self.container, self.deliverer, self.a, self.b = container, deliverer, a, b
        self.start = day_start()
        self.end = self.start + 24 * HOUR


@pytest.fixture
async def archive(
    tmp_path: Path, keystone: KeystoneClient, admin_a: ProjectAdmin, admin_b: ProjectAdmin
) -> AsyncIterator[Archive]:
    """A day of deliveries and digests for projects A and B, in their own Swift accounts."""
    settings = make_settings(archive_regions=[REGION])
    async with migrated_store("sqlite", tmp_path, settings) as store:
        container = unique("customer")
        for project in (admin_a.project_id, admin_b.project_id):
            await configure_trail(store, project, container)
        objects = SwiftStore(keystone)
        deliverer = Deliverer(objects, SqlLedger(store.engine), container)
        result = Archive(container, deliverer, admin_a.project_id, admin_b.project_id)
        try:
            writer = DigestWriter(store, objects, new_key(tmp_path), interval=HOUR)
            await a_day(deliverer, writer, [result.a, result.b], result.start)
        finally:
            await objects.aclose()
        yield result


@pytest.fixture
def customer_dir(tmp_path: Path, devstack: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """The customer's working directory with a clouds.yaml (B's password in secure.yaml),
    and no stacktrail settings or OS_* variables of the developer's shell."""
    home = tmp_path / "customer"
    home.mkdir()
    b_auth = reader_auth(devstack, "b")
    b_password = b_auth.pop("password")
    clouds = {
        "project-a-reader": {"auth": reader_auth(devstack, "a"), "region_name": REGION},
        "project-b-reader": {"auth": b_auth, "region_name": REGION},
    }
    (home / "clouds.yaml").write_text(yaml.safe_dump({"clouds": clouds}))
    secure = {"clouds": {"project-b-reader": {"auth": {"password": b_password}}}}
    (home / "secure.yaml").write_text(yaml.safe_dump(secure))
    monkeypatch.chdir(home)
    monkeypatch.setenv("HOME", str(home))  # no ~/.config/openstack of the developer's
    for name in list(os.environ):
        if name.startswith(("OS_", "STACKTRAIL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STACKTRAIL_ARCHIVE_REGIONS", REGION)
    return home


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_a_clouds_yaml_entry_validates_its_projects_archive_and_is_refused_anothers(
    archive: Archive, customer_dir: Path
) -> None:
    frame = ["--container", archive.container, "--to", d.iso(archive.end)]
    code, out, err = run(
        "validate", "--project", archive.a, "--os-cloud", "project-a-reader", *frame
    )
    assert code == 0, out + err
    assert out.count(" valid ") == 24
    # OS_CLOUD names the entry as --os-cloud does; B's password comes from secure.yaml
    code, out, err = run(
        "validate", "--project", archive.b, *frame, env={"OS_CLOUD": "project-b-reader"}
    )
    assert code == 0, out + err
    assert out.count(" valid ") == 24

    # A's reader asked for B's archive: Swift refuses it, and nothing is called valid
    code, out, err = run(
        "validate", "--project", archive.b, "--os-cloud", "project-a-reader", *frame
    )
    assert code == 2
    assert "HTTP 403" in err
    assert f"AUTH_{archive.b}" in err
    assert " valid " not in out

    code, out, err = run("validate", "--project", archive.a, "--os-cloud", "nonesuch", *frame)
    assert code == 2
    assert "no cloud named 'nonesuch'" in err


def test_read_streams_with_the_clouds_yaml_entry_and_os_variables(
    archive: Archive, customer_dir: Path, devstack: dict[str, str]
) -> None:
    frame = [
        "--container",
        archive.container,
        "--from",
        d.iso(archive.start - 24 * HOUR),
        "--to",
        d.iso(archive.end + 24 * HOUR),
    ]
    code, out, err = run("read", "--project", archive.a, "--os-cloud", "project-a-reader", *frame)
    assert code == 0, err
    ids = [orjson.loads(line)["id"] for line in out.splitlines()]
    assert sorted(ids) == sorted(archive.deliverer.published[archive.a])

    # the same customer with OS_* variables instead of a clouds.yaml
    auth = reader_auth(devstack, "a")
    env = {
        "OS_AUTH_URL": auth["auth_url"],
        "OS_USERNAME": auth["username"],
        "OS_PASSWORD": auth["password"],
        "OS_PROJECT_NAME": auth["project_name"],
        "OS_REGION_NAME": REGION,
    }
    code, out, err = run("read", "--project", archive.a, *frame, env=env)
    assert code == 0, err
    assert len(out.splitlines()) == len(ids)
    code, out, err = run("read", "--project", archive.b, *frame, env=env)
    assert code == 2
    assert "HTTP 403" in err
    assert out == ""


@pytest.mark.parametrize("project", ["../AUTH_other", "a/b", "A" * 65, "-x", "x%2f.."])
@pytest.mark.parametrize("command", ["read", "validate"])
def test_a_project_that_is_not_an_id_chooses_no_path_or_account(
    customer_dir: Path, tmp_path: Path, command: str, project: str
) -> None:
    extra = ["--from", "2026-11-01T00:00:00Z", "--to", "2026-11-02T00:00:00Z"]
    code, out, err = run(command, "--project", project, "--dir", str(tmp_path), *extra)
    assert code == 2
    assert f"--project {project!r} is not a project id" in err
    assert out == ""
