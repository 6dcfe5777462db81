"""Web UI fixtures: the API with the UI mounted, served over HTTP against the dev stack's
Keystone, and Debian's Chromium driven by Playwright (install it: scripts/install-browser)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from stacktrail.config import Settings
from stacktrail.db.ledger import SqlLedger
from stacktrail.domain.ledger import DeliveredObject, DeliveryError
from tests.api.keystone_users import _USERS
from tests.support.config_store import keystone_auth, make_settings
from tests.support.devstack import ROOT
from tests.web.live import UiServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

EVENT_TYPES = {
    "identity.authenticate": 18_230,
    "identity.project.updated": 12,
    "identity.role_assignment.created": 40,
    "compute.instance.create.end": 311,
    "compute.instance.delete.end": 290,
    "compute.instance.update": 2_400,
    "network.create.end": 57,
    "port.create.end": 602,
    "volume.create.end": 88,
    "image.upload": 9,
}


def daily_history(now: datetime) -> dict[int, int]:
    """Days back -> events of project A on that UTC day, before the last 30 hours: busy
    working days, quiet weekends, and a day without events 12 days ago."""
    history = {}
    for back in range(2, 34):
        day = (now - timedelta(days=back)).date()
        history[back] = 0 if back == 12 else (2_600 if day.weekday() < 5 else 700) + 37 * back
    return history


async def seed_history(ledger: SqlLedger, a: str, b: str) -> None:
    """Deliveries, an ingest history, the event catalogue and a failing project (B)."""
    now = datetime.now(UTC)
    await ledger.record_event_types(EVENT_TYPES, seen_at=now)
    # project A's own catalogue: its users see only the types of its events
    await ledger.record_project_event_types(
        {(a, name): count for name, count in EVENT_TYPES.items()}, seen_at=now
    )
    await ledger.record_ingest_many(
        {(a, now - timedelta(hours=hours)): 40 + 7 * hours for hours in range(0, 30)}
    )
    await ledger.record_ingest_many(
        {(a, now - timedelta(days=back)): count for back, count in daily_history(now).items()}
    )
    day = (now - timedelta(minutes=20)).strftime("%Y-%m-%d")
    for project, region, minutes in ((a, "RegionOne", 7), (b, "RegionOne", 300)):
        await ledger.record_delivery(
            DeliveredObject(
                project_id=project,
                region=region,
                container="audit-trail",
                key=f"{project}/{region}/{day.replace('-', '/')}/"
                f"{project}_{region}_{now:%Y%m%dT%H%MZ}_worker1_000042.json.gz",
                day=day,
                records=1234,
                bytes=80_000,
                sha256="0" * 64,
                delivered_at=now - timedelta(minutes=minutes),
            )
        )
    for minutes in (9, 3):
        await ledger.record_error(
            DeliveryError(
                project_id=b,
                region="RegionOne",
                message=f"PUT audit-trail/x.json.gz in project {b}: HTTP 403 Forbidden (the "
                f"stacktrail service user may not write into project {b}: reseller role missing?)",
                at=now - timedelta(minutes=minutes),
            )
        )


@pytest.fixture(scope="session")
def ui_settings(devstack: dict[str, str]) -> Settings:
    return make_settings(
        **keystone_auth(devstack),
        token_cache_ttl=timedelta(seconds=1),
    )


@pytest.fixture(scope="module")
def ui(
    ui_settings: Settings, devstack: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UiServer]:
    """The API and UI on a free port, with a config store of the test module's own."""
    directory = tmp_path_factory.mktemp("ui-db")
    seed = functools.partial(
        seed_history, a=devstack["DEVSTACK_PROJECT_A_ID"], b=devstack["DEVSTACK_PROJECT_B_ID"]
    )
    server = UiServer(ui_settings, f"sqlite+aiosqlite:///{directory}/ui.db", seed)
    server.start()
    yield server
    server.stop()


# Module scope: Playwright's sync API keeps an event loop running while it is open, and
# asyncio tests collected after the UI tests could not run their own loop beside it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    context.set_default_timeout(20_000)
    page = context.new_page()
    yield page
    context.close()


def credentials(devstack: dict[str, str], who: str) -> tuple[str, str, str]:
    """(user name, password, project name) of a seeded Keystone user."""
    prefix, project_var = _USERS[who]
    return (
        devstack[f"{prefix}_USER"],
        devstack[f"{prefix}_PASSWORD"],
        devstack[project_var],
    )


def token_of(devstack: dict[str, str], who: str) -> str:
    """A project-scoped token of a seeded user, for checking the UI's work through the API."""
    return issue_token(devstack, who)[0]


def issue_token(devstack: dict[str, str], who: str) -> tuple[str, dict[str, Any]]:
    """A project-scoped token of a seeded user and the token's body."""
    user, password, project = credentials(devstack, who)
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"id": "default"}, "password": password}
                },
            },
            "scope": {"project": {"name": project, "domain": {"id": "default"}}},
        }
    }
    response = httpx.post(f"{devstack['DEVSTACK_KEYSTONE_URL']}/auth/tokens", json=body, timeout=30)
    response.raise_for_status()
    return response.headers["X-Subject-Token"], response.json()["token"]


def api(ui: UiServer, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
    """A call to the live server's REST API with a token."""
    return httpx.request(
        method, f"{ui.url}{path}", headers={"X-Auth-Token": token}, timeout=30, **kwargs
    )


def shot(page: Page, name: str, *, full_page: bool = True) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def sign_in(
    page: Page, base_url: str, devstack: dict[str, str], who: str, *, project: bool = True
) -> None:
    user, password, project_name = credentials(devstack, who)
    page.goto(f"{base_url}/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    if project:
        page.get_by_label("Project").fill(project_name)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_load_state()


def assert_fields_labelled(page: Page) -> None:
    """Every visible form control has an accessible name (a label or aria-label)."""
    unlabelled = page.evaluate(
        """() => Array.from(document.querySelectorAll('input, select, textarea'))
            .filter(el => el.type !== 'hidden')
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map(el => el.outerHTML)"""
    )
    assert unlabelled == []


AXE = ROOT / "var" / "npm" / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page: Page) -> list[str]:
    """axe-core's violations on the page (WCAG 2.x A and AA), as `rule: target` lines.
    Evaluated through the DevTools protocol, which the pages' CSP does not govern."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run scripts/install-browser")
    page.evaluate(AXE.read_text())
    found: list[dict[str, Any]] = page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag',
              values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
            .then(r => r.violations.map(v => ({
                id: v.id, targets: v.nodes.map(n => n.target.join(' '))})))"""
    )
    return [f"{v['id']}: {', '.join(v['targets'][:3])}" for v in found]


def assert_accessible(page: Page) -> None:
    """0 axe violations at the desktop and the phone width."""
    size = page.viewport_size
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)  # type: ignore[arg-type]
        found = axe_violations(page)
        assert found == [], (page.url, viewport, found)
    if size is not None:
        page.set_viewport_size(size)
