"""The operator's view in the browser: every trail, failing first; the defaults form."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support.web import (
    DESKTOP,
    PHONE,
    api,
    assert_fields_labelled,
    shot,
    sign_in,
    token_of,
)
from tests.web.live import UiServer


def test_operator_sees_every_trail_failing_first(
    page: Page, ui: UiServer, devstack: dict[str, str]
) -> None:
    a, b = devstack["DEVSTACK_PROJECT_A_ID"], devstack["DEVSTACK_PROJECT_B_ID"]
    changed = api(
        ui,
        "PUT",
        f"/v1/projects/{b}/trail",
        token_of(devstack, "b_admin"),
        json={"retention_days": 45},
    )
    assert changed.status_code == 200, changed.text
    changed = api(
        ui,
        "PATCH",
        f"/v1/projects/{a}/trail",
        token_of(devstack, "a_admin"),
        json={"retention_days": 400, "archive": {"interval": "1h"}},
    )
    assert changed.status_code == 200, changed.text

    sign_in(page, ui.url, devstack, "cloud_admin")
    expect(page).to_have_url(f"{ui.url}/admin")
    expect(page).to_have_title(re.compile("All audit trails"))
    rows = page.locator("table.trails tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(b)  # failing, so first though A sorts before it
    expect(rows.nth(0).locator(".badge")).to_have_text("failing")
    expect(rows.nth(1)).to_contain_text(a)
    expect(rows.nth(1)).to_contain_text("400 days")
    expect(rows.nth(1)).to_contain_text("Every hour to audit-trail")
    expect(page.locator(".page-head")).to_contain_text("1 trail is failing")
    assert_fields_labelled(page)
    shot(page, "11-admin")
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    shot(page, "11b-admin-phone", full_page=False)
    page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]

    page.get_by_role("link", name="Retention").click()
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("Retention")
    page.get_by_role("link", name="Retention").click()
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("Retention")
    expect(rows.nth(0)).to_contain_text(b)  # failing trails stay on top in every order

    page.get_by_label("Project ID contains").fill(a[:10])
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_contain_text(a)
    page.get_by_label("Project ID contains").fill("")
    page.get_by_label("Delivery", exact=True).select_option("failing")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_contain_text(b)

    page.get_by_role("link", name=b).click()
    expect(page).to_have_url(f"{ui.url}/projects/{b}")
    expect(page.locator(".health")).to_contain_text("Delivery failing in RegionOne")
    expect(page.locator(".health")).to_contain_text("refused stacktrail's writes")
    expect(page.locator("#status")).to_contain_text("2 failed attempts in a row")
    expect(page.get_by_label("Keep events for (days)")).to_have_value("45")  # may change it
    shot(page, "12-admin-project-b-failing")


def test_operator_changes_the_defaults(page: Page, ui: UiServer, devstack: dict[str, str]) -> None:
    sign_in(page, ui.url, devstack, "cloud_admin")
    page.get_by_label("Default retention (days)").fill("5000")
    page.get_by_role("button", name="Save defaults").click()
    expect(page.locator("#e-default_retention_days")).to_contain_text(
        "above the longest retention 3650"
    )
    shot(page, "13-admin-defaults-error")

    page.get_by_label("Default retention (days)").fill("120")
    page.get_by_label("Shortest delivery interval").fill("5m")
    page.get_by_role("button", name="Save defaults").click()
    expect(page.locator(".flash-success")).to_contain_text("The cloud's defaults are saved")
    defaults = api(ui, "GET", "/v1/defaults", token_of(devstack, "cloud_admin")).json()
    assert defaults["default_retention_days"] == 120
    assert defaults["min_interval"] == "5m"


def test_project_admins_get_no_operator_view(
    page: Page, ui: UiServer, devstack: dict[str, str]
) -> None:
    sign_in(page, ui.url, devstack, "a_admin")
    expect(page.get_by_role("link", name="All trails")).to_have_count(0)
    response = page.goto(f"{ui.url}/admin")
    assert response is not None
    assert response.status == 403
