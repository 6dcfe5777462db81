"""The ingest pipeline end to end: real RabbitMQ (own vhost) -> real search server.

The search server is osmem-server, an OpenSearch-compatible server of someone else's
making (no OpenSearch cluster can run on these machines); it answers bulk, mapping
errors and version conflicts like OpenSearch does.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from stacktrail.config import Settings
from stacktrail.domain.directory import DefaultTrails
from stacktrail.domain.trail import UNSCOPED
from stacktrail.ingest import dispatcher as pipeline_module
from stacktrail.ingest.consumer import REASON_HEADER
from stacktrail.ingest.dispatcher import Pipeline
from stacktrail.ingest.route import Router
from stacktrail.search.documents import index_name
from tests.support import search
from tests.support.broker import publish, queue_depth, take_all, wait_for_consumer
from tests.support.cadf_factory import (
    DEFAULT_EVENT_TIME,
    encode,
    load_sample,
    make_cadf,
    make_notification,
    wrap_v1,
    wrap_v2,
)
from tests.support.pipeline import running, until_consuming
from tests.support.polling import eventually
from tests.support.tcpproxy import TcpProxy

PROJECT_A = "aaaa0000aaaa0000aaaa0000aaaa0000"
PROJECT_B = "bbbb0000bbbb0000bbbb0000bbbb0000"


@pytest.fixture
def settings(amqp_url: str, search_url: str, index_template: str) -> Settings:
    queue = f"st-{uuid.uuid4().hex[:8]}"
    return Settings(
        amqp_url=amqp_url,
        amqp_queue=queue,
        amqp_dead_letter_exchange=f"{queue}.dead",
        amqp_bindings=["nova:notifications.#", "keystone:notifications.#"],
        # the bad inputs include a notification without CADF: dead-lettered as before
        amqp_dead_letter_noise=True,
        amqp_prefetch=200,
        amqp_reconnect_max="2s",
        search_url=search_url,
        search_index_template=index_template,
        search_flush_interval="50ms",
        archive_enabled=False,
        shutdown_grace="5s",
        # the samples include a read/list; the default event rule has its own tests
        events_default_exclude=[],
    )


def index_of(settings: Settings, project: str, when: Any = DEFAULT_EVENT_TIME) -> str:
    return index_name(settings.search_index_template, project, when)


async def test_samples_in_v1_and_v2_land_in_their_project_indices(settings: Settings) -> None:
    bodies = []
    expected: dict[str, dict[str, Any]] = {}
    for name in ("02", "03", "04", "06", "08", "09"):
        sample = load_sample(name)
        notification = sample if "payload" in sample else wrap_v1(sample, "audit.cadf")
        bodies += [encode(notification), encode(wrap_v2(notification))]
        expected[name] = notification["payload"]
    async with running(settings):
        await until_consuming(settings)
        await publish(settings.amqp_url, bodies, exchange="keystone")
        neutron = expected["02"]
        idx = index_name(
            settings.search_index_template,
            neutron["initiator"]["project_id"],
            __import__("datetime").datetime(2017, 12, 18),
        )
        assert await search.wait_for_count(settings.search_url, idx, 1) == 1
        doc = await search.get_doc(settings.search_url, idx, neutron["id"])
        assert doc is not None
        assert doc["action"] == "create"
        assert doc["@project_id"] == neutron["initiator"]["project_id"]

        # keystone's project creation has no project scope: the operator's unscoped trail.
        created = expected["03"]
        unscoped_2014 = index_name(
            settings.search_index_template, UNSCOPED, __import__("datetime").datetime(2014, 2, 14)
        )
        assert await search.wait_for_count(settings.search_url, unscoped_2014, 1) >= 1
        doc = await search.get_doc(settings.search_url, unscoped_2014, created["id"])
        assert doc is not None
        assert doc["action"] == "create/project"

        # "+0000" offsets become "+00:00".
        expired = expected["06"]
        idx06 = index_name(
            settings.search_index_template, UNSCOPED, __import__("datetime").datetime(2016, 11, 11)
        )
        assert await search.wait_for_count(settings.search_url, idx06, 1) == 1
        doc = await search.get_doc(settings.search_url, idx06, expired["id"])
        assert doc is not None
        assert doc["eventTime"] == "2016-11-11T18:31:11.156356+00:00"

        octavia = expected["09"]
        idx09 = index_name(
            settings.search_index_template,
            octavia["initiator"]["project_id"],
            __import__("datetime").datetime(2018, 10, 11),
        )
        assert await search.wait_for_count(settings.search_url, idx09, 1) == 1
        doc = await search.get_doc(settings.search_url, idx09, octavia["id"])
        assert doc is not None
        assert doc["eventTime"] == "2018-10-11T22:42:22.720112+00:00"
        assert doc["action"] == "read/list"
    # v1 and v2 copies of each sample share the CADF id: one document each, not two.
    assert await queue_depth(settings.amqp_url, settings.amqp_queue) == 0


async def test_cross_project_event_lands_in_both_projects(settings: Settings) -> None:
    body = make_notification(
        event_id="cross-1", initiator_project=PROJECT_A, target_project=PROJECT_B
    )
    async with running(settings):
        await until_consuming(settings)
        await publish(settings.amqp_url, [body])
        for project in (PROJECT_A, PROJECT_B):
            idx = index_of(settings, project)
            assert await search.wait_for_count(settings.search_url, idx, 1) == 1
            doc = await search.get_doc(settings.search_url, idx, "cross-1")
            assert doc is not None
            assert doc["@project_id"] == project


def _bad_inputs() -> dict[str, bytes]:
    missing_observer = make_cadf(event_id="bad-observer")
    del missing_observer["observer"]
    wrong_type = make_cadf(event_id="bad-type")
    wrong_type["initiator"] = "admin"
    bad_time = make_cadf(event_id="bad-time", event_time="yesterday")
    return {
        "invalid JSON": b'{"event_type": "x", "payload": {',
        "invalid UTF-8": b'{"payload": "\xff\xfe"}',
        "wrong envelope": orjson.dumps({"oslo.version": "2.0", "oslo.message": 42}),
        "top-level list": b"[1, 2, 3]",
        "not CADF": orjson.dumps(wrap_v1({"instance_id": "x"}, "compute.instance.create.end")),
        "missing field": encode(wrap_v1(missing_observer)),
        "wrong type": encode(wrap_v1(wrong_type)),
        "bad time": encode(wrap_v1(bad_time)),
        "10 MB": b'{"payload": "' + b"x" * (10 << 20) + b'"}',
        "empty": b"",
    }


async def test_bad_input_is_dead_lettered_with_its_reason(settings: Settings) -> None:
    bad = _bad_inputs()
    good_before = make_notification(event_id="good-before", initiator_project=PROJECT_A)
    good_after = make_notification(event_id="good-after", initiator_project=PROJECT_A)
    # Indexed first: initiator.credential an object ...
    host_object = make_notification(event_id="host-object", initiator_project=PROJECT_B)
    # ... and then a string. Unmapped fields fix no mapping, so search takes both and
    # neither is a poison message (before: a mapping error, dead-lettered). Not `host`:
    # Hermes' struct has it an object, so the search copy drops a string host.
    odd = make_cadf(event_id="host-string", initiator_project=PROJECT_B)
    odd["initiator"]["credential"] = "token"
    async with running(settings):
        await until_consuming(settings)
        await publish(settings.amqp_url, [good_before, host_object])
        assert await search.wait_for_count(settings.search_url, index_of(settings, PROJECT_B), 1)
        await publish(settings.amqp_url, [*bad.values(), encode(wrap_v1(odd)), good_after])
        assert await search.wait_for_count(settings.search_url, index_of(settings, PROJECT_A), 2)
        dead = await take_all(settings.amqp_url, settings.amqp_dead_letter_exchange, len(bad))
        assert await search.wait_for_count(settings.search_url, index_of(settings, PROJECT_B), 2)
    reasons = [m.headers[REASON_HEADER] for m in dead]
    assert len(dead) == len(bad), reasons
    bodies = [m.body for m in dead]
    for name, body in bad.items():
        assert body in bodies, f"{name} was not dead-lettered"
    text = "\n".join(reasons)
    for fragment in ("invalid JSON", "UTF-8", "too large", "observer"):
        assert fragment in text, f"no reason mentions {fragment!r}:\n{text}"
    assert all(r.startswith("undecodable: ") for r in reasons), reasons
    stored = await search.get_doc(settings.search_url, index_of(settings, PROJECT_B), "host-string")
    assert stored is not None
    assert stored["initiator"]["credential"] == "token"
    assert await queue_depth(settings.amqp_url, settings.amqp_queue) == 0


async def test_search_down_backs_up_the_queue_and_loses_nothing(
    settings: Settings, search_url: str
) -> None:
    target = urlsplit(search_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 80)
    await proxy.start()
    settings = settings.model_copy(
        update={"search_url": f"http://{proxy.address}", "amqp_prefetch": 50}
    )
    bodies = [
        make_notification(event_id=f"down-{i}", initiator_project=PROJECT_A) for i in range(600)
    ]
    index = index_of(settings, PROJECT_A)
    async with running(settings):
        await until_consuming(settings)
        await proxy.stop()
        await publish(settings.amqp_url, bodies)
        # Nothing is acked while search is down: the queue keeps all but the prefetch window.
        await asyncio.sleep(3)
        assert await queue_depth(settings.amqp_url, settings.amqp_queue) >= 600 - 50
        assert await search.count(search_url, index) == 0
        await proxy.start()
        assert await search.wait_for_count(search_url, index, 600, timeout=60) == 600
    assert await queue_depth(settings.amqp_url, settings.amqp_queue) == 0
    await proxy.stop()


async def test_broker_restart_mid_stream_resumes_and_loses_nothing(settings: Settings) -> None:
    first = [
        make_notification(event_id=f"r1-{i}", initiator_project=PROJECT_A) for i in range(1500)
    ]
    second = [
        make_notification(event_id=f"r2-{i}", initiator_project=PROJECT_A) for i in range(500)
    ]
    index = index_of(settings, PROJECT_A)
    async with running(settings):
        await until_consuming(settings)
        await publish(settings.amqp_url, first)
        await search.wait_for_count(settings.search_url, index, 200)
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, timeout=120)
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, timeout=120)
        # The transient exchange (oslo's default) went with the restart; the pipeline
        # declares it and its binding again when it reconnects.
        await wait_for_consumer(settings.amqp_url, settings.amqp_queue)
        await publish(settings.amqp_url, second)
        assert await search.wait_for_count(settings.search_url, index, 2000, timeout=90) == 2000
    found = await search.ids(settings.search_url, index)
    assert found == {f"r1-{i}" for i in range(1500)} | {f"r2-{i}" for i in range(500)}


def test_ingest_clock_is_read_per_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter([100.0, 100.0005, 100.0011])
    monkeypatch.setattr(pipeline_module, "monotonic", lambda: next(ticks))
    source = SimpleNamespace(on_delivery=None)
    pipeline = Pipeline(source, Router(DefaultTrails(Settings())), [])  # type: ignore[arg-type]
    before = datetime.now(UTC)
    first, hour = pipeline._clock()
    shared, _ = pipeline._clock()  # half a millisecond later: records share the time
    time.sleep(0.002)
    later, _ = pipeline._clock()  # 1.1 ms later: read again
    assert shared is first
    assert first.microsecond % 1000 == 0
    assert before - timedelta(milliseconds=1) <= first <= datetime.now(UTC)
    assert hour == first.replace(minute=0, second=0, microsecond=0)
    assert later > first


def _deep_event(event_id: str, depth: int) -> bytes:
    """A valid notification of PROJECT_A whose attachments nest `depth` lists deep."""
    cadf = make_cadf(event_id=event_id, initiator_project=PROJECT_A)
    cadf["attachments"] = "@DEEP@"
    deep = b"[" * depth + b"0" + b"]" * depth
    return encode(wrap_v1(cadf)).replace(b'"@DEEP@"', deep)


async def test_deep_and_far_future_events_are_dead_lettered_and_acking_goes_on(
    settings: Settings,
) -> None:
    far_future = make_cadf(
        event_id="far-future", initiator_project=PROJECT_A, event_time="8999-01-01T00:00:00Z"
    )
    bad = {
        "254-deep": _deep_event("deep-254", 254),
        # 1,022 levels in the message: the most the JSON parser takes
        "1024-deep": _deep_event("deep-1024", 1020),
        "beyond the parser": _deep_event("deep-1030", 1030),
        "8999": encode(wrap_v1(far_future)),
    }
    good = [make_notification(event_id=f"good-{i}", initiator_project=PROJECT_A) for i in range(30)]
    bodies = [*good[:10], bad["254-deep"], *good[10:20], bad["1024-deep"], bad["8999"]]
    bodies.append(bad["beyond the parser"])
    bodies += good[20:]
    index = index_of(settings, PROJECT_A)
    async with running(settings):
        await until_consuming(settings)
        await publish(settings.amqp_url, bodies)
        assert await search.wait_for_count(settings.search_url, index, 30) == 30
        dead = await take_all(settings.amqp_url, settings.amqp_dead_letter_exchange, len(bad))
        # Everything was acked: nothing waits in the queue, nothing is redelivered.
        await eventually(lambda: _drained(settings), every=0.2)
    # After shutdown, an unacked message would be back in the queue.
    assert await queue_depth(settings.amqp_url, settings.amqp_queue) == 0
    assert sorted(m.body for m in dead) == sorted(bad.values())
    reasons = {m.body: m.headers[REASON_HEADER] for m in dead}
    assert reasons[bad["254-deep"]] == "undecodable: event nested too deeply: more than 64 levels"
    assert reasons[bad["1024-deep"]] == reasons[bad["254-deep"]]
    assert reasons[bad["beyond the parser"]] == (
        "undecodable: JSON nested too deeply (more than 1024 levels)"
    )
    assert reasons[bad["8999"]] == (
        "undecodable: eventTime is more than 7d in the future: '8999-01-01T00:00:00Z'"
    )
    assert await search.ids(settings.search_url, index) == {f"good-{i}" for i in range(30)}


async def _drained(settings: Settings) -> bool:
    return await queue_depth(settings.amqp_url, settings.amqp_queue) == 0
