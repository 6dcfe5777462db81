"""The API reference works offline (Swagger UI and ReDoc served by stacktrail itself), and
a browser asking for an unknown address gets a page, the API its problem document."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from stacktrail.api import create_app
from stacktrail.db.trail_store import TrailStore
from stacktrail.web import mount_ui
from tests.support.api import client_for
from tests.support.config_store import make_settings

HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture
async def http(store: TrailStore) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings()
    app: FastAPI = create_app(settings, store, None)
    mount_ui(app, settings)
    async with client_for(app) as client:
        yield client


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_need_no_cdn(http: httpx.AsyncClient, page: str) -> None:
    answer = await http.get(page)
    assert answer.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', answer.text)
    assert assets
    assert all(url.startswith("/") for url in assets), assets  # nothing from another host
    assert "cdn.jsdelivr" not in answer.text
    for url in assets:
        asset = await http.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url


async def test_browsers_get_a_page_and_the_api_json(http: httpx.AsyncClient) -> None:
    page = await http.get("/no/such/page", headers=HTML)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "There is no page at /no/such/page" in page.text
    api = await http.get("/v1/no/such/thing", headers=HTML)
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    plain = await http.get("/no/such/page")
    assert plain.headers["content-type"] == "application/problem+json"
    assert plain.json()["detail"] == "There is nothing at /no/such/page."
