"""The real producers: keystonemiddleware's audit middleware (with pycadf's audit map)
around a small WSGI app, notifying through oslo.messaging's `messagingv2` driver into the
test's RabbitMQ vhost; the pipeline indexes it; Hermes' queries (both generations) read it.

Every API call makes two notifications with one CADF id, `audit.http.request` (outcome
`pending`) and `audit.http.response` (the final outcome): search must hold the final one.
osmem-server has no data streams: the shared layout uses a plain index of the shared name
(`search_data_stream=false`) through the same write and query path.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import webob
import webob.dec
from keystonemiddleware import audit
from oslo_config import cfg

from stacktrail.config import SearchLayoutKind, Settings
from stacktrail.search.documents import SearchLayout
from tests.support.hermes_queries import CURRENT, LEGACY, Generation, buckets, hits
from tests.support.pipeline import running, until_consuming
from tests.support.polling import eventually

AUDIT_MAP = Path(sys.prefix) / "etc" / "pycadf" / "nova_api_audit_map.conf"
ENDPOINT = "http://compute.test:8774"
CATALOG = [
    {
        "type": "compute",
        "name": "nova",
        "endpoints": [
            {"id": "nova-1", "publicURL": f"{ENDPOINT}/v2.1", "adminURL": f"{ENDPOINT}/v2.1"}
        ],
    }
]


async def search(http: httpx.AsyncClient, query: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    index, body = query
    response = await http.post(
        f"/{index}/_search?ignore_unavailable=true&allow_no_indices=true", json=body
    )
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


@webob.dec.wsgify
def compute_api(request: webob.Request) -> webob.Response:
    """A tiny compute API: servers exist, `forbidden` is refused, the rest is unknown."""
    if "/forbidden" in request.path:
        return webob.Response(status=403, json_body={"forbidden": "no"})
    if "/servers" not in request.path:
        return webob.Response(status=404, json_body={"itemNotFound": "no"})
    status = 202 if request.method == "POST" else 200
    return webob.Response(status=status, json_body={"servers": []})


def audited_app(transport_url: str) -> Any:
    conf = cfg.ConfigOpts()
    conf([], project="stacktrail-producer-test")
    return audit.AuditMiddleware(
        compute_api,
        audit_map_file=str(AUDIT_MAP),
        service_name="nova",
        oslo_config_config=conf,
        use_oslo_messaging="true",
        driver="messagingv2",
        topics="notifications",
        transport_url=transport_url,
    )


def call(app: Any, project: str, method: str, path: str) -> int:
    request = webob.Request.blank(
        f"/v2.1/{project}{path}",
        base_url=ENDPOINT,
        method=method,
        headers={
            "X-User-Id": f"user-of-{project}",
            "X-User-Name": f"admin-{project[:6]}",
            "X-Project-Id": project,
            "X-Identity-Status": "Confirmed",
            "X-Service-Catalog": orjson.dumps(CATALOG).decode(),
        },
    )
    response = request.get_response(app)
    return int(response.status_int)


# per project: (method, path) -> expected status
CALLS = [
    ("GET", "/servers/detail", 200),
    ("POST", "/servers", 202),
    ("DELETE", "/servers/s-1", 200),
    ("GET", "/forbidden/servers", 403),
    ("GET", "/flavors", 404),
]
FINAL_OUTCOMES = Counter(
    {("success", "200"): 2, ("success", "202"): 1, ("failure", "403"): 1, ("failure", "404"): 1}
)


@pytest.mark.parametrize("generation", [LEGACY, CURRENT])
async def test_audit_middleware_calls_end_with_their_final_outcome_in_search(
    amqp_url: str, search_url: str, index_template: str, generation: str
) -> None:
    shared = generation == CURRENT
    queue = f"st-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        amqp_url=amqp_url,
        amqp_queue=queue,
        amqp_dead_letter_exchange=f"{queue}.dead",
        amqp_bindings=["openstack:notifications.#"],
        amqp_prefetch=200,
        search_url=search_url,
        search_index_template=index_template,
        search_layout=SearchLayoutKind.SHARED if shared else SearchLayoutKind.PER_PROJECT,
        search_shared_index=f"{index_template.split('-', 1)[0]}-hermes",
        search_data_stream=False,  # osmem has no data streams (see the module docstring)
        search_flush_interval="20ms",
        archive_enabled=False,
        events_default_exclude=[],  # every call counts here (the rule has its own tests)
        shutdown_grace="5s",
    )
    layout = SearchLayout.from_settings(settings)
    projects = [uuid.uuid4().hex, uuid.uuid4().hex]
    app = audited_app("rabbit" + amqp_url.removeprefix("amqp"))
    prefix = index_template.split("{project_id}")[0]
    reader = Generation(generation, prefix=prefix, shared_index=layout.shared_index)
    async with httpx.AsyncClient(base_url=search_url, timeout=60) as http:
        try:
            async with running(settings):
                await until_consuming(settings)
                for project in projects:
                    for method, path, expected in CALLS:
                        status = await asyncio.to_thread(call, app, project, method, path)
                        assert status == expected

                async def all_final() -> bool:
                    await http.post(f"/{layout.pattern}/_refresh")
                    for project in projects:
                        found = hits(await search(http, reader.list_events(project, size=100)))
                        if len(found) != len(CALLS) or any(
                            doc["outcome"] == "pending" for doc in found
                        ):
                            return False
                    return True

                await eventually(all_final, within=60, every=0.2)
            for project in projects:
                found = hits(await search(http, reader.list_events(project, size=100)))
                outcomes = Counter((d["outcome"], d["reason"]["reasonCode"]) for d in found)
                assert outcomes == FINAL_OUTCOMES
                assert {d["initiator"]["project_id"] for d in found} == {project}
                failed = reader.list_events(project, filters={"outcome": "failure"})
                assert len(hits(await search(http, failed))) == 2
                aggregation = await search(http, reader.attributes(project, "outcome"))
                assert sorted(buckets(aggregation)) == ["failure", "success"]
        finally:
            await http.delete(f"/{layout.pattern}")
            await http.delete(f"/_index_template/{layout.template_name}")
