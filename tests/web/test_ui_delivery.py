"""A failing delivery in the browser: the store's real answer, the commands that fix it,
the next retry; "Reset to the cloud's defaults" re-targets the spooled events, "Retry
now" delivers them, and the page turns healthy. Real Keystone (sign-in and the ACL
writer's ids), the file store for the archive."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from stacktrail.app import acl_writer_of
from stacktrail.archive.sink import ArchiveSink
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.config import Settings
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.trail import Trail
from tests.support.sinks import BEFORE_MIDNIGHT, Acks, make_event, sink_settings
from tests.support.web import PHONE, assert_accessible, seed_history, shot, sign_in, token_of
from tests.web.live import UiServer


class LiveTrails:
    """The trails the pipeline would follow: read again from the config store on demand."""

    def __init__(self) -> None:
        self.current: dict[str, Trail] = {}

    async def refresh(self, store: TrailStore, project_id: str) -> Trail:
        stored = await store.get_trail(project_id)
        trail = stored.effective.to_trail(project_id, stored.version)
        self.current[project_id] = trail
        return trail

    def get(self, project_id: str) -> Trail:
        return self.current[project_id]


@pytest.fixture(scope="module")
def delivery_ui(
    ui_settings: Settings, devstack: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[UiServer, LiveTrails, Path]]:
    a, b = devstack["DEVSTACK_PROJECT_A_ID"], devstack["DEVSTACK_PROJECT_B_ID"]
    directory = tmp_path_factory.mktemp("ui-delivery")
    settings = ui_settings.model_copy(
        update={
            "swift_acl_username": devstack["STACKTRAIL_SWIFT_ACL_USERNAME"],
            "swift_acl_password": devstack["STACKTRAIL_SWIFT_ACL_PASSWORD"],
            "swift_acl_project_name": devstack["STACKTRAIL_SWIFT_ACL_PROJECT_NAME"],
        }
    )
    trails = LiveTrails()
    sink_conf = sink_settings(directory, archive_retry_max="10m")

    async def archive(store: TrailStore, ledger: SqlLedger) -> ArchiveSink:
        sink = ArchiveSink(
            sink_conf, LocalDirStore(sink_conf.archive_dir), ledger, directory=trails
        )
        await sink.start()
        return sink

    server = UiServer(
        settings,
        f"sqlite+aiosqlite:///{directory}/ui.db",
        functools.partial(seed_history, a=a, b=b),
        archive=archive,
        acl_writer=acl_writer_of(settings),
    )
    server.start()
    yield server, trails, sink_conf.archive_dir
    assert server.sink is not None
    sink = server.sink
    server.call(lambda: sink.stop(0.5))
    server.stop()


def test_missing_container_to_fix_to_healthy(
    page: Page, delivery_ui: tuple[UiServer, LiveTrails, Path], devstack: dict[str, str]
) -> None:
    ui, trails, root = delivery_ui
    a = devstack["DEVSTACK_PROJECT_A_ID"]
    token = token_of(devstack, "a_admin")
    changed = httpx.patch(
        f"{ui.url}/v1/projects/{a}/trail",
        json={"archive": {"container": "customer", "write_mode": "acl", "regions": ["RegionOne"]}},
        headers={"X-Auth-Token": token, "Content-Type": "application/merge-patch+json"},
        timeout=30,
    )
    assert changed.status_code == 200, changed.text
    assert ui.store is not None
    assert ui.sink is not None
    store, sink = ui.store, ui.sink

    async def spool_and_fail() -> None:
        trail = await trails.refresh(store, a)
        acks = Acks()
        await sink.put(acks.record(trail, make_event(a, BEFORE_MIDNIGHT)))
        await acks.wait(1)
        await sink.flush()  # `customer` does not exist

    ui.call(spool_and_fail)
    sign_in(page, ui.url, devstack, "a_admin")
    expect(page).to_have_url(f"{ui.url}/projects/{a}")
    expect(page.locator(".health")).to_contain_text("Delivery failing")
    fix = page.locator("#fix-delivery")
    expect(fix).to_contain_text("The container customer does not exist (the store answered 404)")
    expect(page.locator("main")).not_to_contain_text("does not let stacktrail write")
    expect(fix.locator("pre.command")).to_contain_text("openstack container create customer")
    expect(fix.locator("pre.command")).to_contain_text(
        re.compile(r"swift post -w [0-9a-f]{32}:[0-9a-f]{32} customer")
    )
    expect(fix).to_contain_text(
        re.compile(r"next attempt \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in \d+ minutes?\)")
    )
    expect(fix.locator(".held-back")).to_contain_text(
        re.compile(r"Kept in the spool meanwhile: [\d.,]+ (bytes|KB|MB|GB), \d+ events?, the old")
    )
    expect(page.locator("#summary")).not_to_contain_text("have granted")
    shot(page, "delivery-01-failing")
    assert_accessible(page)
    page.set_viewport_size(PHONE)
    shot(page, "delivery-01-failing-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Reset to the cloud's defaults").click()
    page.wait_for_load_state()
    ui.call(lambda: trails.refresh(store, a))  # the pipeline follows the change
    expect(page.locator("#fix-delivery")).to_be_visible()  # nothing delivered yet
    page.locator("#fix-delivery").get_by_role("button", name="Retry now").click()
    expect(page.locator(".flash")).to_contain_text("retrying 1 region now")
    for _ in range(50):
        if list((root / "audit-trail").rglob("*.json.gz")):
            break
        page.wait_for_timeout(100)
    page.reload()
    expect(page.locator(".health")).to_contain_text("Healthy")
    expect(page.locator("#fix-delivery")).to_have_count(0)
    assert list((root / "audit-trail").rglob(f"{a}/RegionOne/*/*/*/*.json.gz"))
    assert not (root / "customer").exists()
    shot(page, "delivery-02-healthy")
    assert_accessible(page)


def test_operator_finds_a_failing_project_on_the_defaults(
    page: Page, delivery_ui: tuple[UiServer, LiveTrails, Path], devstack: dict[str, str]
) -> None:
    ui, _, _ = delivery_ui
    b = devstack["DEVSTACK_PROJECT_B_ID"]
    sign_in(page, ui.url, devstack, "cloud_admin")
    page.goto(f"{ui.url}/admin?delivery=failing")
    rows = page.locator("table.trails tbody tr")
    row = rows.filter(has_text=b)
    expect(row).to_have_count(1)  # project B never changed its trail
    expect(row).to_contain_text("project-b")  # its name from Keystone
    shot(page, "operators-01-failing")
    assert_accessible(page)
    row.get_by_role("link").first.click()
    expect(page).to_have_url(f"{ui.url}/projects/{b}")
    expect(page).to_have_title(re.compile("Audit trail of project-b"))

    page.goto(f"{ui.url}/admin")
    page.get_by_label("Open a project by ID").fill("project-b")
    page.get_by_role("button", name="Open", exact=True).click()
    expect(page.get_by_role("heading", name="No such project")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Keystone knows no project with id project-b")
    shot(page, "operators-02-name-is-not-an-id")
