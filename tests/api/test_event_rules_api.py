"""A trail's event rules through the API, on SQLite and PostgreSQL: stored as sent (the
conditions given), returned complete, replaced as a whole by a merge patch, cleared by
null; documents of patterns only keep working; refusals name each rule's field."""

from __future__ import annotations

from typing import Any

import httpx

from stacktrail.domain.event_rules import READ_ONLY_ACTIONS
from tests.support.api import Emitted, refusals

NO_READS_OF_COMPUTE = {
    "effect": "exclude",
    "service": ["compute"],
    "action": list(READ_ONLY_ACTIONS),
}
ONLY_FAILURES = {"effect": "include", "outcome": ["failure"]}


def complete(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule as the API returns it: every condition, empty where none was given."""
    empty: dict[str, Any] = {
        "event_type": [],
        "service": [],
        "action": [],
        "outcome": [],
        "target_type": [],
    }
    return {**empty, **rule}


def url(project_id: str) -> str:
    return f"/v1/projects/{project_id}/trail"


async def test_rules_are_stored_returned_and_audited(
    client: httpx.AsyncClient, project_id: str, emitted: Emitted
) -> None:
    saved = await client.put(
        url(project_id),
        json={"events": {"include": ["identity.*"], "rules": [NO_READS_OF_COMPUTE]}},
    )
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["events"] == {
        "include": ["identity.*"],
        "exclude": [],
        "rules": [complete(NO_READS_OF_COMPUTE)],
    }
    assert body["overrides"] == {
        "events": {"include": ["identity.*"], "rules": [NO_READS_OF_COMPUTE]}
    }
    assert "events.rules" not in body["inherited"]
    assert "events.exclude" in body["inherited"]
    assert emitted[-1]["attachments"][1]["content"] == body["overrides"]
    again = (await client.get(url(project_id))).json()
    assert again["events"] == body["events"]


async def test_a_merge_patch_replaces_the_rules_and_null_clears_them(
    client: httpx.AsyncClient, project_id: str
) -> None:
    await client.put(url(project_id), json={"events": {"rules": [NO_READS_OF_COMPUTE]}})
    patched = await client.patch(
        url(project_id), json={"events": {"rules": [ONLY_FAILURES, NO_READS_OF_COMPUTE]}}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["events"]["rules"] == [
        complete(ONLY_FAILURES),
        complete(NO_READS_OF_COMPUTE),
    ]
    untouched = await client.patch(url(project_id), json={"retention_days": 30})
    assert untouched.json()["events"]["rules"] == patched.json()["events"]["rules"]
    cleared = await client.patch(url(project_id), json={"events": {"rules": None}})
    assert cleared.json()["events"]["rules"] == []
    assert "events.rules" in cleared.json()["inherited"]


async def test_pattern_documents_keep_working(client: httpx.AsyncClient, project_id: str) -> None:
    saved = await client.put(
        url(project_id), json={"events": {"include": ["compute.*"], "exclude": ["read/*"]}}
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["events"] == {
        "include": ["compute.*"],
        "exclude": ["read/*"],
        "rules": [],
    }
    assert saved.json()["overrides"] == {
        "events": {"include": ["compute.*"], "exclude": ["read/*"]}
    }


async def test_refusals_name_each_rules_field(client: httpx.AsyncClient, project_id: str) -> None:
    rules = [
        NO_READS_OF_COMPUTE,
        {"effect": "include"},
        {"effect": "sometimes", "service": ["compute", "a b"], "outcome": ["maybe"]},
        {"effect": "exclude", "verb": ["get"]},
    ]
    for method in ("PUT", "PATCH"):
        answer = await client.request(method, url(project_id), json={"events": {"rules": rules}})
        assert refusals(answer) == [
            (
                ("body", "events", "rules", 1),
                "a rule needs at least one condition: event_type, service, action, outcome "
                "or target_type",
            ),
            (("body", "events", "rules", 2, "effect"), "Input should be 'include' or 'exclude'"),
            (
                ("body", "events", "rules", 2, "service", 1),
                "pattern 'a b' may contain only letters, digits, `._/:-` and the glob "
                "characters `*?[]`",
            ),
            (
                ("body", "events", "rules", 2, "outcome", 0),
                "Input should be 'success', 'failure', 'pending' or 'unknown'",
            ),
            (("body", "events", "rules", 3, "verb"), "Extra inputs are not permitted"),
        ]
    too_many = [ONLY_FAILURES] * 51
    answer = await client.put(url(project_id), json={"events": {"rules": too_many}})
    ((where, message),) = refusals(answer)
    assert where == ("body", "events", "rules")
    assert "at most 50 items" in message
    assert (await client.get(url(project_id))).json()["version"] == 0  # nothing was stored
