"""Export jobs through the API: queued in the config store, run by the scheduler, resumed
after a crash; the trail's auth rules (real Keystone)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from stacktrail.api import create_app
from stacktrail.api.routes import exports as routes
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.config import Settings
from stacktrail.db.export_jobs import FAILED, ExportJobs
from stacktrail.db.trail_store import TrailStore
from stacktrail.keystone import KeystoneClient
from stacktrail.scheduler import Scheduler, SchedulerConfig, run_scheduler
from stacktrail.search.client import SearchClient
from tests.api.keystone_users import KeystoneUsers
from tests.archive.test_export import day_of, read_tree
from tests.support.corpus import DAY0, Corpus
from tests.support.jobs import jobs_settings
from tests.support.polling import eventually

FRAME_BODY = {"from": "2025-03-01T00:00:00Z", "to": "2025-03-03T00:00:00Z", "format": "csv"}


def api(settings: Settings, store: TrailStore, keystone: KeystoneClient | None = None) -> FastAPI:
    app = create_app(settings, store, keystone)
    app.include_router(routes.router)
    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def test_export_job_runs_in_the_scheduler_and_survives_a_crash(
    store: TrailStore,
    export_corpus: Corpus,
    search_url: str,
    tmp_path: Path,
    devstack: dict[str, str],
) -> None:
    project = devstack["DEVSTACK_PROJECT_A_ID"]
    settings = jobs_settings(search_url, export_corpus.template, tmp_path, auth_mode="noauth")
    async with client_for(api(settings, store)) as http:
        refused = await http.post(
            f"/v1/projects/{project}/exports", json={"from": "2025-03-03", "to": "2025-03-01"}
        )
        assert refused.status_code == 422
        assert "inverted" in refused.text
        # datetime would overflow: a clear 422, not a server error
        for start, end in (("0001-01-01T00:00+01:00", "now"), ("-7d", "9999-12-31T23:59Z")):
            refused = await http.post(
                f"/v1/projects/{project}/exports", json={"from": start, "to": end}
            )
            assert refused.status_code == 422, refused.text
            assert "out of range" in refused.text
        created = await http.post(f"/v1/projects/{project}/exports", json=FRAME_BODY)
        assert created.status_code == 202, created.text
        job = created.json()
        assert created.headers["Location"] == f"/v1/exports/{job['id']}"
        assert job["status"] == "queued"
        assert job["from"] == "2025-03-01T00:00:00Z"
        busy = await http.post(f"/v1/projects/{project}/exports", json=FRAME_BODY)
        assert busy.status_code == 409

        objects = LocalDirStore(tmp_path / "archive")
        search = SearchClient(search_url)
        jobs = ExportJobs(store.engine)
        config = SchedulerConfig(page_size=500)
        try:
            # a leader that dies after the job's first object
            small = Scheduler(settings, store, search, objects, config=config)
            small.jobs = jobs
            running = asyncio.create_task(small.run_export_jobs())

            async def one_file() -> bool:
                current = await jobs.get(job["id"])
                return current is not None and current.files_done >= 1

            await eventually(one_file, within=60)
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            midway = (await http.get(f"/v1/exports/{job['id']}")).json()
            assert midway["status"] == "running"
            assert midway["progress"]["files_done"] >= 1
            assert midway["progress"]["events_total"] > midway["progress"]["events_done"]

            # the next leader resumes it
            restarted = Scheduler(settings, store, search, objects, config=config)
            assert await restarted.run_export_jobs() == 1
        finally:
            await search.close()

        done = (await http.get(f"/v1/exports/{job['id']}")).json()
        assert done["status"] == "done", done
        assert done["progress"]["percent"] == 100.0
        expected = export_corpus.day_counts(project, DAY0, DAY0.replace(day=3))
        assert done["result"]["days"] == dict(expected)
        listed = (await http.get(f"/v1/projects/{project}/exports")).json()["exports"]
        assert listed[0]["id"] == job["id"]

    container = done["container"]
    tree = read_tree(tmp_path / "archive" / container)
    assert set(done["regions"]) == {key.split("/")[1] for key in tree}
    for region in done["regions"]:
        mine = {k: v for k, v in tree.items() if k.split("/")[1] == region}
        ids = [row["id"] for rows in mine.values() for row in rows]
        assert len(ids) == len(set(ids)), "an event was written twice"
        per_day: Counter[str] = Counter()
        for key, rows in mine.items():
            per_day[day_of(key)] += len(rows)
        assert per_day == expected


async def test_scheduler_loop_runs_queued_jobs(
    store: TrailStore,
    export_corpus: Corpus,
    search_url: str,
    tmp_path: Path,
    devstack: dict[str, str],
) -> None:
    project = devstack["DEVSTACK_PROJECT_B_ID"]
    settings = jobs_settings(search_url, export_corpus.template, tmp_path, auth_mode="noauth")
    async with client_for(api(settings, store)) as http:
        empty = await http.post(
            f"/v1/projects/{project}/exports",
            json={"from": "2025-04-01T00:00:00Z", "to": "2025-04-02T00:00:00Z"},
        )
        assert empty.status_code == 202
        job_id = empty.json()["id"]
        search = SearchClient(search_url)
        stop = asyncio.Event()
        loop = asyncio.create_task(
            run_scheduler(
                settings,
                store,
                search,
                LocalDirStore(tmp_path / "archive"),
                stop,
                config=SchedulerConfig(
                    tick=0.1, lock_check=0.1, lock_retry=0.1, search_retention=False
                ),
            )
        )
        try:

            async def finished() -> bool:
                body = (await http.get(f"/v1/exports/{job_id}")).json()
                return bool(body["status"] == "done")

            await eventually(finished, within=60)
        finally:
            stop.set()
            await loop
            await search.close()
        body = (await http.get(f"/v1/exports/{job_id}")).json()
        assert body["result"]["message"] == "no events in the time frame: nothing written"
        assert body["result"]["files"] == []


@pytest.fixture(scope="session")
def users(devstack: dict[str, str]) -> KeystoneUsers:
    return KeystoneUsers(devstack)


async def test_who_may_start_and_read_exports(
    store: TrailStore,
    export_corpus: Corpus,
    search_url: str,
    tmp_path: Path,
    devstack: dict[str, str],
    users: KeystoneUsers,
    keystone: KeystoneClient,
) -> None:
    project = devstack["DEVSTACK_PROJECT_A_ID"]
    settings = jobs_settings(
        search_url,
        export_corpus.template,
        tmp_path,
        auth_mode="keystone",
        keystone_url=devstack["STACKTRAIL_KEYSTONE_URL"],
        keystone_username=devstack["STACKTRAIL_KEYSTONE_USERNAME"],
        keystone_password=devstack["STACKTRAIL_KEYSTONE_PASSWORD"],
        keystone_project_name=devstack["STACKTRAIL_KEYSTONE_PROJECT_NAME"],
        keystone_cloud_admin_project=devstack["DEVSTACK_CLOUD_ADMIN_PROJECT"],
    )
    path = f"/v1/projects/{project}/exports"
    async with client_for(api(settings, store, keystone)) as http:

        async def as_(who: str) -> dict[str, str]:
            return {"X-Auth-Token": await users.token(who)}

        assert (await http.post(path, json=FRAME_BODY)).status_code == 401
        for who in ("a_member", "a_reader", "b_admin"):
            response = await http.post(path, json=FRAME_BODY, headers=await as_(who))
            assert response.status_code == 403, who
        created = await http.post(path, json=FRAME_BODY, headers=await as_("a_admin"))
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        assert (
            created.json()["requested_by"]["user_name"] == devstack["DEVSTACK_PROJECT_A_ADMIN_USER"]
        )
        try:
            for who in ("a_reader", "a_member", "a_admin", "cloud_admin"):
                response = await http.get(f"/v1/exports/{job_id}", headers=await as_(who))
                assert response.status_code == 200, who
            hidden = await http.get(f"/v1/exports/{job_id}", headers=await as_("b_admin"))
            assert hidden.status_code == 404
            listing = await http.get(path, headers=await as_("b_admin"))
            assert listing.status_code == 403
            other = await http.post(
                f"/v1/projects/{devstack['DEVSTACK_PROJECT_B_ID']}/exports",
                json=FRAME_BODY,
                headers=await as_("cloud_admin"),
            )
            assert other.status_code == 202
            await ExportJobs(store.engine).finish(other.json()["id"], FAILED, "test")
        finally:
            await ExportJobs(store.engine).finish(job_id, FAILED, "not run in this test")
