"""A counted record always resolves: a sink that raises, an event a sink cannot encode and
a search server answering nonsense dead-letter the message instead of wedging it; and
/readyz's ack check fails while one message waits for its ack (real RabbitMQ)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from stacktrail.app import _readiness
from stacktrail.config import Settings
from stacktrail.domain.delivery import Outcome, Record, Ticket
from stacktrail.domain.directory import DefaultTrails
from stacktrail.domain.event import AuditEvent
from stacktrail.domain.trail import EventFilter, default_trail
from stacktrail.ingest.consumer import AmqpSource, Delivery
from stacktrail.ingest.decode import decode_message
from stacktrail.ingest.dispatcher import Pipeline
from stacktrail.ingest.route import Router
from stacktrail.search.client import SearchClient
from stacktrail.search.sink import SearchSink
from tests.support.broker import own_queue_settings, publish
from tests.support.cadf_factory import make_notification
from tests.support.polling import eventually
from tests.support.sinks import Keeps

PROJECT = "aaaa0000aaaa0000aaaa0000aaaa0000"


@dataclass
class Settled:
    """Stands in for the source's settle: what each delivery's fate was."""

    outcomes: dict[int, tuple[Outcome, str]] = field(default_factory=dict)
    on_delivery: Any = None

    def settle(self, delivery: Delivery, outcome: Outcome, reason: str = "") -> None:
        self.outcomes[delivery.tag] = (outcome, reason)


class Breaks:
    """A sink with a bug: raises from put after the dispatcher counted the record."""

    name = "breaks"

    def wants(self, record: Record) -> bool:
        return True

    async def put(self, record: Record) -> None:
        raise KeyError("a bug")


def delivery(tag: int, body: bytes) -> Delivery:
    return Delivery(body=body, tag=tag, generation=0, exchange="nova", routing_key="n.info")


async def test_a_sink_raising_after_the_record_was_counted_dead_letters_the_message() -> None:
    source = Settled()
    sinks = [Keeps(), Breaks()]
    pipeline = Pipeline(source, Router(DefaultTrails(Settings())), sinks)  # type: ignore[arg-type]
    await pipeline.dispatch(delivery(1, make_notification(initiator_project=PROJECT)))
    await pipeline.dispatch(delivery(2, b"not json"))
    # The dead letter says another sink kept the event (a replay must not duplicate it).
    assert source.outcomes[1] == (
        Outcome.REJECTED,
        "internal error: breaks sink: KeyError('a bug') [1 other sink copies were delivered]",
    )
    assert source.outcomes[2][0] is Outcome.REJECTED
    assert "other sink copies" not in source.outcomes[2][1]  # nothing was kept
    assert pipeline.in_flight == 0  # nothing waits for a record that never resolves


def _record(event: AuditEvent, outcomes: dict[str, tuple[Outcome, str]]) -> Record:
    def done(ticket: Ticket) -> None:
        outcomes[str(ticket.tag)] = (ticket.outcome, ticket.reason)

    ticket = Ticket(event.id, done)
    ticket.add()
    ticket.seal()
    trail = default_trail(PROJECT, Settings())
    return Record(PROJECT, event, trail, datetime.now(UTC), ticket)


def _too_deep_for_the_encoder() -> AuditEvent:
    """An event as no decode would accept it now (built past it): 300 lists deep."""
    event = decode_message(make_notification(event_id="deep", initiator_project=PROJECT))
    deep: Any = 0
    for _ in range(300):
        deep = [deep]
    event.body["extension"] = deep  # a member Hermes' struct does not know: kept as is
    return event


def _sink_settings(search_url: str, index_template: str) -> Settings:
    return Settings(
        search_url=search_url, search_index_template=index_template, search_flush_interval="50ms"
    )


async def test_search_sink_rejects_an_event_it_cannot_encode(
    search_url: str, index_template: str
) -> None:
    sink = SearchSink(SearchClient(search_url), _sink_settings(search_url, index_template))
    outcomes: dict[str, tuple[Outcome, str]] = {}
    await sink.put(_record(_too_deep_for_the_encoder(), outcomes))
    outcome, reason = outcomes["deep"]
    assert outcome is Outcome.REJECTED
    assert reason.startswith("search: cannot encode the event: ")


async def _nonsense_bulk_server() -> tuple[asyncio.Server, str]:
    """An HTTP server answering every request with a bulk result the client cannot read
    as expected (a status that is no number)."""
    answer = b'{"items":[{"create":{"status":"created"}}]}'

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def test_search_sink_rejects_records_of_an_unreadable_bulk_answer(
    index_template: str,
) -> None:
    server, url = await _nonsense_bulk_server()
    settings = _sink_settings(url, index_template)
    sink = SearchSink(SearchClient.from_settings(settings), settings)
    outcomes: dict[str, tuple[Outcome, str]] = {}
    event = decode_message(make_notification(event_id="odd", initiator_project=PROJECT))
    try:
        await sink.put(_record(event, outcomes))
        await sink.stop(5)
    finally:
        server.close()
        await server.wait_closed()
    outcome, reason = outcomes["odd"]
    assert outcome is Outcome.REJECTED
    assert reason.startswith("internal error: search sink: ValueError("), reason


# --------------------------------------------------------------------------- readiness


@pytest.fixture
def source_settings(amqp_url: str) -> Settings:
    return own_queue_settings(
        amqp_url,
        amqp_unacked_max_age="1s",
        amqp_ack_interval="50ms",
    )


async def _acks_check(services: Any) -> str:
    try:
        await _readiness(services)["acks"]()
    except RuntimeError as exc:
        return str(exc)
    return "ok"


async def test_readiness_fails_while_one_message_waits_for_its_ack(
    source_settings: Settings,
) -> None:
    source = AmqpSource(source_settings)
    services = SimpleNamespace(
        settings=source_settings,
        source=source,
        keystone=None,
        archive=None,
        workers=None,
        closing=[],
    )
    received: list[Delivery] = []
    source.on_delivery = received.append
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(stop))
    try:
        await eventually(lambda: source.connected)
        assert await _acks_check(services) == "ok"
        await publish(source_settings.amqp_url, [make_notification() for _ in range(3)])
        await eventually(lambda: len(received) == 3)
        first, *rest = received
        for later in rest:  # the later ones finish; the first never does
            source.settle(later, Outcome.DELIVERED)
        await asyncio.sleep(1.3)
        assert source.oldest_unacked_age() > 1.0
        reason = await _acks_check(services)
        assert reason.startswith("acks stalled: the oldest unacked message has waited"), reason
        assert reason.endswith("(limit 1s)")
        source.settle(first, Outcome.DELIVERED)
        await eventually(lambda: source.oldest_unacked_age() == 0.0)
        assert await _acks_check(services) == "ok"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await source.close()
        for close in services.closing:  # the readiness checks' search clients
            await close()


class Collects:
    """A sink that keeps the records it is given."""

    name = "collects"

    def __init__(self) -> None:
        self.records: list[Record] = []

    def wants(self, record: Record) -> bool:
        return record.trail.search_enabled

    async def put(self, record: Record) -> None:
        self.records.append(record)
        record.resolve(Outcome.DELIVERED)


class Trails:
    """Operator defaults, but for the trails given."""

    def __init__(self, *trails: Any) -> None:
        self._trails = {t.project_id: t for t in trails}

    def get(self, project_id: str) -> Any:
        return self._trails.get(project_id) or default_trail(project_id, Settings())


OTHER = "bbbb0000bbbb0000bbbb0000bbbb0000"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param({}, (PROJECT, OTHER), id="both trails take it"),
        pytest.param({"enabled": False}, (PROJECT,), id="target trail disabled"),
        pytest.param({"search_enabled": False}, (PROJECT,), id="target search off"),
        pytest.param(
            {"events": EventFilter(exclude=("update*",))},
            (PROJECT,),
            id="target filters it out",
        ),
    ],
)
async def test_records_name_every_tenant_that_took_the_event(
    target: dict[str, Any], expected: tuple[str, ...]
) -> None:
    sink = Collects()
    other = replace(default_trail(OTHER, Settings()), **target)
    pipeline = Pipeline(Settled(), Router(Trails(other)), [sink])  # type: ignore[arg-type]
    body = make_notification(initiator_project=PROJECT, target_project=OTHER, action="update")
    await pipeline.dispatch(delivery(1, body))
    assert {r.tenants for r in sink.records} == {expected}
