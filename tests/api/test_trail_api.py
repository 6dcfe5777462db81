from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import insert

from stacktrail.db import job_tables as jobs_tables
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.ledger import DeliveredObject, DeliveryError
from tests.support.api import Emitted, refusals

MERGE = {"Content-Type": "application/merge-patch+json"}


def url(project_id: str, tail: str = "") -> str:
    return f"/v1/projects/{project_id}/trail{tail}"


async def test_unconfigured_trail_reads_as_defaults(
    client: httpx.AsyncClient, project_id: str
) -> None:
    response = await client.get(url(project_id))
    assert response.status_code == 200
    assert response.headers["ETag"] == '"0"'
    assert response.headers["X-Stacktrail-Auth"] == "DISABLED"
    body = response.json()
    assert body["project_id"] == project_id
    assert body["version"] == 0
    assert body["configured"] is False
    assert body["updated_at"] is None
    assert body["updated_by"] is None
    assert body["enabled"] is True
    assert body["retention_days"] == 90
    assert body["events"] == {"include": [], "exclude": [], "rules": []}
    assert body["archive"] == {
        "enabled": True,
        "container": "audit-trail",
        "prefix": "",
        "format": "json",
        "interval": "15m",
        "regions": ["RegionOne", "RegionTwo"],
        "write_mode": "reseller",
        "source": "ingest",
    }
    assert body["search"] == {"enabled": True}


async def test_put_then_get(client: httpx.AsyncClient, project_id: str, emitted: Emitted) -> None:
    document = {
        "enabled": True,
        "retention_days": 30,
        "events": {"include": ["identity.*", "read/*"], "exclude": ["*.authenticate*"]},
        "archive": {
            "enabled": True,
            "container": "my-audit",
            "prefix": "logs/",
            "format": "ndjson",
            "interval": "3600s",
            "regions": ["RegionTwo"],
            "write_mode": "acl",
            "source": "search",
        },
        "search": {"enabled": True},
    }
    response = await client.put(url(project_id), json=document)
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"1"'
    body = response.json()
    assert body["version"] == 1
    assert body["configured"] is True
    assert body["archive"]["prefix"] == "logs"  # trailing slash trimmed
    assert body["archive"]["interval"] == "1h"  # canonical form
    assert body["updated_by"] == {"user_id": "noauth", "user_name": "noauth"}
    assert (await client.get(url(project_id))).json() == body

    [event] = emitted
    assert event["action"] == "update/trail"
    assert event["target"] == {
        "typeURI": "service/audit/trail",
        "id": project_id,
        "project_id": project_id,
    }
    assert event["requestPath"] == url(project_id)
    attachments = {a["name"]: a["content"] for a in event["attachments"]}
    assert attachments["old"] is None
    assert attachments["new"]["archive"]["container"] == "my-audit"


async def test_put_fills_omitted_members_with_defaults(
    client: httpx.AsyncClient, project_id: str
) -> None:
    response = await client.put(url(project_id), json={"retention_days": 10})
    body = response.json()
    assert body["retention_days"] == 10
    assert body["archive"]["container"] == "audit-trail"
    assert body["archive"]["regions"] == ["RegionOne", "RegionTwo"]


async def test_a_read_document_can_be_sent_back(client: httpx.AsyncClient, project_id: str) -> None:
    document = (await client.get(url(project_id))).json()
    document["retention_days"] = 45
    response = await client.put(url(project_id), json=document, headers={"If-Match": '"0"'})
    assert response.status_code == 200, response.text
    assert response.json()["retention_days"] == 45
    document["project_id"] = "someone-else"
    response = await client.put(url(project_id), json=document)
    assert refusals(response)[0][0] == ("body", "project_id")


async def test_concurrent_edit_with_the_first_etag_gets_412(
    client: httpx.AsyncClient, project_id: str
) -> None:
    await client.put(url(project_id), json={"retention_days": 20})
    first = await client.get(url(project_id))
    second = await client.get(url(project_id))
    assert first.headers["ETag"] == second.headers["ETag"] == '"1"'

    ok = await client.put(
        url(project_id), json={"retention_days": 21}, headers={"If-Match": first.headers["ETag"]}
    )
    assert ok.status_code == 200
    assert ok.headers["ETag"] == '"2"'
    stale = await client.put(
        url(project_id), json={"retention_days": 22}, headers={"If-Match": second.headers["ETag"]}
    )
    assert stale.status_code == 412
    assert stale.headers["ETag"] == '"2"'
    assert "read it again" in stale.json()["detail"]
    assert (await client.get(url(project_id))).json()["retention_days"] == 21

    for method in ("PATCH", "DELETE"):
        response = await client.request(
            method,
            url(project_id),
            content=b'{"enabled": false}' if method == "PATCH" else None,
            headers={**MERGE, "If-Match": '"1"'},
        )
        assert response.status_code == 412, method
    garbage = await client.put(url(project_id), json={}, headers={"If-Match": "nonsense"})
    assert garbage.status_code == 412
    weak = await client.put(url(project_id), json={}, headers={"If-Match": 'W/"2"'})
    assert weak.status_code == 200
    star = await client.put(url(project_id), json={}, headers={"If-Match": "*"})
    assert star.status_code == 200


