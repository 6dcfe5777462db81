"""Digests in real Swift (with Keystone) and S3 (s3api): a day validates clean with the
customer's own credentials, another project's user cannot read them, and the commands
read the configured store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from stacktrail.archive.digests import DigestWriter
from stacktrail.archive.stores.base import Bucket
from stacktrail.archive.stores.s3 import S3Store
from stacktrail.archive.stores.swift import SwiftStore
from stacktrail.cli.main import app
from stacktrail.config import Settings
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import TrailStore
from stacktrail.keystone import KeystoneClient
from stacktrail_reader import digest as d
from stacktrail_reader.records import ArchiveReader
from stacktrail_reader.sources import S3Source, SourceError, SwiftSource
from stacktrail_reader.validate import Problem, load_keys, validate
from tests.support.config_store import make_settings, migrated_store
from tests.support.digests import REGION, Deliverer, a_day, configure_trail, day_start, new_key
from tests.support.stores import ProjectAdmin, unique, user_session

HOUR = timedelta(hours=1)
DAY_AFTER = timedelta(hours=24, minutes=5)  # just after the day: the chain ends there


@pytest.fixture
async def own(tmp_path: Path) -> AsyncIterator[TrailStore]:
    """A config store of the test's own: the digest writer digests every trail in it."""
    settings = make_settings(archive_regions=[REGION])
    async with migrated_store("sqlite", tmp_path, settings) as store:
        yield store


def customer(devstack: dict[str, str], letter: str) -> object:
    upper = letter.upper()
    return user_session(
        devstack,
        devstack[f"DEVSTACK_PROJECT_{upper}_READER_USER"],
        devstack[f"DEVSTACK_PROJECT_{upper}_READER_PASSWORD"],
        devstack[f"DEVSTACK_PROJECT_{upper}_NAME"],
    )


async def test_swift_day_validates_with_the_customers_credentials_only(
    own: TrailStore,
    keystone: KeystoneClient,
    devstack: dict[str, str],
    admin_a: ProjectAdmin,
    admin_b: ProjectAdmin,
    tmp_path: Path,
) -> None:
    container = unique("digests")
    projects = [admin_a.project_id, admin_b.project_id]
    for project in projects:
        await configure_trail(own, project, container)
    objects = SwiftStore(keystone)
    key = new_key(tmp_path)
    deliverer = Deliverer(objects, SqlLedger(own.engine), container)
    start = day_start()
    try:
        await a_day(deliverer, DigestWriter(own, objects, key, interval=HOUR), projects, start)
    finally:
        await objects.aclose()
    public = {key.fingerprint: d.load_public_key(key.public_pem)}
    for project, letter in ((admin_a.project_id, "a"), (admin_b.project_id, "b")):
        session = customer(devstack, letter)
        source = SwiftSource(
            session, container, account_url=f"{devstack['DEVSTACK_SWIFT_URL']}/v1/AUTH_{project}"
        )
        assert load_keys(source) == {key.fingerprint: load_keys(source)[key.fingerprint]}
        report = validate(source, project, REGION, public, now=start + DAY_AFTER)
        assert report.valid, report.findings
        assert len(report.periods) == 24
        assert report.periods[3].objects == 0
        ids = {
            r["id"]
            for r in ArchiveReader(source, project, REGION).records(
                start - timedelta(days=1), start + timedelta(days=1)
            )
        }
        assert ids == set(deliverer.published[project])

    # B's reader, pointed at A's account, is refused its digests and its data
    b_on_a = SwiftSource(
        customer(devstack, "b"),
        container,
        account_url=f"{devstack['DEVSTACK_SWIFT_URL']}/v1/AUTH_{admin_a.project_id}",
    )
    with pytest.raises(SourceError, match="HTTP 403"):
        list(b_on_a.list(d.base_prefix(admin_a.project_id, REGION)))
    digest = d.digest_key(admin_a.project_id, REGION, start)
    with pytest.raises(SourceError, match="HTTP 403"):
        b_on_a.get(digest)

    # A deleted object, through the customer's own account, is reported
    gone = deliverer.keys[admin_a.project_id][5]
    assert admin_a.request("DELETE", f"{container}/{gone}").status_code == 204
    report = validate(
        SwiftSource(
            customer(devstack, "a"),
            container,
            account_url=f"{devstack['DEVSTACK_SWIFT_URL']}/v1/AUTH_{admin_a.project_id}",
        ),
        admin_a.project_id,
        REGION,
        public,
        now=start + DAY_AFTER,
    )
    assert [(f.problem, f.key) for f in report.findings] == [(Problem.MISSING_OBJECT, gone)]


