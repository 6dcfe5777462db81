"""The pages over HTTP without a browser (in-process, authentication off): redirects,
CSRF, security headers, and a change made through a form reaching the API."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree

import httpx
import pytest

from stacktrail.api import create_app
from stacktrail.db.ledger import SqlLedger
from stacktrail.web import chart, mount_ui
from tests.support.config_store import make_settings, migrated_store

MANY = 1500  # event types in the catalogue: more than a form parser allows by default


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings()  # auth_mode = noauth
    async with migrated_store("sqlite", tmp_path, settings) as store:
        await SqlLedger(store.engine).record_event_types(
            {f"service{n:04d}.thing.done": n + 1 for n in range(MANY)}
        )
        app = create_app(settings, store, None)
        mount_ui(app, settings)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ui") as client:
            yield client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def sign_in(http: httpx.AsyncClient) -> None:
    page = await http.get("/login")
    response = await http.post(
        "/login", data={"csrf_token": csrf_of(page.text), "method": "noauth"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin"


async def test_pages_need_a_session(http: httpx.AsyncClient) -> None:
    for path in ("/", "/admin", "/projects/p1"):
        response = await http.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
    assert (await http.get("/projects/p1")).headers["location"] == "/login?next=%2Fprojects%2Fp1"
    # from another site the SameSite=Strict cookie is not sent: reload on this site first
    response = await http.get("/projects/p1", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 200
    assert '<meta http-equiv="refresh" content="0">' in response.text


async def test_security_headers_and_cookies(http: httpx.AsyncClient) -> None:
    page = await http.get("/login")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/login" in cookie
    assert "Secure" not in cookie  # plain http here
    static = await http.get("/static/stacktrail.css")
    assert static.status_code == 200
    assert static.headers["content-type"].startswith("text/css")
    api = await http.get("/v1/projects/p1/trail")
    assert "content-security-policy" not in api.headers  # the API's responses are its own


async def test_sign_in_post_needs_the_form_token(http: httpx.AsyncClient) -> None:
    await http.get("/login")
    refused = await http.post("/login", data={"method": "noauth"})
    assert refused.status_code == 403
    refused = await http.post("/login", data={"method": "noauth", "csrf_token": "guess"})
    assert refused.status_code == 403


async def test_a_form_changes_the_trail_through_the_api(http: httpx.AsyncClient) -> None:
    await sign_in(http)
    page = await http.get("/projects/p1")
    assert page.status_code == 200
    assert "Authentication is switched off" in page.text
    form = {
        "version": "0",
        "enabled": "on",
        "retention_days": "12",
        "archive.enabled": "on",
        "archive.container": "my-audit",
        "archive.prefix": "",
        "archive.format": "ndjson",
        "archive.interval": "30m",
        "archive.regions": ["RegionTwo"],
        "archive.write_mode": "acl",
        "archive.source": "ingest",
        "search.enabled": "on",
    }
    refused = await http.post("/projects/p1/settings", data=form)
    assert refused.status_code == 403
    assert (await http.get("/v1/projects/p1/trail")).json()["version"] == 0

    saved = await http.post(
        "/projects/p1/settings", data={**form, "csrf_token": csrf_of(page.text)}
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/projects/p1#settings"
    trail = (await http.get("/v1/projects/p1/trail")).json()
    assert trail["retention_days"] == 12
    assert trail["archive"] == {
        "enabled": True,
        "container": "my-audit",
        "prefix": "",
        "format": "ndjson",
        "interval": "30m",
        "regions": ["RegionTwo"],
        "write_mode": "acl",
        "source": "ingest",
    }
    shown = await http.get("/projects/p1")
    assert "Every 30 minutes, new events are delivered to container my-audit in RegionTwo" in (
        shown.text
    )
    assert "Your settings are saved (version 1)" in shown.text

    # a stale version: nothing is saved, the form keeps what was typed
    stale = await http.post(
        "/projects/p1/settings",
        data={**form, "retention_days": "13", "csrf_token": csrf_of(page.text)},
    )
    assert stale.status_code == 409
    assert "Somebody changed this trail while you were editing it" in stale.text
    assert 'value="13"' in stale.text
    assert 'name="version" value="1"' in stale.text
    assert (await http.get("/v1/projects/p1/trail")).json()["retention_days"] == 12

    reset = await http.post(
        "/projects/p1/reset", data={"version": "1", "csrf_token": csrf_of(page.text)}
    )
    assert reset.status_code == 303
    assert (await http.get("/v1/projects/p1/trail")).json()["configured"] is False


async def test_sign_out_needs_the_token_and_ends_the_session(http: httpx.AsyncClient) -> None:
    await sign_in(http)
    page = await http.get("/admin")
    assert page.status_code == 200
    assert (await http.post("/logout", data={})).status_code == 403
    out = await http.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    assert out.headers["location"] == "/login?reason=signed_out"
    assert (await http.get("/admin")).status_code == 303


async def test_unknown_pages_and_bad_ids(http: httpx.AsyncClient) -> None:
    await sign_in(http)
    assert (await http.get("/projects/not..an..id")).status_code == 404
    opened = await http.get("/admin/open", params={"project_id": "p 1"})
    assert opened.status_code == 422
    assert "Enter a project ID" in opened.text
    opened = await http.get("/admin/open", params={"project_id": "p1"})
    assert opened.headers["location"] == "/projects/p1"
    listed = await http.get("/admin", params={"q": "bad id!"})
    assert listed.status_code == 200
    assert "Use only letters, digits" in listed.text


async def test_a_long_event_catalogue_fits_in_one_form(http: httpx.AsyncClient) -> None:
    await sign_in(http)
    page = await http.get("/projects/p2")
    assert page.text.count('value="exclude"><span>Exclude') == MANY
    form = [(f"event:service{n:04d}.thing.done", "") for n in range(MANY)]
    form[7] = (form[7][0], "exclude")
    form += [("csrf_token", csrf_of(page.text)), ("version", "0")]

    async def post(fields: list[tuple[str, str]]) -> httpx.Response:
        return await http.post(
            "/projects/p2/events",
            content=urlencode(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    review = await post([*form, ("step", "review")])
    assert review.status_code == 200, review.text
    assert "Keep every event except events matching service0007.thing.done." in review.text
    assert "<code>service0007.thing.done</code>: every event → <strong>no event</strong>" in (
        review.text
    )
    assert (await http.get("/v1/projects/p2/trail")).json()["version"] == 0  # not yet saved
    token = re.search(r'name="reviewed" value="([0-9a-f]+)"', review.text)
    assert token
    saved = await post([*form, ("step", "save"), ("reviewed", token.group(1))])
    assert saved.status_code == 303, saved.text
    events = (await http.get("/v1/projects/p2/trail")).json()["events"]
    assert events == {"include": [], "exclude": ["service0007.thing.done"], "rules": []}


SVG = "http://www.w3.org/2000/svg"


def chart_of(html: str) -> ElementTree.Element:
    match = re.search(r'<svg class="chart".*?</svg>', html, re.S)
    assert match, "no chart in the page"
    return ElementTree.fromstring(match.group(0).replace("<svg ", f'<svg xmlns="{SVG}" ', 1))


async def test_the_chart_shows_30_days_of_events(tmp_path: Path) -> None:
    """The project page charts `events_per_day` of the status: a bar per UTC day, scaled to
    the busiest day, with dates under it and the numbers as a table; the spool is said once."""
    settings = make_settings()
    now = datetime.now(UTC)
    counts = {back: 100 * (back % 7) for back in range(35)}  # 0 to 600 a day
    counts[0] = 80
    counts[9] = 3000
    async with migrated_store("sqlite", tmp_path, settings) as store:
        await SqlLedger(store.engine).record_ingest_many(
            {("p4", now - timedelta(days=back)): count for back, count in counts.items()}
        )
        app = create_app(settings, store, None, pending_spool_bytes=lambda p, r: 48_213)
        mount_ui(app, settings)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ui") as http:
            await sign_in(http)
            page = (await http.get("/projects/p4")).text
            status = (await http.get("/v1/projects/p4/trail/status")).json()
    today = datetime.fromisoformat(status["events_per_day"][-1]["day"]).date()
    assert today == now.date()

    svg = chart_of(page)
    bars = svg.findall(f"{{{SVG}}}rect")
    assert len(bars) == 30
    days = [(today - timedelta(days=back)).isoformat() for back in range(29, -1, -1)]
    assert [bar.get("data-day") for bar in bars] == days
    expected = [counts[back] for back in range(29, -1, -1)]
    assert [int(bar.get("data-count", "")) for bar in bars] == expected
    for bar, count in zip(bars, expected, strict=True):  # the scale tops at 4,000
        assert float(bar.get("height", "")) == pytest.approx(
            chart.PLOT_HEIGHT * count / 4000, abs=0.1
        )
    assert float(bars[-10].get("height", "")) == 81.0  # the busiest day, 9 days ago
    assert bars[-1].get("class") == "bar today"
    labels = [text.text for text in svg.findall(f"{{{SVG}}}text")]
    dates = [chart.day_label(today - timedelta(days=back)) for back in (28, 21, 14, 7)]
    assert labels == ["0", "2k", "4k", *dates, "today"]
    total = sum(expected)
    assert f"{total:,} events in total" in (svg.findtext(f"{{{SVG}}}desc") or "")

    # the same numbers as a table, newest first
    table = re.search(r'<details class="chart-data">.*?</details>', page, re.S)
    assert table
    rows = re.findall(r'<tr><th scope="row">(\S+?)[ <].*?<td class="num">([^<]+)</td>', table[0])
    assert rows == [
        (day, f"{count:,}") for day, count in zip(days[::-1], expected[::-1], strict=True)
    ]

    assert "not known" not in page
    assert page.count("Waiting in the local spool") == 1
    assert "48.2 KB, for every region" in page
    assert "Waiting to be delivered" not in page
