"""A project's status says when its last digest was delivered, per region: the real digest
writer into the dev stack's Swift, read back through the API with a Keystone token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from stacktrail.api.app import create_app
from stacktrail.archive.digests import SETTLE, DigestWriter, period_start
from stacktrail.archive.stores.swift import SwiftStore
from stacktrail.config import Settings
from stacktrail.db.trail_store import TrailStore
from stacktrail.keystone import KeystoneClient
from stacktrail_reader import digest as d
from tests.api.keystone_users import KeystoneUsers
from tests.support.api import client_for
from tests.support.digests import REGION, configure_trail, new_key
from tests.support.stores import project_admin, unique

HOUR = timedelta(hours=1)


async def test_the_status_says_when_the_last_digest_was_delivered(
    keystone_settings: Settings,
    own_store: TrailStore,
    keystone: KeystoneClient,
    users: KeystoneUsers,
    devstack: dict[str, str],
    tmp_path: Path,
) -> None:
    project = users.project_id("a")
    container = unique("digest-status")
    await configure_trail(own_store, project, container)
    key = new_key(tmp_path)
    settings = keystone_settings.model_copy(update={"digest_key_file": tmp_path / "x.key"})
    objects = SwiftStore(keystone)
    writer = DigestWriter(own_store, objects, key, interval=HOUR)
    path = f"/v1/projects/{project}/trail/status"
    hour = period_start(datetime.now(UTC), HOUR)
    clock = hour + SETTLE + timedelta(seconds=1)  # the last hour's digest is due
    try:
        async with client_for(create_app(settings, own_store, keystone)) as http:
            headers = {"X-Auth-Token": await users.token("a_reader")}
            before = (await http.get(path, headers=headers)).json()
            assert [(r["region"], r["last_digest"]) for r in before["regions"]] == [(REGION, None)]

            assert await writer.run_due(clock - 2 * HOUR) == 0  # the chain starts
            status = (await http.get(path, headers=headers)).json()
            assert status["regions"][0]["last_digest"] is None  # started, nothing written

            written_from = datetime.now(UTC)
            assert await writer.run_due(clock) == 2
            written_until = datetime.now(UTC)
            response = await http.get(path, headers=headers)
    finally:
        await objects.aclose()
    assert response.status_code == 200, response.text
    [region] = response.json()["regions"]
    last = region["last_digest"]
    digest_key = d.digest_key(project, REGION, hour - HOUR)
    assert last["key"] == digest_key
    assert d.parse_time(last["period_start"]) == hour - HOUR
    assert d.parse_time(last["period_end"]) == hour
    assert last["key_fingerprint"] == key.fingerprint
    delivered = datetime.fromisoformat(last["delivered_at"])
    assert written_from.replace(microsecond=0) <= delivered <= written_until
    # it is where the status says, in the project's own container
    assert digest_key in project_admin(devstack, "a").listing(container, digest_key)
