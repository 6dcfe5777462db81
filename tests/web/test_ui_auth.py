"""Signing in and out in the browser, application credentials, and CSRF protection."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.web import PHONE, credentials, issue_token, shot, sign_in
from tests.web.live import UiServer


def test_wrong_password_shows_an_error(page: Page, ui: UiServer, devstack: dict[str, str]) -> None:
    user, _, _ = credentials(devstack, "a_admin")
    page.goto(f"{ui.url}/login")
    # keyboard only: the user name field has the focus, Tab moves on, Enter submits
    expect(page.get_by_label("User name")).to_be_focused()
    page.keyboard.type(user)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type("not-the-password")
    page.keyboard.press("Enter")
    page.wait_for_load_state()

    expect(page).to_have_url(f"{ui.url}/login")
    expect(page.get_by_role("alert")).to_contain_text(
        "The user name, password or domain is not right"
    )
    expect(page.get_by_label("User name")).to_have_value(user)  # kept, the password is not
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page.get_by_label("Password")).to_be_focused()
    assert "stacktrail_session" not in {c["name"] for c in page.context.cookies()}
    shot(page, "08-sign-in-wrong-password")
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    shot(page, "08b-sign-in-wrong-password-phone", full_page=False)


def test_a_project_without_a_role_is_named(
    page: Page, ui: UiServer, devstack: dict[str, str]
) -> None:
    user, password, _ = credentials(devstack, "a_admin")
    page.goto(f"{ui.url}/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Project").fill(devstack["DEVSTACK_PROJECT_B_NAME"])
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_label("Project")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("alert")).to_contain_text(
        f"You have no role on a project called '{devstack['DEVSTACK_PROJECT_B_NAME']}'"
    )


def test_project_may_be_left_empty_or_given_by_id(
    page: Page, ui: UiServer, devstack: dict[str, str]
) -> None:
    a = devstack["DEVSTACK_PROJECT_A_ID"]
    sign_in(page, ui.url, devstack, "a_admin", project=False)  # a-admin has one project
    expect(page).to_have_url(f"{ui.url}/projects/{a}")
    page.get_by_role("button", name="Sign out").click()

    user, password, _ = credentials(devstack, "a_reader")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Project").fill(a)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{ui.url}/projects/{a}")


def test_returns_to_the_page_asked_for(page: Page, ui: UiServer, devstack: dict[str, str]) -> None:
    a = devstack["DEVSTACK_PROJECT_A_ID"]
    page.goto(f"{ui.url}/projects/{a}#events")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fprojects%2F"))
    user, password, _ = credentials(devstack, "a_member")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{ui.url}/projects/{a}")


@pytest.fixture
def reader_credential(devstack: dict[str, str]) -> Iterator[dict[str, Any]]:
    """An application credential of project A's admin, restricted to the reader role."""
    token, body = issue_token(devstack, "a_admin")
    base = f"{devstack['DEVSTACK_KEYSTONE_URL']}/users/{body['user']['id']}"
    headers = {"X-Auth-Token": token}
    response = httpx.post(
        f"{base}/application_credentials",
        json={
            "application_credential": {
                "name": f"stacktrail-ui-{uuid.uuid4().hex[:8]}",
                "roles": [{"name": "reader"}],
            }
        },
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 201, response.text
    credential: dict[str, Any] = response.json()["application_credential"]
    yield credential
    httpx.delete(f"{base}/application_credentials/{credential['id']}", headers=headers, timeout=30)


def test_sign_in_with_an_application_credential(
    page: Page, ui: UiServer, devstack: dict[str, str], reader_credential: dict[str, Any]
) -> None:
    page.goto(f"{ui.url}/login")
    page.get_by_text("Sign in with an application credential instead").click()
    page.get_by_label("Application credential ID").fill(reader_credential["id"])
    page.get_by_label("Secret").fill("wrong")
    page.get_by_role("button", name="Sign in with the credential").click()
    expect(page.get_by_role("alert")).to_contain_text("application credential ID or secret")
    shot(page, "09-sign-in-application-credential-error")

    page.get_by_label("Secret").fill(reader_credential["secret"])
    page.get_by_role("button", name="Sign in with the credential").click()
    expect(page).to_have_url(f"{ui.url}/projects/{devstack['DEVSTACK_PROJECT_A_ID']}")
    # the credential carries only the reader role: nothing to change
    expect(page.locator(".readonly-note")).to_be_visible()
    expect(page.locator("input[name=retention_days]")).to_have_count(0)


def test_form_posts_without_the_csrf_token_are_refused(
    page: Page, ui: UiServer, devstack: dict[str, str]
) -> None:
    a = devstack["DEVSTACK_PROJECT_A_ID"]
    page.goto(f"{ui.url}/login")
    refused = page.request.post(f"{ui.url}/login", form={"user_name": "x", "password": "y"})
    assert refused.status == 403

    sign_in(page, ui.url, devstack, "a_admin")
    csrf = page.locator("#settings input[name=csrf_token]").input_value()
    version = page.locator("#settings input[name=version]").input_value()
    fields: dict[str, str | float | bool] = {
        "version": version,
        "retention_days": "7",
        "archive.container": "x",
    }
    for form in (fields, {**fields, "csrf_token": "forged"}):
        refused = page.request.post(f"{ui.url}/projects/{a}/settings", form=form)
        assert refused.status == 403
        assert "nothing was changed" in refused.text()
    for path in ("events", "reset"):
        assert page.request.post(f"{ui.url}/projects/{a}/{path}", form={}).status == 403
    assert page.request.post(f"{ui.url}/logout", form={}).status == 403
    page.reload()
    expect(page.get_by_label("Keep events for (days)")).not_to_have_value("7")
    shot(page, "10-project-after-refused-posts", full_page=False)

    # the same post with the token goes through: the token, not the rest, was missing
    accepted = page.request.post(
        f"{ui.url}/projects/{a}/settings",
        form={**fields, "csrf_token": csrf, "archive.container": "audit-trail"},
        max_redirects=0,
    )
    assert accepted.status in (303, 422)
