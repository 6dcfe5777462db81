from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from stacktrail.api import create_app
from stacktrail.config import Settings
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.ledger import DeliveryError
from tests.support.api import Emitted, client_for, problem_detail, refusals

DEFAULTS = {
    "default_retention_days": 30,
    "max_retention_days": 400,
    "default_interval": "10m",
    "min_interval": "5m",
    "default_container": "operator-audit",
    "default_format": "ndjson",
}


@pytest.fixture
async def own_client(
    settings: Settings, own_store: TrailStore, emitted: Emitted
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_app(settings, own_store, None, emit=emitted.append)) as http:
        yield http


async def test_list_trails(client: httpx.AsyncClient, ledger: SqlLedger) -> None:
    tag = uuid.uuid4().hex[:10]
    ids = [f"{tag}-{i}" for i in range(5)]
    for i, project in enumerate(ids):
        response = await client.put(f"/v1/projects/{project}/trail", json={"enabled": i != 2})
        assert response.status_code == 200
    await ledger.record_error(DeliveryError(ids[3], "RegionOne", "boom", datetime.now(UTC)))

    page = (await client.get("/v1/trails", params={"search": tag, "limit": 2})).json()
    assert [t["project_id"] for t in page["trails"]] == ids[:2]
    assert page["next_marker"] == ids[1]
    rest = await client.get(
        "/v1/trails", params={"search": tag, "limit": 10, "marker": page["next_marker"]}
    )
    assert [t["project_id"] for t in rest.json()["trails"]] == ids[2:]
    assert rest.json()["next_marker"] is None
    by_offset = await client.get("/v1/trails", params={"search": tag, "limit": 1, "offset": 4})
    assert [t["project_id"] for t in by_offset.json()["trails"]] == [ids[4]]
    disabled = await client.get("/v1/trails", params={"search": tag, "enabled": "false"})
    assert [t["project_id"] for t in disabled.json()["trails"]] == [ids[2]]
    failing = (await client.get("/v1/trails", params={"search": tag, "in_error": True})).json()
    assert [(t["project_id"], t["in_error"]) for t in failing["trails"]] == [(ids[3], True)]
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"marker": "a b"}, {"search": "%"}):
        assert (await client.get("/v1/trails", params=bad)).status_code == 422, bad


async def test_defaults(
    own_client: httpx.AsyncClient, emitted: Emitted, own_store: TrailStore
) -> None:
    client = own_client
    initial = await client.get("/v1/defaults")
    assert initial.status_code == 200
    assert initial.headers["ETag"] == '"0"'
    body = initial.json()
    assert body["default_retention_days"] == 90
    assert body["max_retention_days"] == 3650
    assert body["max_interval"] == "1d"
    assert body["regions"] == ["RegionOne", "RegionTwo"]
    assert body["event_types"] == []

    await SqlLedger(own_store.engine).record_event_types({"identity.project.created": 2})
    changed = await client.put("/v1/defaults", json=DEFAULTS, headers={"If-Match": '"0"'})
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] == '"1"'
    view = changed.json()
    assert {k: view[k] for k in DEFAULTS} == DEFAULTS
    assert view["updated_by"]["user_name"] == "noauth"
    assert [e["event_type"] for e in view["event_types"]] == ["identity.project.created"]
    assert emitted[-1]["action"] == "update/defaults"
    assert emitted[-1]["target"]["typeURI"] == "service/audit/trail/defaults"

    stale = await client.put("/v1/defaults", json=DEFAULTS, headers={"If-Match": '"0"'})
    assert stale.status_code == 412
    round_trip = await client.put("/v1/defaults", json=view)  # read-only members ignored
    assert round_trip.status_code == 200

    # the new defaults and bounds apply to trails
    fresh = (await client.get("/v1/projects/p-new/trail")).json()
    assert fresh["retention_days"] == 30
    assert fresh["archive"]["container"] == "operator-audit"
    assert fresh["archive"]["format"] == "ndjson"
    assert fresh["archive"]["interval"] == "10m"
    too_long = await client.patch("/v1/projects/p-new/trail", json={"retention_days": 401})
    assert "maximum of 400" in refusals(too_long)[0][1]
    too_often = await client.patch("/v1/projects/p-new/trail", json={"archive": {"interval": "1m"}})
    assert "minimum of 5m" in refusals(too_often)[0][1]


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"default_retention_days": 500}, "default_retention_days"),
        ({"max_retention_days": 0}, "max_retention_days"),
        ({"max_retention_days": 40000}, "max_retention_days"),
        ({"default_interval": "1m"}, "default_interval"),
        ({"min_interval": "2d"}, "min_interval"),
        ({"min_interval": "x"}, "min_interval"),
        ({"default_container": "a/b"}, "default_container"),
        ({"default_format": "xml"}, "default_format"),
        ({"surprise": True}, "surprise"),
    ],
)
async def test_defaults_validation(
    client: httpx.AsyncClient, change: dict[str, object], loc: str
) -> None:
    response = await client.put("/v1/defaults", json={**DEFAULTS, **change})
    assert ("body", loc) in {where for where, _ in refusals(response)}


async def test_defaults_need_every_member(client: httpx.AsyncClient) -> None:
    partial = {k: v for k, v in DEFAULTS.items() if k != "min_interval"}
    response = await client.put("/v1/defaults", json=partial)
    assert response.status_code == 422


async def test_event_types(client: httpx.AsyncClient, ledger: SqlLedger) -> None:
    name = f"test.{uuid.uuid4().hex}"
    await ledger.record_event_types({name: 4})
    entries = (await client.get("/v1/event-types")).json()["event_types"]
    [entry] = [e for e in entries if e["event_type"] == name]
    assert entry["count"] == 4


async def test_health_and_readiness(settings: Settings, store: TrailStore) -> None:
    async def broker_ok() -> None:
        return None

    async def sink_down() -> None:
        raise ConnectionError("search cluster refused the connection")

    async def slow_false() -> bool:
        return False

    healthy = create_app(settings, store, None, readiness={"broker": broker_ok})
    async with client_for(healthy) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}

    failing = create_app(
        settings, store, None, readiness={"broker": broker_ok, "search": sink_down, "x": slow_false}
    )
    async with client_for(failing) as http:
        response = await http.get("/readyz")
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert checks["search"] == "failed: search cluster refused the connection"
        assert checks["x"] == "failed"
        assert checks["broker"] == "ok"


async def test_database_down(settings: Settings) -> None:
    from stacktrail.db.engine import create_engine

    down = TrailStore(create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none"), settings)
    async with client_for(create_app(settings, down, None)) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"].startswith("failed")
        response = await http.get("/v1/projects/p1/trail")
        assert problem_detail(response, 503) == "the config store is unavailable"
    await down.close()


async def test_keystone_mode_needs_a_validator(settings: Settings, store: TrailStore) -> None:
    with pytest.raises(ValueError, match="needs a Keystone client"):
        create_app(settings.model_copy(update={"auth_mode": "keystone"}), store, None)


async def test_noauth_is_loud(
    settings: Settings, store: TrailStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="stacktrail.api.app"):
        app = create_app(settings, store, None)
    assert "AUTHENTICATION IS DISABLED" in caplog.text
    async with client_for(app) as http:
        for path in ("/healthz", "/v1/defaults", "/v1/projects/a.b/trail", "/nowhere"):
            response = await http.get(path)
            assert response.headers["X-Stacktrail-Auth"] == "DISABLED", path