async def test_simultaneous_puts_with_one_etag_one_wins(
    client: httpx.AsyncClient, project_id: str
) -> None:
    responses = await asyncio.gather(
        *(
            client.put(
                url(project_id), json={"retention_days": 10 + i}, headers={"If-Match": '"0"'}
            )
            for i in range(4)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 412, 412, 412]


async def test_merge_patch(client: httpx.AsyncClient, project_id: str, emitted: Emitted) -> None:
    await client.put(
        url(project_id),
        json={"retention_days": 60, "archive": {"container": "mine", "prefix": "p"}},
    )
    response = await client.patch(
        url(project_id),
        content=b'{"archive": {"prefix": null, "format": "csv"}, "search": {"enabled": false}}',
        headers={**MERGE, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 2
    assert body["retention_days"] == 60  # untouched
    assert body["archive"]["container"] == "mine"
    assert body["archive"]["prefix"] == ""  # removed: the default
    assert body["archive"]["format"] == "csv"
    assert body["search"]["enabled"] is False
    assert emitted[-1]["action"] == "update/trail"

    as_json = await client.patch(url(project_id), json={"enabled": False})
    assert as_json.status_code == 200
    assert as_json.json()["enabled"] is False

    for content, headers, status in (
        (b'{"enabled": true}', {"Content-Type": "text/plain"}, 415),
        (b'{"enabled": true}', {}, 415),
        (b"[1, 2]", MERGE, 422),
        (b"{not json", MERGE, 422),
        (b'{"archive": {"regions": []}}', MERGE, 422),
        (b'{"archive": "none"}', MERGE, 422),
        (b'{"colour": "red"}', MERGE, 422),
    ):
        response = await client.patch(url(project_id), content=content, headers=headers)
        assert response.status_code == status, (content, response.text)
    assert (await client.get(url(project_id))).json()["version"] == 3


async def test_patch_of_an_unconfigured_trail(client: httpx.AsyncClient, project_id: str) -> None:
    response = await client.patch(
        url(project_id), content=b'{"retention_days": 7}', headers={**MERGE, "If-Match": '"0"'}
    )
    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert response.json()["archive"]["container"] == "audit-trail"


async def test_delete_resets_to_defaults(
    client: httpx.AsyncClient, project_id: str, emitted: Emitted
) -> None:
    await client.put(url(project_id), json={"enabled": False, "retention_days": 5})
    response = await client.delete(url(project_id), headers={"If-Match": '"1"'})
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    body = response.json()
    assert body["configured"] is False
    assert body["enabled"] is True
    assert body["retention_days"] == 90
    assert emitted[-1]["action"] == "delete/trail"
    attachments = {a["name"]: a["content"] for a in emitted[-1]["attachments"]}
    assert attachments["new"] is None
    assert attachments["old"]["retention_days"] == 5
    again = await client.delete(url(project_id))
    assert again.status_code == 200
    assert again.headers["ETag"] == '"2"'
    assert len(emitted) == 2  # resetting a reset trail is no change

    changes = (await client.get(url(project_id, "/changes"))).json()["changes"]
    assert [c["action"] for c in changes] == ["delete/trail", "update/trail"]
    assert changes[1]["new"]["retention_days"] == 5
    assert changes[1]["old"] is None
    assert changes[0]["user_name"] == "noauth"
    older = await client.get(url(project_id, "/changes"), params={"before": changes[0]["id"]})
    assert [c["version"] for c in older.json()["changes"]] == [1]


async def test_status(client: httpx.AsyncClient, ledger: SqlLedger, project_id: str) -> None:
    empty = (await client.get(url(project_id, "/status"))).json()
    assert [r["region"] for r in empty["regions"]] == ["RegionOne", "RegionTwo"]
    assert empty["regions"][0] == {
        "region": "RegionOne",
        "last_delivery": None,
        "last_error": None,
        "in_error": False,
        "last_digest": None,
        "pending_spool_bytes": 4096,
    }
    assert empty["regions"][1]["pending_spool_bytes"] is None
    assert empty["events"]["last_hour"] == 0
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=back)).isoformat() for back in range(29, -1, -1)]
    assert empty["events_per_day"] == [{"day": day, "count": 0} for day in days]
    assert empty["retention_update"] is None

    now = datetime.now(UTC).replace(microsecond=0)
    await ledger.record_delivery(
        DeliveredObject(
            project_id,
            "RegionOne",
            "audit-trail",
            "k/1.json.gz",
            "2025-01-02",
            3,
            99,
            "00" * 32,
            now,
        )
    )
    await ledger.record_error(DeliveryError(project_id, "RegionTwo", "401 Unauthorized", now))
    await ledger.record_error(DeliveryError(project_id, "RegionThree", "gone", now))
    await ledger.record_ingest(project_id, now, 42)
    await ledger.record_ingest_many(
        {
            (project_id, now - timedelta(days=2)): 7,
            (project_id, now - timedelta(days=29)): 5,
            (project_id, now - timedelta(days=30)): 1000,  # before the last 30 days
            (uuid.uuid4().hex, now): 3,  # another project
        }
    )
    status = (await client.get(url(project_id, "/status"))).json()
    one, two, three = status["regions"]
    assert one["last_delivery"] == {
        "container": "audit-trail",
        "key": "k/1.json.gz",
        "day": "2025-01-02",
        "at": now.isoformat().replace("+00:00", "Z"),
    }
    assert not one["in_error"]
    assert two["in_error"]
    assert two["last_error"]["message"] == "401 Unauthorized"
    assert two["last_error"]["consecutive"] == 1
    assert three["region"] == "RegionThree"  # a region no longer configured still shows
    assert status["events"]["last_hour"] == 42
    assert status["events"]["last_day"] == 42
    per_day = status["events_per_day"]
    assert [entry["day"] for entry in per_day] == days
    assert {entry["day"]: entry["count"] for entry in per_day if entry["count"]} == {
        days[-1]: 42,
        days[-3]: 7,
        days[0]: 5,
    }


