"""A trail's field rules on real producers: keystonemiddleware's audit middleware around a
compute API and stacktrail's own change events, notifying through oslo.messaging into the
test's RabbitMQ vhost; the pipeline indexes what each trail keeps into search.

- "no reads of compute" drops the GETs on compute and keeps the POST and the DELETE;
- a trail that excludes everything still keeps its own `stacktrail.trail.updated`;
- a trail without rules keeps every call (the reads do arrive).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from stacktrail.config import Settings
from stacktrail.domain.audit import (
    ACTION_UPDATE_TRAIL,
    NOTIFICATION_EVENT_TYPES,
    Actor,
    config_change_event,
)
from stacktrail.domain.defaults import OperatorDefaults
from stacktrail.domain.document import resolve
from stacktrail.domain.event_rules import READ_ONLY_ACTIONS
from stacktrail.domain.trail import Trail, default_trail
from stacktrail.search.documents import SearchLayout
from tests.ingest.test_producers import audited_app, call, search
from tests.support.hermes_queries import LEGACY, Generation, hits
from tests.support.oslo_producer import notify
from tests.support.pipeline import running, until_consuming
from tests.support.polling import eventually

NO_READS_OF_COMPUTE = {
    "rules": [{"effect": "exclude", "service": ["compute"], "action": list(READ_ONLY_ACTIONS)}]
}
NOTHING = {"exclude": ["*"]}
CALLS = [("GET", "/servers/detail", 200), ("GET", "/servers/s-1", 200)]
WRITES = [("POST", "/servers", 202), ("DELETE", "/servers/s-1", 200)]


@dataclass
class Trails:
    """The trails of the test's projects, resolved from their documents as the store's are."""

    settings: Settings
    documents: dict[str, dict[str, Any]]

    def get(self, project_id: str) -> Trail:
        document = self.documents.get(project_id)
        if document is None:
            return default_trail(project_id, self.settings)
        defaults = OperatorDefaults.from_settings(self.settings)
        return resolve(document, defaults, self.settings).to_trail(project_id, version=1)


async def test_rules_select_what_real_producers_send(
    amqp_url: str, search_url: str, index_template: str
) -> None:
    queue = f"st-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        amqp_url=amqp_url,
        amqp_queue=queue,
        amqp_dead_letter_exchange=f"{queue}.dead",
        amqp_bindings=["openstack:notifications.#", "stacktrail:notifications.#"],
        amqp_prefetch=200,
        search_url=search_url,
        search_index_template=index_template,
        search_flush_interval="20ms",
        archive_enabled=False,
        events_default_exclude=[],  # the trails' own rules decide here
        shutdown_grace="5s",
    )
    no_reads, nothing, everything = (uuid.uuid4().hex for _ in range(3))
    directory = Trails(
        settings, {no_reads: {"events": NO_READS_OF_COMPUTE}, nothing: {"events": NOTHING}}
    )
    app = audited_app("rabbit" + amqp_url.removeprefix("amqp"))
    layout = SearchLayout.from_settings(settings)
    reader = Generation(LEGACY, prefix=index_template.split("{project_id}")[0])
    change = config_change_event(
        action=ACTION_UPDATE_TRAIL,
        actor=Actor(user_id="u-1", user_name="admin", project_id=nothing),
        project_id=nothing,
        old=None,
        new={"events": NOTHING},
        version=1,
        at=datetime.now(UTC),
    )

    async def kept(project: str) -> list[dict[str, Any]]:
        return hits(await search(http, reader.list_events(project, size=100)))

    async with httpx.AsyncClient(base_url=search_url, timeout=60) as http:
        try:
            async with running(settings, directory=directory):
                await until_consuming(settings)
                for project in (no_reads, nothing, everything):
                    for method, path, expected in [*CALLS, *WRITES]:
                        assert await asyncio.to_thread(call, app, project, method, path) == (
                            expected
                        )
                await notify(
                    amqp_url,
                    "stacktrail",
                    [(NOTIFICATION_EVENT_TYPES[ACTION_UPDATE_TRAIL], change)],
                    publisher="stacktrail",
                )

                async def arrived() -> bool:
                    await http.post(f"/{layout.pattern}/_refresh")
                    final = [
                        doc
                        for project in (no_reads, nothing, everything)
                        for doc in await kept(project)
                        if doc["outcome"] != "pending"
                    ]
                    return len(final) == len(WRITES) + 1 + len(CALLS) + len(WRITES)

                await eventually(arrived, within=60, every=0.2)
                await asyncio.sleep(1)  # anything still on its way would land now
            await http.post(f"/{layout.pattern}/_refresh")
            actions = Counter(doc["action"] for doc in await kept(no_reads))
            assert actions == Counter({"create": 1, "delete": 1})  # no read of compute
            assert [doc["action"] for doc in await kept(nothing)] == [ACTION_UPDATE_TRAIL]
            assert Counter(doc["action"] for doc in await kept(everything)) == Counter(
                {"read/list": 1, "read": 1, "create": 1, "delete": 1}
            )
        finally:
            await http.delete(f"/{layout.pattern}")
            await http.delete(f"/_index_template/{layout.template_name}")
