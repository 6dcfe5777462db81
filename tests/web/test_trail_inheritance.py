"""The project page marks what follows the cloud's defaults and lets a project go back to
them per setting (in-process, authentication off)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stacktrail.api import create_app
from stacktrail.web import mount_ui
from tests.support.config_store import make_settings, migrated_store

TRAIL = "/v1/projects/p1/trail"


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings()  # auth_mode = noauth
    async with migrated_store("sqlite", tmp_path, settings) as store:
        app = create_app(settings, store, None)
        mount_ui(app, settings)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ui") as client:
            page = await client.get("/login")
            signed = await client.post(
                "/login", data={"csrf_token": csrf_of(page.text), "method": "noauth"}
            )
            assert signed.status_code == 303
            yield client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def form_as_shown(trail: dict[str, Any], html: str, **changes: Any) -> dict[str, Any]:
    """The settings form as the page fills it in, with `changes` typed over it."""
    archive = trail["archive"]
    form: dict[str, Any] = {
        "csrf_token": csrf_of(html),
        "version": str(trail["version"]),
        "retention_days": str(trail["retention_days"]),
        "archive.container": archive["container"],
        "archive.prefix": archive["prefix"],
        "archive.format": archive["format"],
        "archive.interval": archive["interval"],
        "archive.regions": archive["regions"],
        "archive.write_mode": archive["write_mode"],
        "archive.source": archive["source"],
    }
    for name, on in (
        ("enabled", trail["enabled"]),
        ("archive.enabled", archive["enabled"]),
        ("search.enabled", trail["search"]["enabled"]),
    ):
        if on:
            form[name] = "on"
    form.update(changes)
    return form


async def test_saving_one_setting_overrides_only_that_one(http: httpx.AsyncClient) -> None:
    page = await http.get("/projects/p1")
    assert page.text.count('class="badge badge-default"') >= 11  # every setting, and the key
    assert 'name="inherit"' not in page.text
    trail = (await http.get(TRAIL)).json()

    saved = await http.post(
        "/projects/p1/settings", data=form_as_shown(trail, page.text, retention_days="12")
    )
    assert saved.status_code == 303
    trail = (await http.get(TRAIL)).json()
    assert trail["overrides"] == {"retention_days": 12}

    page = await http.get("/projects/p1")
    assert 'name="inherit" value="retention_days"' in page.text
    assert 'name="inherit" value="archive.interval"' not in page.text

    # the operator changes the interval: the project follows, and keeps its retention
    defaults = (await http.get("/v1/defaults")).json()
    keep = ("max_retention_days", "min_interval", "default_container", "default_format")
    changed = {name: defaults[name] for name in keep}
    changed |= {"default_retention_days": 60, "default_interval": "1h"}
    assert (await http.put("/v1/defaults", json=changed)).status_code == 200
    trail = (await http.get(TRAIL)).json()
    assert (trail["retention_days"], trail["archive"]["interval"]) == (12, "1h")

    back = await http.post(
        "/projects/p1/settings",
        data=form_as_shown(trail, page.text, inherit="retention_days"),
    )
    assert back.status_code == 303
    trail = (await http.get(TRAIL)).json()
    assert trail["overrides"] == {}
    assert trail["retention_days"] == 60
    history = (await http.get("/projects/p1")).text
    assert "Retention (days): 12 → (cloud default)" in history


async def test_a_clamped_override_is_shown_on_the_page(http: httpx.AsyncClient) -> None:
    assert (await http.patch(TRAIL, json={"retention_days": 3000})).status_code == 200
    defaults = (await http.get("/v1/defaults")).json()
    keep = ("default_interval", "min_interval", "default_container", "default_format")
    changed = {name: defaults[name] for name in keep}
    changed |= {"default_retention_days": 30, "max_retention_days": 365}
    assert (await http.put("/v1/defaults", json=changed)).status_code == 200
    page = await http.get("/projects/p1")
    assert "this project's retention (days) of 3000 is no longer allowed, so 365 applies" in (
        page.text
    )
