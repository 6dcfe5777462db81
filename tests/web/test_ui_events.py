"""Events in the browser: a project's recent events with a filter, one event's JSON,
"Download events" (an export job with progress and the objects written), and the files
in the container. Real Keystone, the dev stack's search server, Debian's Chromium."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from stacktrail.archive.export_jobs import run_export_job
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.config import Settings
from stacktrail.db import engine as db
from stacktrail.db.export_jobs import ExportJobs
from stacktrail.search.browse import SearchEventBrowser
from stacktrail.search.client import SearchClient
from tests.support.corpus import bulk_load, install_template, make_event, remove_indices
from tests.support.devstack import RUN_ID
from tests.support.web import (
    PHONE,
    assert_accessible,
    assert_fields_labelled,
    seed_history,
    shot,
    sign_in,
)
from tests.web.live import UiServer


def run_aside(job: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `job` to its end in a thread of its own (Playwright's loop runs in this one)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(job())).result()


@pytest.fixture(scope="module")
def events_ui(
    ui_settings: Settings,
    devstack: dict[str, str],
    search_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[UiServer, list[dict[str, Any]]]]:
    a, b = devstack["DEVSTACK_PROJECT_A_ID"], devstack["DEVSTACK_PROJECT_B_ID"]
    template = f"t{RUN_ID}ui-audit-{{project_id}}-{{yyyy.MM}}"
    settings = ui_settings.model_copy(
        update={"search_url": search_url, "search_index_template": template}
    )
    now = datetime.now(UTC)
    events = [
        make_event(
            a,
            now - timedelta(minutes=3 * n),
            action=("read/list", "create", "delete")[n % 3],
            outcome="failure" if n % 7 == 0 else "success",
            target_type=("compute/server", "network/port")[n % 2],
            observer={"id": "target", "typeURI": "service/compute"},
        )
        for n in range(80)
    ]
    theirs = [make_event(b, now - timedelta(minutes=n), outcome="failure") for n in range(5)]

    async def load() -> None:
        await install_template(search_url, template)
        await bulk_load(
            search_url, template, [(a, e, now) for e in events] + [(b, e, now) for e in theirs]
        )

    run_aside(load)
    directory = tmp_path_factory.mktemp("ui-events-db")
    server = UiServer(
        settings,
        f"sqlite+aiosqlite:///{directory}/ui.db",
        functools.partial(seed_history, a=a, b=b),
        events=lambda: SearchEventBrowser(SearchClient.from_settings(settings), template),
    )
    server.start()
    yield server, events
    server.stop()
    run_aside(lambda: remove_indices(search_url, template))


def test_reader_filters_recent_events_and_opens_one(
    page: Page, events_ui: tuple[UiServer, list[dict[str, Any]]], devstack: dict[str, str]
) -> None:
    ui, events = events_ui
    a = devstack["DEVSTACK_PROJECT_A_ID"]
    sign_in(page, ui.url, devstack, "a_reader")
    page.get_by_role("link", name="Recent events").first.click()
    expect(page).to_have_url(f"{ui.url}/projects/{a}/events")
    expect(page.get_by_role("heading", name="80 events")).to_be_visible()
    expect(page.locator("table.events tbody tr")).to_have_count(50)
    assert_fields_labelled(page)
    shot(page, "events-01-recent")
    assert_accessible(page)
    page.get_by_role("link", name="Older events").click()
    expect(page.locator("table.events tbody tr")).to_have_count(30)

    page.get_by_label("Outcome").select_option("failure")
    page.get_by_label("Action").fill("read/list")
    page.get_by_role("button", name="Show events").click()
    failures = [e for e in events if e["outcome"] == "failure" and e["action"] == "read/list"]
    expect(page.get_by_role("heading", name=f"{len(failures)} events")).to_be_visible()
    rows = page.locator("table.events tbody tr")
    expect(rows).to_have_count(len(failures))
    for cell in rows.locator("td:nth-child(3)").all_inner_texts():
        assert cell == "failure"
    shot(page, "events-02-filtered")
    assert_accessible(page)
    rows.first.get_by_role("link").click()
    newest = failures[0]
    expect(page).to_have_url(f"{ui.url}/projects/{a}/events/{newest['id']}")
    expect(page.locator("pre.json")).to_contain_text(f'"id": "{newest["id"]}"')
    shot(page, "events-03-one-event")
    assert_accessible(page)
    page.set_viewport_size(PHONE)
    shot(page, "events-03-one-event-phone")
    page.goto(f"{ui.url}/projects/{a}/events?outcome=failure")
    shot(page, "events-02-filtered-phone")


def test_reader_cannot_see_another_projects_events(
    page: Page, events_ui: tuple[UiServer, list[dict[str, Any]]], devstack: dict[str, str]
) -> None:
    ui, _ = events_ui
    b = devstack["DEVSTACK_PROJECT_B_ID"]
    sign_in(page, ui.url, devstack, "a_reader")
    response = page.goto(f"{ui.url}/projects/{b}/events")
    assert response is not None
    assert response.status == 403


def test_admin_downloads_events_and_sees_the_files(
    page: Page,
    events_ui: tuple[UiServer, list[dict[str, Any]]],
    devstack: dict[str, str],
    tmp_path: Path,
) -> None:
    ui, events = events_ui
    a = devstack["DEVSTACK_PROJECT_A_ID"]
    sign_in(page, ui.url, devstack, "a_admin")
    page.goto(f"{ui.url}/projects/{a}/events")
    download = page.locator("#download")
    download.get_by_label("From").fill("-1d")
    download.get_by_role("button", name="Download events").click()
    expect(page).to_have_url(re.compile(rf"/projects/{a}/exports/[0-9a-f-]{{36}}$"))
    expect(page.get_by_role("heading", name="Waiting to start")).to_be_visible()
    shot(page, "events-04-download-queued")
    assert_accessible(page)

    async def run_job() -> None:  # what the scheduler does
        engine = db.create_engine(ui.database_url)
        jobs = ExportJobs(engine)
        job = await jobs.next_due(datetime.now(UTC))
        assert job is not None
        client = SearchClient.from_settings(ui.settings)
        try:
            status = await run_export_job(
                jobs,
                job,
                client,
                LocalDirStore(tmp_path),
                template=ui.settings.search_index_template,
            )
            assert status == "done"
        finally:
            await client.close()
            await engine.dispose()

    run_aside(run_job)
    page.reload()
    expect(page.get_by_role("heading", name="Done")).to_be_visible()
    expect(page.locator("section[aria-labelledby=progress-title]")).to_contain_text(
        f"{len(events)} events in"
    )
    written = page.locator("ul.written li")
    assert written.count() >= 1
    expect(written.first).to_contain_text(f"{a}/RegionOne/")
    shot(page, "events-05-download-done")
    assert_accessible(page)

    page.get_by_role("link", name="Files in your container").first.click()
    expect(page).to_have_url(f"{ui.url}/projects/{a}/files")
    table = page.locator("table.files").first
    expect(table).to_contain_text("1,234")  # the records of the seeded delivery
    expect(table).to_contain_text(
        re.compile(r"openstack --os-region-name RegionOne object save audit-trail \S+\.json\.gz")
    )
    expect(table).to_contain_text(
        re.compile(r"swift --os-region-name RegionOne download audit-trail")
    )
    expect(table).to_contain_text(re.compile(r"\d{4}-\d{2}-\d{2}"))
    shot(page, "files-01-container")
    assert_accessible(page)
    page.set_viewport_size(PHONE)
    shot(page, "files-01-container-phone")
