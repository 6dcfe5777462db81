"""The search sink against the real search server."""

from __future__ import annotations

from datetime import UTC, datetime

from stacktrail.config import Settings
from stacktrail.domain.delivery import Outcome, Record, Ticket
from stacktrail.domain.event import AuditEvent
from stacktrail.domain.trail import default_trail
from stacktrail.search.client import SearchClient
from stacktrail.search.documents import BulkEncoder, index_name
from stacktrail.search.sink import SearchSink
from tests.support.polling import eventually
from tests.support.search import BodyLimit, count
from tests.support.sinks import make_event

PROJECT = "0123456789abcdef0123456789abcd13"


async def test_a_413_splits_the_bulk_until_each_part_fits(
    search_url: str, index_template: str
) -> None:
    """A bulk request the cluster refuses as too large (413) is halved until every part is
    taken: all documents land, none is dead-lettered, each part that was sent fits."""
    settings = Settings(
        search_url=search_url,
        search_index_template=index_template,
        search_bulk_docs=64,
        search_flush_interval="50ms",
    )
    when = datetime.now(UTC)
    events = [make_event(PROJECT, when, n) for n in range(64)]
    one_doc = max(len(BulkEncoder(index_template).lines(_record(e, {}))) for e in events)
    limit = BodyLimit(max_bytes=one_doc * 12)  # at most 12 documents per request
    sink = SearchSink(SearchClient(search_url, transport=limit), settings)
    await sink.start()
    outcomes: dict[str, Outcome] = {}
    try:
        for event in events:
            await sink.put(_record(event, outcomes))
        await eventually(lambda: len(outcomes) == len(events))
    finally:
        await sink.stop(5.0)
    assert set(outcomes.values()) == {Outcome.DELIVERED}
    assert limit.refused >= 3  # 64 -> 32 -> 16 were refused before parts of 8 fit
    assert all(size <= limit.max_bytes for size in limit.sent_sizes)
    index = index_name(index_template, PROJECT, when)
    assert await count(search_url, index) == len(events)


def _record(event: AuditEvent, outcomes: dict[str, Outcome]) -> Record:
    def done(ticket: Ticket) -> None:
        outcomes[str(ticket.tag)] = ticket.outcome

    ticket = Ticket(event.id, done)
    ticket.add()
    ticket.seal()
    return Record(PROJECT, event, default_trail(PROJECT, Settings()), datetime.now(UTC), ticket)
