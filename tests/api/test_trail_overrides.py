"""A trail stores what the project set; everything else follows the operator's defaults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from stacktrail.api import create_app
from stacktrail.config import Settings
from stacktrail.db.trail_store import TrailStore
from tests.support.api import Emitted, client_for

MERGE = {"Content-Type": "application/merge-patch+json"}
DEFAULTS = {
    "default_retention_days": 90,
    "max_retention_days": 3650,
    "default_interval": "15m",
    "min_interval": "1m",
    "default_container": "audit-trail",
    "default_format": "json",
}
# each operator default in turn, and the trail member it decides
CHANGES = [
    ("default_retention_days", 60, "retention_days"),
    ("default_interval", "1h", "archive.interval"),
    ("default_container", "operator-logs", "archive.container"),
    ("default_format", "csv", "archive.format"),
]


@pytest.fixture
async def own_client(
    settings: Settings, own_store: TrailStore, emitted: Emitted
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_app(settings, own_store, None, emit=emitted.append)) as http:
        yield http


def url(project_id: str, tail: str = "") -> str:
    return f"/v1/projects/{project_id}/trail{tail}"


def member(body: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        body = body[part]
    return body


async def put_defaults(client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    current = (await client.get("/v1/defaults")).json()
    document = {name: current[name] for name in DEFAULTS} | changes
    response = await client.put("/v1/defaults", json=document)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(("own_default", "own_value", "own_member"), CHANGES)
async def test_project_follows_every_default_but_the_one_it_set(
    own_client: httpx.AsyncClient,
    project_id: str,
    own_default: str,
    own_value: Any,
    own_member: str,
) -> None:
    values = {"retention_days": 30, "archive.interval": "5m", "archive.container": "mine"}
    values["archive.format"] = "ndjson"
    section, _, name = own_member.rpartition(".")
    patch: dict[str, Any] = {name: values[own_member]}
    if section:
        patch = {section: patch}
    response = await own_client.patch(url(project_id), json=patch, headers=MERGE)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["overrides"] == patch
    assert own_member not in body["inherited"]
    assert {"enabled", "archive.regions", "search.enabled"} <= set(body["inherited"])

    for default, value, decided in CHANGES:
        await put_defaults(own_client, **{default: value})
        trail = (await own_client.get(url(project_id))).json()
        for _, later, path in CHANGES[: CHANGES.index((default, value, decided)) + 1]:
            expected = values[path] if path == own_member else later
            assert member(trail, path) == expected, (default, path)
        assert trail["version"] == 1  # a change of the defaults is not a change of the trail

    cleared = await own_client.patch(url(project_id), json=_null(patch), headers=MERGE)
    assert cleared.status_code == 200, cleared.text
    body = cleared.json()
    assert body["version"] == 2
    assert body["overrides"] == {}
    assert own_member in body["inherited"]
    for _, later, path in CHANGES:
        assert member(body, path) == later


def _null(patch: dict[str, Any]) -> dict[str, Any]:
    return {k: _null(v) if isinstance(v, dict) else None for k, v in patch.items()}


async def test_history_records_overrides_and_a_no_op_patch_changes_nothing(
    client: httpx.AsyncClient, project_id: str, emitted: Emitted
) -> None:
    nothing = await client.patch(url(project_id), json={"archive": {"interval": None}})
    assert nothing.status_code == 200
    assert (nothing.json()["version"], nothing.json()["configured"]) == (0, False)
    assert emitted == []
    first = await client.patch(url(project_id), json={"retention_days": 30}, headers=MERGE)
    assert first.status_code == 200
    assert first.headers["ETag"] == '"1"'
    events_before = len(emitted)
    again = await client.patch(
        url(project_id), json={"retention_days": 30}, headers={**MERGE, "If-Match": '"1"'}
    )
    assert again.status_code == 200
    assert again.headers["ETag"] == '"1"'
    assert again.json()["version"] == 1
    clear_nothing = await client.patch(url(project_id), json={"archive": {"prefix": None}})
    assert clear_nothing.json()["version"] == 1
    assert len(emitted) == events_before  # nothing changed, nothing emitted

    second = await client.patch(
        url(project_id), json={"archive": {"interval": "1h"}, "retention_days": None}
    )
    assert second.json()["version"] == 2
    assert second.json()["overrides"] == {"archive": {"interval": "1h"}}
    changes = (await client.get(url(project_id, "/changes"))).json()["changes"]
    assert [(c["version"], c["old"], c["new"]) for c in changes] == [
        (2, {"retention_days": 30}, {"archive": {"interval": "1h"}}),
        (1, None, {"retention_days": 30}),
    ]
    assert emitted[-1]["action"] == "update/trail"


async def test_get_document_sent_back_with_put_is_accepted(
    client: httpx.AsyncClient, project_id: str
) -> None:
    read = (await client.put(url(project_id), json={"retention_days": 31})).json()
    response = await client.put(url(project_id), json=read)  # read-only members ignored
    assert response.status_code == 200, response.text
    assert response.json()["retention_days"] == 31


async def test_tightened_bound_is_reported_and_clamped(
    own_client: httpx.AsyncClient, project_id: str
) -> None:
    response = await own_client.patch(
        url(project_id), json={"retention_days": 3000, "archive": {"interval": "2m"}}
    )
    assert response.status_code == 200
    assert response.json()["bound_notes"] == []
    defaults = await put_defaults(own_client, max_retention_days=365, min_interval="5m")

    trail = (await own_client.get(url(project_id))).json()
    assert trail["retention_days"] == 365
    assert trail["archive"]["interval"] == "5m"
    assert trail["overrides"] == {"retention_days": 3000, "archive": {"interval": "2m"}}
    notes = {note["field"]: note for note in trail["bound_notes"]}
    assert notes["retention_days"]["stored"] == 3000
    assert notes["retention_days"]["effective"] == 365
    assert "above the operator's maximum of 365 days" in notes["retention_days"]["message"]
    assert notes["archive.interval"]["effective"] == "5m"

    reported = {(e["project_id"], e["field"]) for e in defaults["out_of_bounds"]["overrides"]}
    assert reported == {(project_id, "retention_days"), (project_id, "archive.interval")}
    assert defaults["out_of_bounds"]["count"] == 2
    read = (await own_client.get("/v1/defaults")).json()
    assert read["out_of_bounds"]["count"] == 2
    status = (await own_client.get(url(project_id, "/status"))).json()
    assert {note["field"] for note in status["bound_notes"]} == set(notes)
    listed = (await own_client.get("/v1/trails", params={"search": project_id})).json()
    assert len(listed["trails"][0]["bound_notes"]) == 2

    # a write that keeps the out-of-bounds override is refused, with the bound
    refused = await own_client.patch(url(project_id), json={"enabled": False}, headers=MERGE)
    assert refused.status_code == 422
    assert "maximum of 365" in refused.text
    fixed = await own_client.patch(
        url(project_id), json={"retention_days": None, "archive": {"interval": None}}
    )
    assert fixed.status_code == 200
    assert fixed.json()["bound_notes"] == []
    assert (await own_client.get("/v1/defaults")).json()["out_of_bounds"]["count"] == 0


async def test_openapi_documents_overrides(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    view = schemas["TrailView"]
    for name in ("overrides", "inherited", "bound_notes"):
        assert name in view["required"]
        assert view["properties"][name].get("description") or name == "bound_notes"
    assert "follow the operator defaults" in view["properties"]["inherited"]["description"]
    assert "out_of_bounds" in schemas["DefaultsView"]["properties"]
