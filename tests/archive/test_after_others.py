"""The archive takes a message's record only once the message's other records resolved,
so a record is durable in the spool only shortly before its message is acked."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from stacktrail.archive.after_others import AfterOtherSinks
from stacktrail.archive.sink import ArchiveSink
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.domain.delivery import Outcome, Record, Ticket
from stacktrail.domain.ledger import MemoryLedger
from tests.support.polling import eventually
from tests.support.sinks import BEFORE_MIDNIGHT, make_event, make_trail, sink_settings

A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


def _message(done: list[Ticket], records: int) -> tuple[Ticket, Record]:
    """A message with `records` records: one for the archive, the rest stand for search."""
    ticket = Ticket("m", done.append)
    ticket.add(records)
    record = Record(
        A, make_event(A, BEFORE_MIDNIGHT), make_trail(A, "c"), datetime.now(UTC), ticket
    )
    return ticket, record


async def test_archive_record_is_spooled_after_the_other_sinks(tmp_path: Path) -> None:
    settings = sink_settings(tmp_path)
    inner = ArchiveSink(settings, LocalDirStore(settings.archive_dir), MemoryLedger())
    sink = AfterOtherSinks(inner)
    await sink.start()
    try:
        done: list[Ticket] = []
        ticket, record = _message(done, 2)
        await sink.put(record)
        ticket.seal()
        await asyncio.sleep(0.2)  # far beyond the spool's group commit
        assert inner.pending_bytes(A) == 0  # held: search has not answered
        assert done == []
        ticket.resolve(Outcome.DELIVERED)  # search holds it
        await eventually(lambda: done == [ticket])
        assert ticket.outcome is Outcome.DELIVERED
        assert inner.pending_bytes(A) > 0  # durable in the spool
    finally:
        await sink.stop(1.0)


async def test_stop_waits_for_the_others_then_leaves_the_rest_for_redelivery(
    tmp_path: Path,
) -> None:
    settings = sink_settings(tmp_path)
    inner = ArchiveSink(settings, LocalDirStore(settings.archive_dir), MemoryLedger())
    sink = AfterOtherSinks(inner)
    await sink.start()
    done: list[Ticket] = []
    settled, record = _message(done, 2)
    await sink.put(record)
    settled.seal()
    waiting, other = _message(done, 2)
    await sink.put(other)
    waiting.seal()
    stop = asyncio.create_task(sink.stop(0.5))
    await asyncio.sleep(0.05)
    settled.resolve(Outcome.DELIVERED)  # search answers during the stop: archived
    await stop
    assert settled.outcome is Outcome.DELIVERED
    assert settled in done
    waiting.resolve(Outcome.RETRY)  # search never answered: nothing archived, redelivered
    assert waiting in done
    assert waiting.outcome is Outcome.RETRY
    late, record = _message(done, 1)
    await sink.put(record)  # after the stop: not taken, left for redelivery
    late.seal()
    assert late in done
    assert late.outcome is Outcome.RETRY
