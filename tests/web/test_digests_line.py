"""The project page says whether digests are on, with the key and the validate command."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from stacktrail.api import create_app
from stacktrail.signing import generate_key_files
from stacktrail.web import mount_ui
from tests.support.config_store import make_settings, migrated_store


async def sign_in(http: httpx.AsyncClient) -> None:
    page = (await http.get("/login")).text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    response = await http.post("/login", data={"csrf_token": match[1], "method": "noauth"})
    assert response.status_code == 303


async def test_the_project_page_shows_the_digest_key_and_command(tmp_path: Path) -> None:
    key = generate_key_files(tmp_path / "digest.key")
    for key_file, shown in ((tmp_path / "digest.key", True), (None, False)):
        settings = make_settings(digest_key_file=key_file)
        async with migrated_store("sqlite", tmp_path, settings) as store:
            app = create_app(settings, store, None)
            mount_ui(app, settings)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ui") as http:
                await sign_in(http)
                page = (await http.get("/projects/p5")).text
        command = f"stacktrail validate --project p5 --public-key {key.fingerprint}.pub"
        assert (command in page) is shown
        assert ("Signed digests: on" in page) is shown
