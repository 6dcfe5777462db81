"""GET /v1/projects/{id}/events and .../events/{event_id}: a project's recent events from
search (the dev stack's osmem server), newest first, filtered, paginated, isolated."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from stacktrail.api import create_app
from stacktrail.db.trail_store import TrailStore
from stacktrail.search.browse import SearchEventBrowser
from stacktrail.search.client import SearchClient
from tests.support.api import client_for
from tests.support.config_store import make_settings
from tests.support.corpus import bulk_load, install_template, make_event, remove_indices

A = uuid.uuid4().hex
B = uuid.uuid4().hex
ACTIONS = ("read", "read/list", "create", "delete")
OUTCOMES = ("success", "failure")


@pytest.fixture
async def seeded(search_url: str, index_template: str) -> AsyncIterator[dict[str, Any]]:
    now = datetime.now(UTC)
    events: dict[str, list[dict[str, Any]]] = {A: [], B: [], f"{A}-old": []}
    for n in range(130):
        events[A].append(
            make_event(
                A,
                now - timedelta(minutes=n, milliseconds=n % 3),
                action=ACTIONS[n % 4],
                outcome=OUTCOMES[n % 5 == 0],
                target_type="compute/server" if n % 2 else "storage/volume",
                observer={
                    "id": "target",
                    "typeURI": "service/compute" if n % 3 else "service/storage",
                },
            )
        )
    events[B] = [make_event(B, now - timedelta(minutes=n)) for n in range(5)]
    events[f"{A}-old"] = [make_event(f"{A}-old", now - timedelta(minutes=n)) for n in range(5)]
    old = make_event(A, now - timedelta(days=3))  # outside the default frame of a day
    events[A].append(old)
    await install_template(search_url, index_template)
    await bulk_load(
        search_url,
        index_template,
        [(project, e, now) for project, evs in events.items() for e in evs],
    )
    yield {"events": events, "old": old}
    await remove_indices(search_url, index_template)


@pytest.fixture
async def events_client(
    search_url: str, index_template: str, store: TrailStore
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(search_url=search_url, search_index_template=index_template)
    search = SearchClient.from_settings(settings)
    app: FastAPI = create_app(
        settings, store, None, events=SearchEventBrowser(search, index_template)
    )
    async with client_for(app) as http:
        yield http
    await search.close()


def times(events: list[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromisoformat(e["eventTime"]) for e in events]


async def test_pages_run_newest_first_and_stay_in_the_project(
    events_client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 50}
        if cursor:
            params["cursor"] = cursor
        answer = await events_client.get(f"/v1/projects/{A}/events", params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["total"] == 130
        seen.extend(body["events"])
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 3
    expected = {e["id"] for e in seeded["events"][A]} - {seeded["old"]["id"]}
    assert [e["id"] for e in seen]
    assert {e["id"] for e in seen} == expected
    assert len(seen) == len(expected)
    assert times(seen) == sorted(times(seen), reverse=True)
    assert all("@project_id" not in e for e in seen)


async def test_filters_match_exactly(
    events_client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    params = {
        "action": "read",
        "outcome": "failure",
        "observer": "service/compute",
        "target_type": "storage/volume",
        "from": "-2h",
    }
    answer = await events_client.get(f"/v1/projects/{A}/events", params=params)
    assert answer.status_code == 200, answer.text
    got = {e["id"] for e in answer.json()["events"]}
    want = {
        e["id"]
        for e in seeded["events"][A]
        if e["action"] == "read"
        and e["outcome"] == "failure"
        and e["observer"]["typeURI"] == "service/compute"
        and e["target"]["typeURI"] == "storage/volume"
        and e is not seeded["old"]
    }
    assert want
    assert got == want
    initiator = seeded["events"][A][0]["initiator"]["name"]
    by_name = await events_client.get(
        f"/v1/projects/{A}/events", params={"initiator": initiator, "limit": 1}
    )
    assert by_name.json()["total"] == 130


async def test_one_event_in_full_and_never_another_projects(
    events_client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    mine = seeded["events"][A][7]
    answer = await events_client.get(f"/v1/projects/{A}/events/{mine['id']}")
    assert answer.status_code == 200
    assert answer.json() == mine
    theirs = seeded["events"][B][0]["id"]
    assert (await events_client.get(f"/v1/projects/{A}/events/{theirs}")).status_code == 404
    older = seeded["events"][f"{A}-old"][0]["id"]
    assert (await events_client.get(f"/v1/projects/{A}/events/{older}")).status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "bm90LWEtY3Vyc29y"},
        {"cursor": "!!"},
        {"from": "yesterday"},
        {"limit": 201},
        {"action": "x" * 256},
    ],
)
async def test_unusable_parameters_are_422(
    events_client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    answer = await events_client.get(f"/v1/projects/{A}/events", params=params)
    assert answer.status_code == 422, answer.text


async def test_without_search_events_are_503(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"/v1/projects/{A}/events")
    assert answer.status_code == 503
    assert "no search server" in answer.json()["detail"]
