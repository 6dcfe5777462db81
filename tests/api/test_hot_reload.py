"""Hot reload across processes: a PATCH through the API reaches another process's
`StoreTrails.get()` within 5 s (PostgreSQL, each side with its own connections)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stacktrail.api import create_app
from stacktrail.config import Settings
from stacktrail.db import engine as db
from stacktrail.db.reload import StoreTrails
from stacktrail.db.trail_store import TrailStore
from tests.support.api import client_for
from tests.support.config_store import fresh_database
from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
LIMIT_S = 5.0


class Follower:
    """The other process: prints the effective trail of one project whenever it changes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def next_state(self, within: float) -> dict[str, object]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), within)
        assert line, "the follower process ended"
        state: dict[str, object] = json.loads(line)
        return state

    async def until(self, retention_days: int, limit: float, **more: object) -> float:
        """Seconds until the follower's trail has this retention (and the `more` members)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        wanted = {"retention_days": retention_days, **more}
        while True:
            remaining = limit - (loop.time() - start)
            assert remaining > 0, f"no reload within {limit}s"
            state = await self.next_state(remaining)
            if all(state[name] == value for name, value in wanted.items()):
                return loop.time() - start


@pytest.fixture
async def database_url(db_dir: Path) -> AsyncIterator[str]:
    async with fresh_database("postgresql", db_dir) as url:
        await db.upgrade(url)
        yield url


@pytest.fixture
async def follower(database_url: str, project_id: str) -> AsyncIterator[Follower]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.reload_follower",
        database_url,
        project_id,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield Follower(process)
    finally:
        process.terminate()
        await process.wait()


async def test_patch_reaches_another_process_within_5s(
    settings: Settings, database_url: str, project_id: str, follower: Follower
) -> None:
    first = await follower.next_state(within=30)  # loaded: the defaults
    assert first["retention_days"] == 90
    assert first["version"] == 0

    store = TrailStore(db.create_engine(database_url), settings)
    local = StoreTrails(store, settings)
    await local.load()
    local_reload = asyncio.create_task(local.run_reload(0.2))
    try:
        async with client_for(create_app(settings, store, None)) as http:
            response = await http.patch(
                f"/v1/projects/{project_id}/trail",
                json={"retention_days": 12},
                headers={"If-Match": '"0"'},
            )
            assert response.status_code == 200
            remote_s = await follower.until(12, LIMIT_S)

            response = await http.patch(
                f"/v1/projects/{project_id}/trail", json={"retention_days": 13}
            )
            assert response.status_code == 200
            remote2_s = await follower.until(13, LIMIT_S)
            response = await http.delete(f"/v1/projects/{project_id}/trail")
            assert response.status_code == 200
            reset_s = await follower.until(90, LIMIT_S)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LIMIT_S
        while local.get(project_id).version != 0 or local.version < 3:
            assert loop.time() < deadline
            await asyncio.sleep(0.02)
        print(
            f"\nreload seen by the other process after {remote_s:.2f}s, {remote2_s:.2f}s, "
            f"reset after {reset_s:.2f}s"
        )
    finally:
        local_reload.cancel()
        await store.close()


async def test_both_processes_follow_the_defaults_a_project_does_not_override(
    settings: Settings, database_url: str, project_id: str, follower: Follower
) -> None:
    await follower.next_state(within=30)
    store = TrailStore(db.create_engine(database_url), settings)
    local = StoreTrails(store, settings)
    await local.load()
    local_reload = asyncio.create_task(local.run_reload(0.2))
    try:
        async with client_for(create_app(settings, store, None)) as http:
            trail_url = f"/v1/projects/{project_id}/trail"
            assert (await http.patch(trail_url, json={"retention_days": 12})).status_code == 200
            await follower.until(12, LIMIT_S, interval_s=900.0, container="audit-trail")
            defaults = (await http.get("/v1/defaults")).json()
            changed = {
                name: defaults[name]
                for name in (
                    "max_retention_days",
                    "min_interval",
                    "default_format",
                )
            } | {"default_retention_days": 40, "default_interval": "1h", "default_container": "new"}
            assert (await http.put("/v1/defaults", json=changed)).status_code == 200
            took = await follower.until(12, LIMIT_S, interval_s=3600.0, container="new")
            api = (await http.get(trail_url)).json()
            assert (api["retention_days"], api["archive"]["interval"]) == (12, "1h")
            assert api["archive"]["container"] == "new"

            cleared = await http.patch(trail_url, json={"retention_days": None})
            assert cleared.json()["retention_days"] == 40
            cleared_s = await follower.until(40, LIMIT_S, interval_s=3600.0, container="new")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LIMIT_S
        while local.get(project_id).retention_days != 40:
            assert loop.time() < deadline, "the API's own process did not follow"
            await asyncio.sleep(0.02)
        here = local.get(project_id)
        assert (here.archive.interval.total_seconds(), here.archive.container) == (3600.0, "new")
        print(f"\ndefaults reached the other process after {took:.2f}s, clear {cleared_s:.2f}s")
    finally:
        local_reload.cancel()
        await store.close()