async def test_status_shows_the_progress_of_a_retention_update(
    client: httpx.AsyncClient, store: TrailStore, project_id: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    async with store.engine.begin() as conn:
        await conn.execute(
            insert(jobs_tables.retention_updates).values(
                project_id=project_id,
                retention_days=30,
                status="running",
                objects_seen=10,
                objects_updated=7,
                objects_deleted=1,
                cursor=None,
                error=None,
                requested_at=now,
                started_at=now,
                finished_at=None,
                updated_at=now,
            )
        )
    update = (await client.get(url(project_id, "/status"))).json()["retention_update"]
    assert update == {
        "retention_days": 30,
        "status": "running",
        "objects_seen": 10,
        "objects_updated": 7,
        "objects_deleted": 1,
        "error": None,
        "requested_at": now.isoformat().replace("+00:00", "Z"),
        "finished_at": None,
    }


async def test_status_schema_documents_events_per_day(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    per_day = schemas["TrailStatusView"]["properties"]["events_per_day"]
    assert "events_per_day" in schemas["TrailStatusView"]["required"]
    assert per_day["items"] == {"$ref": "#/components/schemas/DayCountView"}
    assert (per_day["minItems"], per_day["maxItems"]) == (30, 30)
    assert "UTC day" in per_day["description"]
    day = schemas["DayCountView"]
    assert day["required"] == ["day", "count"]
    assert day["properties"]["day"]["type"] == "string"
    assert day["properties"]["day"]["format"] == "date"
    assert day["properties"]["count"]["type"] == "integer"


async def test_project_id_is_validated(client: httpx.AsyncClient) -> None:
    for bad in ("a.b", "x" * 65, "a%20b", "%C3%A9"):
        response = await client.get(f"/v1/projects/{bad}/trail")
        assert response.status_code == 422, bad
    assert (await client.get("/v1/projects/unscoped/trail")).status_code == 200


async def test_unknown_query_parameters_are_refused(
    client: httpx.AsyncClient, project_id: str
) -> None:
    response = await client.get("/v1/trails", params={"enable": "false"})
    assert refusals(response)[0] == (("query", "enable"), "Unknown query parameter")
    assert (await client.get(url(project_id), params={"x": "1"})).status_code == 422
    assert (await client.get("/v1/defaults", params={"x": "1"})).status_code == 422
    assert (await client.get("/v1/trails", params={"enabled": "false"})).status_code == 200
    changes = await client.get(url(project_id, "/changes"), params={"limit": 5})
    assert changes.status_code == 200
