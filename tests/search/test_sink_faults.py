"""The search sink against the real search server through a relay that cuts it."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import REGISTRY

from stacktrail.config import Settings
from stacktrail.domain.delivery import Outcome
from stacktrail.search.client import SearchClient
from stacktrail.search.documents import index_name
from stacktrail.search.sink import SearchSink
from tests.support import search
from tests.support.sinks import BEFORE_MIDNIGHT, Acks, make_event, make_trail
from tests.support.tcpproxy import TcpProxy


async def _relayed_sink(
    search_url: str, index_template: str, **settings: Any
) -> tuple[TcpProxy, SearchSink]:
    """A started sink of small batches that reaches search through a relay."""
    target = urlsplit(search_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 80)
    await proxy.start()
    values = Settings(
        search_url=f"http://{proxy.address}",
        search_index_template=index_template,
        search_flush_interval="50ms",
        search_bulk_docs=25,
        **settings,
    )
    sink = SearchSink(SearchClient.from_settings(values), values)
    await sink.start()
    return proxy, sink


async def test_indexing_resumes_within_two_seconds_of_search_returning(
    search_url: str, index_template: str
) -> None:
    """A batch whose retry delay grew long retries as soon as a ping answers again."""
    proxy, sink = await _relayed_sink(search_url, index_template)
    project = uuid.uuid4().hex
    trail = make_trail(project, "unused")
    events = [make_event(project, BEFORE_MIDNIGHT, i) for i in range(100)]
    acks = Acks()
    try:
        await proxy.stop()
        for event in events:
            await sink.put(acks.record(trail, event))
        await asyncio.sleep(8)  # retries at 0.5, 1, 2, 4 s: the next waits about 8 s
        assert not acks.outcomes
        await proxy.start()
        back = time.monotonic()
        await acks.wait(len(events))
        resumed = time.monotonic() - back
        assert set(acks.outcomes.values()) == {Outcome.DELIVERED}
        assert resumed <= 2.0, f"indexing resumed {resumed:.1f} s after search came back"
    finally:
        await sink.stop(5)
        await proxy.stop()
    index = index_name(index_template, project, BEFORE_MIDNIGHT)
    assert await search.wait_for_count(search_url, index, len(events)) == len(events)


async def test_requests_swallowed_by_a_silent_search_are_resent_once_it_answers(
    search_url: str, index_template: str
) -> None:
    """A black hole (connections open, nothing comes back) swallows the bulk requests in
    flight; once search answers pings again they are resent, not left to `search_timeout`."""
    proxy, sink = await _relayed_sink(search_url, index_template, search_timeout="120s")
    project = uuid.uuid4().hex
    trail = make_trail(project, "unused")
    events = [make_event(project, BEFORE_MIDNIGHT, i) for i in range(100)]
    acks = Acks()
    stalled = REGISTRY.get_sample_value("stacktrail_search_bulk_stalled_total") or 0.0
    try:
        proxy.black_hole()
        for event in events:
            await sink.put(acks.record(trail, event))
        await asyncio.sleep(4)
        assert not acks.outcomes
        proxy.clear()
        back = time.monotonic()
        await acks.wait(len(events))
        resumed = time.monotonic() - back
        assert set(acks.outcomes.values()) == {Outcome.DELIVERED}
        assert resumed <= 2.0, f"indexing resumed {resumed:.1f} s after search answered again"
        assert (REGISTRY.get_sample_value("stacktrail_search_bulk_stalled_total") or 0) > stalled
    finally:
        await sink.stop(5)
        await proxy.stop()
    index = index_name(index_template, project, BEFORE_MIDNIGHT)
    assert await search.wait_for_count(search_url, index, len(events)) == len(events)


async def test_a_start_while_search_is_down_does_not_block_the_process(
    search_url: str, index_template: str
) -> None:
    """Before: start retried the index template for ever, so a process restarted while
    search was down consumed nothing (the archive neither) and ignored SIGTERM."""
    target = urlsplit(search_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 80)  # not started
    settings = Settings(
        search_url=f"http://{proxy.address}",
        search_index_template=index_template,
        search_flush_interval="50ms",
    )
    sink = SearchSink(SearchClient.from_settings(settings), settings)
    started = time.monotonic()
    await asyncio.wait_for(sink.start(), 15)
    assert time.monotonic() - started < 8
    project = uuid.uuid4().hex
    trail = make_trail(project, "unused")
    events = [make_event(project, BEFORE_MIDNIGHT, i) for i in range(10)]
    acks = Acks()
    try:
        for event in events:
            await sink.put(acks.record(trail, event))
        await asyncio.sleep(1)
        assert not acks.outcomes  # they wait for the template, nothing is refused
        await proxy.start()
        await acks.wait(len(events))
        assert set(acks.outcomes.values()) == {Outcome.DELIVERED}
    finally:
        await sink.stop(5)
        await proxy.stop()
    index = index_name(index_template, project, BEFORE_MIDNIGHT)
    assert await search.wait_for_count(search_url, index, len(events)) == len(events)
