"""The whole product in two processes, as operators deploy it: a pipeline process and an
API process sharing a PostgreSQL config store, with real Keystone, RabbitMQ (own vhost)
and the OpenSearch-compatible osmem-server (no OpenSearch cluster can run here).

A trail change made through the API reaches the other process's pipeline within 5 s,
and the change itself lands as a CADF event in the project's own trail.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from stacktrail.search.documents import index_name
from tests.api.keystone_users import KeystoneUsers
from tests.support import search
from tests.support.broker import publish, wait_for_consumer
from tests.support.cadf_factory import DEFAULT_EVENT_TIME, make_notification
from tests.support.tcpproxy import free_port

ROOT = Path(__file__).resolve().parent.parent
STACKTRAIL = [sys.executable, "-m", "stacktrail.cli"]


@pytest.fixture
def env(
    devstack: dict[str, str],
    amqp_url: str,
    postgres_url: str,
    search_url: str,
    index_template: str,
    tmp_path: Path,
) -> dict[str, str]:
    queue = f"st-{uuid.uuid4().hex[:8]}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("STACKTRAIL_")}
    keystone = {k: v for k, v in devstack.items() if k.startswith("STACKTRAIL_KEYSTONE_")}
    return (
        base
        | keystone
        | {
            "STACKTRAIL_AMQP_URL": amqp_url,
            "STACKTRAIL_AMQP_QUEUE": queue,
            "STACKTRAIL_AMQP_DEAD_LETTER_EXCHANGE": f"{queue}.dead",
            "STACKTRAIL_AMQP_BINDINGS": "keystone:notifications.#,nova:notifications.#",
            "STACKTRAIL_DATABASE_URL": postgres_url,
            "STACKTRAIL_SEARCH_URL": search_url,
            "STACKTRAIL_SEARCH_INDEX_TEMPLATE": index_template,
            "STACKTRAIL_ARCHIVE_STORE": "file",
            "STACKTRAIL_ARCHIVE_DIR": str(tmp_path / "archive"),
            "STACKTRAIL_SPOOL_DIR": str(tmp_path / "spool"),
            "STACKTRAIL_API_LISTEN": f"127.0.0.1:{free_port()}",
            "STACKTRAIL_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
            "STACKTRAIL_RELOAD_INTERVAL": "1s",
            "STACKTRAIL_TOKEN_CACHE_TTL": "5s",
        }
    )


@pytest.fixture
def processes(env: dict[str, str], tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    subprocess.run(
        [*STACKTRAIL, "db", "upgrade"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    procs = []
    for role in ("pipeline", "api"):
        with (tmp_path / f"{role}.log").open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [*STACKTRAIL, "run", "--only", role],
                    env=env,
                    cwd=ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    yield procs
    for proc in procs:
        proc.terminate()
    for proc in procs:
        assert proc.wait(timeout=60) == 0, "a process did not stop cleanly on SIGTERM"


async def wait_for_api(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(150):
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("the API did not come up")


@pytest.mark.usefixtures("processes")
async def test_trail_change_reaches_the_other_process_within_5_s(
    env: dict[str, str], devstack: dict[str, str]
) -> None:
    users = KeystoneUsers(devstack)
    project = users.project_id("a")
    url = env["STACKTRAIL_AMQP_URL"]
    base = f"http://{env['STACKTRAIL_API_LISTEN']}"
    index = index_name(env["STACKTRAIL_SEARCH_INDEX_TEMPLATE"], project, DEFAULT_EVENT_TIME)
    search_url = env["STACKTRAIL_SEARCH_URL"]

    await wait_for_api(base)
    await wait_for_consumer(url, env["STACKTRAIL_AMQP_QUEUE"])

    def keystone_event(n: int) -> bytes:
        return make_notification(
            event_id=f"ks-{n}",
            initiator_project=project,
            event_type="identity.user.updated",
            action="updated.user",
        )

    def nova_event(n: int) -> bytes:
        return make_notification(event_id=f"nova-{n}", initiator_project=project)

    await publish(url, [keystone_event(1)], exchange="keystone")
    await publish(url, [nova_event(1)])
    assert await search.wait_for_count(search_url, index, 2) == 2

    token = await users.token("a_admin")
    async with httpx.AsyncClient(base_url=base, headers={"X-Auth-Token": token}) as http:
        response = await http.patch(
            f"/v1/projects/{project}/trail",
            json={"events": {"exclude": ["identity.*"]}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status_code == 200, response.text
    await asyncio.sleep(5)

    await publish(url, [keystone_event(2)], exchange="keystone")
    await publish(url, [nova_event(2)])
    assert await search.wait_for_count(search_url, index, 3) >= 3
    await asyncio.sleep(1)  # a keystone event let through would be in the same bulk
    assert await search.get_doc(search_url, index, "nova-2") is not None
    assert await search.get_doc(search_url, index, "ks-2") is None, "identity.* not excluded"

    # The change itself is an audit event in the project's own trail.
    now_index = index_name(env["STACKTRAIL_SEARCH_INDEX_TEMPLATE"], project, datetime.now(UTC))
    async with httpx.AsyncClient(base_url=search_url, timeout=30) as http:
        for _ in range(50):
            found = await http.post(
                f"/{now_index}/_search", json={"query": {"term": {"action": "update/trail"}}}
            )
            if found.status_code == 200 and found.json()["hits"]["hits"]:
                break
            await asyncio.sleep(0.2)
        hits = found.json()["hits"]["hits"]
    assert hits, "the trail change was not recorded as a CADF event"
    change = hits[0]["_source"]
    assert change["target"]["project_id"] == project
    assert change["initiator"]["name"] == devstack["DEVSTACK_PROJECT_A_ADMIN_USER"]

    async with httpx.AsyncClient(base_url=base) as http:
        metrics = await http.get("/metrics/")
        ready = await http.get("/readyz")
    assert metrics.status_code == 200
    assert "stacktrail_messages_consumed_total" in metrics.text
    assert ready.status_code == 200, ready.text
