"""Every field's rules through the API, on SQLite and PostgreSQL (422, clear messages)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import refusals

CASES: list[tuple[str, dict[str, Any], tuple[Any, ...], str]] = [
    # id, body, loc (after "body"), message fragment
    ("unknown-top", {"colour": "red"}, ("colour",), "Extra inputs are not permitted"),
    ("enabled-string", {"enabled": "yes"}, ("enabled",), "valid boolean"),
    ("retention-zero", {"retention_days": 0}, ("retention_days",), "greater than or equal to 1"),
    ("retention-negative", {"retention_days": -3}, ("retention_days",), "greater than or equal"),
    ("retention-string", {"retention_days": "30"}, ("retention_days",), "valid integer"),
    ("retention-float", {"retention_days": 1.5}, ("retention_days",), "valid integer"),
    ("retention-over-max", {"retention_days": 3651}, ("retention_days",), "maximum of 3650"),
    ("events-unknown", {"events": {"only": []}}, ("events", "only"), "Extra inputs"),
    ("events-not-list", {"events": {"include": "identity.*"}}, ("events", "include"), "list"),
    ("pattern-empty", {"events": {"include": [""]}}, ("events", "include", 0), "at least 1"),
    ("pattern-space", {"events": {"exclude": ["a b"]}}, ("events", "exclude", 0), "may contain"),
    ("pattern-bracket", {"events": {"include": ["[ab"]}}, ("events", "include", 0), "matching"),
    ("pattern-long", {"events": {"include": ["a" * 257]}}, ("events", "include", 0), "at most 256"),
    (
        "patterns-too-many",
        {"events": {"include": ["a"] * 101}},
        ("events", "include"),
        "at most 100",
    ),
    ("archive-unknown", {"archive": {"bucket": "x"}}, ("archive", "bucket"), "Extra inputs"),
    ("archive-enabled", {"archive": {"enabled": 1}}, ("archive", "enabled"), "valid boolean"),
    ("container-empty", {"archive": {"container": ""}}, ("archive", "container"), "at least 1"),
    ("container-slash", {"archive": {"container": "a/b"}}, ("archive", "container"), "`/`"),
    (
        "container-long",
        {"archive": {"container": "é" * 129}},
        ("archive", "container"),
        "256 bytes",
    ),
    ("container-ctrl", {"archive": {"container": "a\tb"}}, ("archive", "container"), "control"),
    ("prefix-absolute", {"archive": {"prefix": "/x"}}, ("archive", "prefix"), "start with `/`"),
    ("prefix-dotdot", {"archive": {"prefix": "a/../b"}}, ("archive", "prefix"), "`..`"),
    ("prefix-chars", {"archive": {"prefix": "a b"}}, ("archive", "prefix"), "may contain only"),
    ("format", {"archive": {"format": "xml"}}, ("archive", "format"), "'json', 'ndjson' or 'csv'"),
    ("interval-text", {"archive": {"interval": "soon"}}, ("archive", "interval"), "invalid"),
    ("interval-zero", {"archive": {"interval": "0s"}}, ("archive", "interval"), "positive"),
    ("interval-short", {"archive": {"interval": "30s"}}, ("archive", "interval"), "minimum of 1m"),
    ("interval-long", {"archive": {"interval": "2d"}}, ("archive", "interval"), "longer than 1d"),
    ("interval-frac", {"archive": {"interval": "1.5s"}}, ("archive", "interval"), "whole number"),
    ("interval-number", {"archive": {"interval": 900}}, ("archive", "interval"), "valid string"),
    ("regions-empty", {"archive": {"regions": []}}, ("archive", "regions"), "at least 1"),
    (
        "regions-unknown",
        {"archive": {"regions": ["RegionOne", "Atlantis"]}},
        ("archive", "regions", 1),
        "unknown region 'Atlantis'; known regions: RegionOne, RegionTwo",
    ),
    (
        "regions-twice",
        {"archive": {"regions": ["RegionTwo", "RegionTwo"]}},
        ("archive", "regions", 1),
        "listed twice",
    ),
    ("regions-chars", {"archive": {"regions": ["a b"]}}, ("archive", "regions", 0), "pattern"),
    ("write-mode", {"archive": {"write_mode": "root"}}, ("archive", "write_mode"), "'reseller'"),
    ("source", {"archive": {"source": "magic"}}, ("archive", "source"), "'ingest' or 'search'"),
    (
        "source-without-search",
        {"archive": {"source": "search"}, "search": {"enabled": False}},
        ("archive", "source"),
        "needs search.enabled",
    ),
    ("search-unknown", {"search": {"index": "x"}}, ("search", "index"), "Extra inputs"),
    ("search-enabled", {"search": {"enabled": "no"}}, ("search", "enabled"), "valid boolean"),
]


@pytest.mark.parametrize(
    ("body", "loc", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_put_refuses(
    client: httpx.AsyncClient,
    project_id: str,
    body: dict[str, Any],
    loc: tuple[Any, ...],
    message: str,
) -> None:
    response = await client.put(f"/v1/projects/{project_id}/trail", json=body)
    errors = refusals(response)
    matching = [msg for where, msg in errors if where == ("body", *loc)]
    assert matching, errors
    assert any(message in msg for msg in matching), matching
    stored = await client.get(f"/v1/projects/{project_id}/trail")
    assert stored.json()["version"] == 0  # nothing was stored


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [c[1:] for c in CASES if c[0] != "unknown-top"],
    ids=[c[0] for c in CASES if c[0] != "unknown-top"],
)
async def test_patch_refuses(
    client: httpx.AsyncClient,
    project_id: str,
    body: dict[str, Any],
    loc: tuple[Any, ...],
    message: str,
) -> None:
    response = await client.patch(f"/v1/projects/{project_id}/trail", json=body)
    errors = refusals(response)
    assert any(where == ("body", *loc) and message in msg for where, msg in errors), errors


async def test_all_errors_at_once(client: httpx.AsyncClient, project_id: str) -> None:
    response = await client.put(
        f"/v1/projects/{project_id}/trail",
        json={"retention_days": 4000, "archive": {"interval": "10s", "regions": ["Nowhere"]}},
    )
    locs = {where for where, _ in refusals(response)}
    assert locs == {
        ("body", "retention_days"),
        ("body", "archive", "interval"),
        ("body", "archive", "regions", 0),
    }


async def test_edges_are_accepted(client: httpx.AsyncClient, project_id: str) -> None:
    response = await client.put(
        f"/v1/projects/{project_id}/trail",
        json={
            "retention_days": 3650,
            "events": {"include": ["a" * 256], "exclude": ["[a-z]*.?"]},
            "archive": {"container": "x" * 256, "interval": "1m", "regions": ["RegionTwo"]},
        },
    )
    assert response.status_code == 200, response.text
    response = await client.put(
        f"/v1/projects/{project_id}/trail",
        json={"retention_days": 1, "archive": {"interval": "1d", "container": "a"}},
    )
    assert response.status_code == 200, response.text
