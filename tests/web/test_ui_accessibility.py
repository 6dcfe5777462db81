"""axe-core finds 0 violations (WCAG 2.1 A and AA) on every page, at 1280 and 390 px:
sign-in (also with an error and after signing out), the cross-site continue page, a
project's page for each role and with refused values, the pages that refuse or find
nothing (HTML 404 included), and the operator's list and defaults. The recent events,
event, download and files pages are checked by test_ui_events, the delivery fix by
test_ui_delivery, the rules editor by test_ui_project."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, Route, expect

from tests.support.web import PHONE, assert_accessible, credentials, shot, sign_in
from tests.web.live import UiServer


def checked(page: Page, name: str) -> None:
    assert_accessible(page)
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    shot(page, f"a11y-{name}-phone", full_page=False)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_sign_in_pages(page: Page, ui: UiServer, devstack: dict[str, str]) -> None:
    page.goto(f"{ui.url}/login")
    expect(page.get_by_label("User name")).to_be_visible()
    checked(page, "sign-in")
    user, _, _ = credentials(devstack, "a_admin")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_be_visible()
    checked(page, "sign-in-error")
    page.goto(f"{ui.url}/login?reason=signed_out")
    expect(page.locator("body")).to_contain_text("You are signed out")
    checked(page, "signed-out")


def test_not_found_and_continue_pages(page: Page, ui: UiServer, devstack: dict[str, str]) -> None:
    response = page.goto(f"{ui.url}/no/such/page")
    assert response is not None
    assert response.status == 404
    expect(page.locator("main")).to_contain_text("There is no page at /no/such/page")
    checked(page, "not-found-signed-out")

    refresh = '<meta http-equiv="refresh" content="0">'

    def cross_site(route: Route) -> None:
        # a link from another site (Chromium sets Sec-Fetch-Site itself: fetched here),
        # shown without its immediate reload so that axe sees it stand still
        answer = httpx.get(route.request.url, headers={"Sec-Fetch-Site": "cross-site"})
        assert refresh in answer.text
        body = answer.text.replace(refresh, "")
        route.fulfill(status=answer.status_code, headers=dict(answer.headers), body=body)

    page.route(f"{ui.url}/projects/**", cross_site)
    page.goto(f"{ui.url}/projects/{devstack['DEVSTACK_PROJECT_A_ID']}")
    expect(page.locator("main")).to_contain_text("Opening stacktrail")
    checked(page, "continue")
    page.unroute(f"{ui.url}/projects/**")

    sign_in(page, ui.url, devstack, "a_admin")
    page.goto(f"{ui.url}/no/such/page")
    expect(page.locator("main")).to_contain_text("There is no page at /no/such/page")
    checked(page, "not-found")
    page.goto(f"{ui.url}/projects/not..an..id")
    expect(page.locator("main")).to_contain_text("is not a project ID")
    checked(page, "no-such-project")
    page.goto(f"{ui.url}/projects/{devstack['DEVSTACK_PROJECT_B_ID']}")
    expect(page.locator("main")).to_contain_text("You cannot see the audit trail")
    checked(page, "refused")


def test_project_pages_for_each_role(page: Page, ui: UiServer, devstack: dict[str, str]) -> None:
    a = devstack["DEVSTACK_PROJECT_A_ID"]
    for who in ("a_reader", "a_member"):
        sign_in(page, ui.url, devstack, who)
        expect(page).to_have_url(f"{ui.url}/projects/{a}")
        checked(page, f"project-{who.replace('_', '-')}")
        page.context.clear_cookies()
    sign_in(page, ui.url, devstack, "a_admin")
    expect(page).to_have_url(f"{ui.url}/projects/{a}")
    checked(page, "project-admin")
    page.get_by_label("Keep events for (days)").fill("5000")
    page.get_by_label("Deliver every").fill("10s")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#e-retention_days")).to_be_visible()
    checked(page, "project-refused-values")


def test_operator_pages(page: Page, ui: UiServer, devstack: dict[str, str]) -> None:
    sign_in(page, ui.url, devstack, "cloud_admin")
    page.goto(f"{ui.url}/admin")
    expect(page.locator("main")).to_contain_text(devstack["DEVSTACK_PROJECT_B_ID"])
    checked(page, "admin")
    page.goto(f"{ui.url}/admin?delivery=failing")
    expect(page.locator("main")).to_contain_text(devstack["DEVSTACK_PROJECT_B_ID"])
    checked(page, "admin-failing")
    page.goto(f"{ui.url}/admin?q=bad%20id!")
    checked(page, "admin-bad-filter")
    page.get_by_label("Longest retention (days)").fill("40000")
    page.get_by_role("button", name="Save defaults").click()
    expect(page.locator("#e-max_retention_days")).to_contain_text("at most 36500")
    expect(page.locator("#h-max_retention_days")).to_contain_text("between 1 and 36500 days")
    checked(page, "admin-refused-values")
