"""A project's page in the browser: sign in, read the trail, change it; what each role sees."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.support.web import (
    PHONE,
    api,
    assert_accessible,
    assert_fields_labelled,
    shot,
    sign_in,
    token_of,
)
from tests.web.live import UiServer


def trail_of(ui: UiServer, devstack: dict[str, str], project_id: str) -> dict[str, object]:
    response = api(ui, "GET", f"/v1/projects/{project_id}/trail", token_of(devstack, "a_admin"))
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_project_admin_changes_retention(
    page: Page, ui: UiServer, devstack: dict[str, str]
) -> None:
    a = devstack["DEVSTACK_PROJECT_A_ID"]
    page.goto(ui.url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    assert_fields_labelled(page)
    shot(page, "01-sign-in")

    sign_in(page, ui.url, devstack, "a_admin")
    expect(page).to_have_url(f"{ui.url}/projects/{a}")
    expect(page).to_have_title(re.compile("Audit trail of project-a"))
    summary = page.locator("#summary")
    expect(summary).to_contain_text("Events older than 90 days are deleted from your container")
    expect(summary).to_contain_text(
        "Every 15 minutes, new events are delivered to container audit-trail in RegionOne"
    )
    expect(page.locator(".health")).to_contain_text("Healthy")
    status = page.locator("#status")
    expect(status).to_contain_text("RegionOne")
    expect(status.locator(".spool")).to_contain_text(
        re.compile(r"Waiting in the local spool\s*48\.2 KB, for every region")
    )
    expect(status.get_by_text("Waiting in the local spool")).to_have_count(1)
    expect(status.get_by_text("Waiting to be delivered")).to_have_count(0)
    chart = status.get_by_role("img", name="Events recorded per day, last 30 days")
    expect(chart).to_be_visible()
    expect(chart.locator("rect.bar")).to_have_count(30)
    expect(chart.locator("rect.unknown")).to_have_count(0)
    heights = chart.locator("rect.bar").evaluate_all("bars => bars.map(b => b.getBBox().height)")
    assert sum(1 for h in heights if h > 0) == 29  # one day without events
    assert max(heights) > 60  # the busy days stand out
    expect(status).not_to_contain_text("not known")
    assert_fields_labelled(page)
    shot(page, "02-project-admin")
    status.get_by_text("Events per day as a table").click()
    expect(status.locator(".chart-data tbody tr")).to_have_count(30)
    shot(page, "02b-project-events-per-day-table")

    page.get_by_label("Keep events for (days)").fill("30")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".flash-success")).to_contain_text("Your settings are saved")
    expect(summary).to_contain_text("Events older than 30 days are deleted")
    assert trail_of(ui, devstack, a)["retention_days"] == 30
    expect(page.locator("#history")).to_contain_text("Retention (days): 90 → 30")
    shot(page, "03-project-saved")

    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    page.reload()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px screen"
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "04a-project-phone-top", full_page=False)
    page.evaluate("document.querySelector('#status .spool').scrollIntoView()")
    shot(page, "04d-project-phone-chart", full_page=False)
    page.evaluate("document.getElementById('settings').scrollIntoView()")
    shot(page, "04b-project-phone-settings", full_page=False)
    page.evaluate("document.getElementById('events').scrollIntoView()")
    shot(page, "04c-project-phone-events", full_page=False)


def test_api_validation_errors_show_next_to_their_fields(
    page: Page, ui: UiServer, devstack: dict[str, str]
) -> None:
    a = devstack["DEVSTACK_PROJECT_A_ID"]
    sign_in(page, ui.url, devstack, "a_admin")
    before = trail_of(ui, devstack, a)
    page.get_by_label("Keep events for (days)").fill("5000")
    page.get_by_label("Deliver every").fill("5s")
    page.get_by_role("button", name="Save settings").click()

    expect(page.locator("[role=alert]")).to_contain_text("Nothing was saved")
    expect(page.locator("#e-retention_days")).to_contain_text("maximum of 3650 days")
    expect(page.locator("#e-archive-interval")).to_contain_text("minimum of 1m")
    retention = page.get_by_label("Keep events for (days)")
    expect(retention).to_have_attribute("aria-invalid", "true")
    expect(retention).to_have_value("5000")  # what was typed stays in the form
    expect(retention).to_be_focused()
    shot(page, "05-project-errors")

    page.get_by_label("Keep events for (days)").fill("")
    page.get_by_label("Deliver every").fill("15m")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#e-retention_days")).to_contain_text("Enter a whole number")
    expect(page.locator("#e-archive-interval")).to_have_count(0)
    assert trail_of(ui, devstack, a)["version"] == before["version"]


def test_event_selection_from_the_catalogue(
    page: Page, ui: UiServer, devstack: dict[str, str]
) -> None:
    a = devstack["DEVSTACK_PROJECT_A_ID"]
    sign_in(page, ui.url, devstack, "a_admin")
    rows = page.locator("#event-table tbody tr")
    expect(rows).to_have_count(10)

    page.get_by_label("Find event types").fill("identity")
    expect(rows.locator("visible=true")).to_have_count(3)
    expect(page.locator("#event-filter-count")).to_contain_text("3 of 10")
    row = page.locator('tr[data-name="identity.authenticate"]')
    row.get_by_label("Exclude").check()
    page.get_by_label("Find event types").fill("compute.instance")
    page.locator('tr[data-name="compute.instance.create.end"]').get_by_label("Include").check()
    page.locator('tr[data-name="compute.instance.delete.end"]').get_by_label("Include").check()
    page.get_by_text("Patterns (advanced)").click()
    page.get_by_label("Also include").fill("network.*")
    version = trail_of(ui, devstack, a)["version"]
    page.get_by_role("button", name="Review changes").click()

    # nothing is saved before the selection is shown in words and per type
    review = page.locator("#review")
    expect(review).to_contain_text(
        "After saving: Keep only events matching compute.instance.create.end, "
        "compute.instance.delete.end or network.*, except events matching "
        "identity.authenticate."
    )
    # including two types visibly leaves every other type out: nothing silently turns to no
    expect(review).to_contain_text("port.create.end: every event → no event")
    expect(review).to_contain_text("This changes what is recorded of 7 event types")
    after = page.locator('tr[data-name="port.create.end"] .badge')
    expect(after).to_have_text(["yes", "no"])
    assert trail_of(ui, devstack, a)["version"] == version  # not saved yet
    shot(page, "06-project-events-review")
    review.get_by_role("button", name="Save event selection").click()

    expect(page.locator(".flash-success")).to_contain_text("Your event selection is saved")
    events = trail_of(ui, devstack, a)["events"]
    assert events == {
        "include": ["compute.instance.create.end", "compute.instance.delete.end", "network.*"],
        "exclude": ["identity.authenticate"],
        "rules": [],
    }
    expect(page.locator("#summary")).to_contain_text(
        "Keep only events matching compute.instance.create.end, compute.instance.delete.end "
        "or network.*, except events matching identity.authenticate."
    )
    recorded = page.locator('tr[data-name="port.create.end"] .badge')
    expect(recorded).to_have_text("no")
    expect(page.locator('tr[data-name="network.create.end"] .badge')).to_have_text("yes")
    shot(page, "06-project-events")

    expect(page.get_by_label("Also include")).to_have_value("network.*")  # open: it has one
    page.get_by_label("Also exclude").fill("bad pattern!\nworse[")
    page.get_by_role("button", name="Review changes").click()
    errors = page.locator("#e-events-exclude li")
    expect(errors).to_have_count(2)  # one line each, never run together
    expect(errors.nth(0)).to_contain_text("may contain only letters")
    expect(errors.nth(1)).to_contain_text("`[` without a matching `]`")
    expect(page.locator("#review")).to_have_count(0)


def test_event_rules_editor(page: Page, ui: UiServer, devstack: dict[str, str]) -> None:
    a = devstack["DEVSTACK_PROJECT_A_ID"]
    sign_in(page, ui.url, devstack, "a_admin")
    before = trail_of(ui, devstack, a)
    if before["configured"]:  # start from the cloud's defaults
        api(ui, "DELETE", f"/v1/projects/{a}/trail", token_of(devstack, "a_admin"))
        page.reload()
    start = trail_of(ui, devstack, a)["version"]
    new = page.get_by_role("group", name="Add a rule")
    new.get_by_label("This rule").select_option("exclude")
    new.get_by_label("Service").fill("compute")
    new.get_by_label(re.compile("Read-only actions")).check()
    page.get_by_role("button", name="Review changes").click()

    review = page.locator("#review")
    expect(review).to_contain_text("After saving: Keep every event except reads of compute.")
    expect(review).to_contain_text("compute.instance.update: every event → some events")
    expect(page.locator("#events")).to_contain_text(
        "The trail's own change events (stacktrail.defaults.updated, stacktrail.trail.deleted, "
        "stacktrail.trail.updated) are always kept"
    )
    expect(page.locator("#events")).to_contain_text(
        "This cloud also leaves out events matching read/list or read/get unless your trail "
        "includes them"
    )
    assert trail_of(ui, devstack, a)["version"] == start  # nothing saved yet
    assert_accessible(page)
    shot(page, "08-event-rules-review")

    # a changed draft is explained again before it is saved
    # the draft's rule is rule 1 now, and a new empty row is offered
    draft = page.get_by_role("group", name=re.compile("^Rule 1"))
    draft.get_by_label("Target type").fill("compute/*")
    review.get_by_role("button", name="Save event selection").click()
    expect(page.locator("#review")).to_contain_text(
        "Keep every event except reads of compute on compute/*."
    )
    assert trail_of(ui, devstack, a)["version"] == start
    draft.get_by_label("Target type").fill("")
    page.get_by_role("button", name="Review changes").click()
    page.locator("#review").get_by_role("button", name="Save event selection").click()

    expect(page.locator(".flash-success")).to_contain_text("Your event selection is saved")
    assert trail_of(ui, devstack, a)["events"] == {
        "include": [],
        "exclude": [],
        "rules": [
            {
                "effect": "exclude",
                "event_type": [],
                "service": ["compute"],
                "action": ["read", "read/list", "read/get"],
                "outcome": [],
                "target_type": [],
            }
        ],
    }
    expect(page.locator("#summary")).to_contain_text("Keep every event except reads of compute.")
    rule = page.get_by_role("group", name=re.compile("^Rule 1"))
    expect(rule).to_contain_text("reads of compute")
    expect(rule.get_by_label(re.compile("Read-only actions"))).to_be_checked()

    # a second rule: only failures, besides the first
    new = page.get_by_role("group", name="Add a rule")
    new.get_by_label("This rule").select_option("include")
    new.get_by_label("failure").check()
    page.get_by_role("button", name="Review changes").click()
    expect(page.locator("#review")).to_contain_text(
        "After saving: Keep only failures, except reads of compute."
    )
    page.locator("#review").get_by_role("button", name="Save event selection").click()
    expect(page.locator("#summary")).to_contain_text("Keep only failures, except reads of compute.")

    # refusals stay with their rule and their field, one per line
    rule = page.get_by_role("group", name=re.compile("^Rule 1"))
    rule.get_by_label("Action", exact=True).fill("a[\nb]")
    page.get_by_role("group", name=re.compile("^Rule 2")).get_by_label("failure").uncheck()
    page.get_by_role("button", name="Review changes").click()
    errors = page.locator('[id="e-events-rules[0]-action"] li')
    expect(errors).to_have_count(2)
    expect(errors.nth(0)).to_contain_text("Pattern 'a[': `[` without a matching `]`")
    expect(errors.nth(1)).to_contain_text("Pattern 'b]': `]` without a matching `[`")
    expect(page.locator('[id="e-events-rules[1]"]')).to_contain_text(
        "A rule needs at least one condition"
    )
    expect(rule.get_by_label("Action", exact=True)).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)
    shot(page, "09-event-rules-errors")
    page.get_by_role("group", name=re.compile("^Rule 2")).get_by_label("Remove this rule").check()
    page.get_by_role("group", name=re.compile("^Rule 1")).get_by_label("Action", exact=True).fill(
        ""
    )
    page.get_by_role("button", name="Review changes").click()
    page.locator("#review").get_by_role("button", name="Save event selection").click()
    expect(page.locator("#summary")).to_contain_text("Keep every event except reads of compute.")
    page.set_viewport_size(PHONE)
    shot(page, "10-event-rules-phone")


@pytest.mark.parametrize("who", ["a_reader", "a_member"])
def test_readers_and_members_see_no_form(
    page: Page, ui: UiServer, devstack: dict[str, str], who: str
) -> None:
    a = devstack["DEVSTACK_PROJECT_A_ID"]
    sign_in(page, ui.url, devstack, who)
    expect(page).to_have_url(f"{ui.url}/projects/{a}")
    expect(page.locator(".readonly-note")).to_contain_text("Only the project's administrators")
    expect(page.locator("#summary")).to_contain_text("Events older than")
    expect(page.locator("#event-table tbody tr")).to_have_count(10)
    # the only form is signing out; nothing the API would refuse is offered
    assert page.locator("form").count() == 1
    assert page.locator("form[action='/logout']").count() == 1
    expect(page.locator("input[name=retention_days]")).to_have_count(0)
    expect(page.locator("input[type=radio]")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("Save|Reset"))).to_have_count(0)
    expect(page.get_by_role("link", name="All trails")).to_have_count(0)
    shot(page, f"07-project-{who.replace('_', '-')}")


def test_other_projects_are_refused(page: Page, ui: UiServer, devstack: dict[str, str]) -> None:
    b = devstack["DEVSTACK_PROJECT_B_ID"]
    sign_in(page, ui.url, devstack, "a_admin")
    response = page.goto(f"{ui.url}/projects/{b}")
    assert response is not None
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")
    response = page.goto(f"{ui.url}/admin")
    assert response is not None
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("Cloud administrators only")
    response = page.goto(f"{ui.url}/projects/no%20such")
    assert response is not None
    assert response.status == 404


def test_sign_out_ends_the_session_and_revokes_the_token(
    page: Page, ui: UiServer, devstack: dict[str, str]
) -> None:
    a = devstack["DEVSTACK_PROJECT_A_ID"]
    sign_in(page, ui.url, devstack, "a_admin")
    cookies = {c["name"]: c for c in page.context.cookies()}
    cookie = cookies["stacktrail_session"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert ui.app is not None
    session = ui.app.state.stacktrail_web.sessions.get(cookie["value"])
    token = session.token
    assert token
    assert token not in page.content()
    assert api(ui, "GET", f"/v1/projects/{a}/trail", token).status_code == 200

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login\?reason=signed_out$"))
    expect(page.locator(".flash-success")).to_contain_text("You are signed out")
    page.goto(f"{ui.url}/projects/{a}")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    time.sleep(1.2)  # the API caches a validated token for a second
    assert api(ui, "GET", f"/v1/projects/{a}/trail", token).status_code == 401