async def test_validate_command_reads_the_configured_swift_store(
    own: TrailStore,
    keystone: KeystoneClient,
    service_settings: Settings,
    admin_a: ProjectAdmin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    container = unique("digests")
    project = admin_a.project_id
    await configure_trail(own, project, container)
    objects = SwiftStore(keystone)
    key = new_key(tmp_path)
    deliverer = Deliverer(objects, SqlLedger(own.engine), container)
    try:
        await a_day(
            deliverer, DigestWriter(own, objects, key, interval=HOUR), [project], day_start()
        )
    finally:
        await objects.aclose()
    for name, value in {
        "STACKTRAIL_ARCHIVE_STORE": "swift",
        "STACKTRAIL_ARCHIVE_REGIONS": REGION,
        "STACKTRAIL_KEYSTONE_URL": service_settings.keystone_url,
        "STACKTRAIL_KEYSTONE_USERNAME": service_settings.keystone_username,
        "STACKTRAIL_KEYSTONE_PASSWORD": service_settings.keystone_password.get_secret_value()
        if hasattr(service_settings.keystone_password, "get_secret_value")
        else str(service_settings.keystone_password),
        "STACKTRAIL_KEYSTONE_PROJECT_NAME": service_settings.keystone_project_name,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("OS_CLOUD", "OS_AUTH_URL"):  # the customer's credentials would be used
        monkeypatch.delenv(name, raising=False)
    end = d.iso(day_start() + 24 * HOUR)  # the chain ends with the day
    args = ["validate", "--project", project, "--container", container, "--to", end]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output.count(" valid ") == 24
    admin_a.request(
        "DELETE", f"{container}/{d.digest_key(project, REGION, day_start() + 6 * HOUR)}"
    )
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "broken chain" in result.output


async def test_s3_day_validates_and_a_changed_object_does_not(
    own: TrailStore, service_settings: Settings, devstack: dict[str, str], tmp_path: Path
) -> None:
    project = devstack["DEVSTACK_S3_PROJECT_ID"]
    bucket = f"{project}-{uuid.uuid4().hex[:8]}"
    await configure_trail(own, project, bucket)
    objects = S3Store.from_settings(service_settings)
    key = new_key(tmp_path)
    deliverer = Deliverer(objects, SqlLedger(own.engine), bucket)
    try:
        await a_day(
            deliverer, DigestWriter(own, objects, key, interval=HOUR), [project], day_start()
        )
        client = boto3.client(
            "s3",
            endpoint_url=devstack["DEVSTACK_S3_URL"],
            aws_access_key_id=devstack["DEVSTACK_S3_ACCESS_KEY"],
            aws_secret_access_key=devstack["DEVSTACK_S3_SECRET_KEY"],
            region_name=REGION,
        )
        source = S3Source(bucket, client)
        now = day_start() + DAY_AFTER
        report = validate(source, project, REGION, load_keys(source), now=now)
        assert report.valid, report.findings
        assert len(report.periods) == 24
        changed = deliverer.keys[project][2]
        data = bytearray(source.get(changed))
        data[-1] ^= 0xFF
        target = Bucket(project, REGION, bucket)
        await objects.put(target, changed, bytes(data), {"Content-Type": "application/gzip"})
        report = validate(source, project, REGION, load_keys(source), now=now)
        assert [(f.problem, f.key) for f in report.findings] == [(Problem.CHANGED_OBJECT, changed)]
    finally:
        await objects.aclose()
