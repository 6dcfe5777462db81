"""The source against the real broker: one message that never finishes stalls nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from stacktrail.config import Settings
from stacktrail.domain.delivery import Outcome
from stacktrail.ingest.consumer import AmqpSource, Delivery
from tests.support.broker import own_queue_settings, publish, queue_depth
from tests.support.cadf_factory import make_notification
from tests.support.polling import eventually


async def test_finished_messages_are_acked_while_an_older_one_waits(amqp_url: str) -> None:
    settings = own_queue_settings(amqp_url, amqp_prefetch=20, amqp_ack_interval="20ms")
    source = AmqpSource(settings)
    held: list[Delivery] = []
    seen = 0

    def deliver(delivery: Delivery) -> None:
        nonlocal seen
        seen += 1
        if not held:
            held.append(delivery)  # in retry for the whole test: never settled
        else:
            source.settle(delivery, Outcome.DELIVERED)

    source.on_delivery = deliver
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(stop))
    try:
        await eventually(lambda: source.connected, 10)
        await publish(amqp_url, [make_notification(event_id=f"hol-{i}") for i in range(300)])
        # prefix-only acks would stop at the prefetch window (20)
        await eventually(lambda: seen >= 300, 10)
        assert seen == 300
        assert await queue_depth(amqp_url, settings.amqp_queue) == 0
        # those finished behind the stuck one are acked within the gap hold (1 s)
        for _ in range(30):
            if source.unacked == 1:
                break
            await asyncio.sleep(0.1)
        assert source.unacked == 1
        assert source.oldest_unacked_age() > 0
        stop.set()
        await task
        await source.close()
        assert source.left_unacked == 1  # the shutdown log counts what goes back
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


@contextlib.asynccontextmanager
async def _fifty_arrived(
    amqp_url: str, prefix: str, **settings: Any
) -> AsyncIterator[tuple[AmqpSource, list[Delivery]]]:
    """A connected source on a queue of its own, with 50 published messages arrived and
    none settled yet."""
    source = AmqpSource(own_queue_settings(amqp_url, **settings))
    arrived: list[Delivery] = []
    source.on_delivery = arrived.append
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(stop))
    try:
        await eventually(lambda: source.connected, 10)
        await publish(amqp_url, [make_notification(event_id=f"{prefix}-{i}") for i in range(50)])
        await eventually(lambda: len(arrived) == 50, 10)
        yield source, arrived
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await source.close()


async def _acked_after(amqp_url: str, ack_interval: str, wait: float) -> tuple[int, int]:
    """(acked at once, acked after `wait` s) of 50 messages settled as they arrive."""
    async with _fifty_arrived(amqp_url, "ack", amqp_ack_interval=ack_interval) as (
        source,
        arrived,
    ):
        for delivery in arrived:
            source.settle(delivery, Outcome.DELIVERED)
        await asyncio.sleep(0)  # one pass of the event loop
        at_once = sum(source._tracker.acked(d.tag) for d in arrived)
        await asyncio.sleep(wait)
        later = sum(source._tracker.acked(d.tag) for d in arrived)
        return at_once, later


async def test_finished_messages_are_acked_in_the_next_pass_by_default(amqp_url: str) -> None:
    """The broker sends more only once messages are acked: by default no ack waits."""
    assert Settings().amqp_ack_interval.total_seconds() == 0
    assert await _acked_after(amqp_url, "0", 0) == (50, 50)


async def test_an_ack_interval_lets_finished_messages_share_a_later_frame(amqp_url: str) -> None:
    assert await _acked_after(amqp_url, "300ms", 0.6) == (0, 50)


async def _behind_a_late_one(
    amqp_url: str, gap_hold: str, late_after: float | None
) -> tuple[int, int, set[int]]:
    """50 messages; all but the first settled on arrival, the first after `late_after` s
    (None: never). Returns (acked at once, acked after 1.5 s, tags acked singly)."""
    async with _fifty_arrived(amqp_url, "gap", amqp_ack_gap_hold=gap_hold) as (source, arrived):
        for delivery in arrived[1:]:
            source.settle(delivery, Outcome.DELIVERED)
        await asyncio.sleep(0.05)
        at_once = sum(source._tracker.acked(d.tag) for d in arrived)
        if late_after is not None:
            await asyncio.sleep(late_after)
            source.settle(arrived[0], Outcome.DELIVERED)
        await asyncio.sleep(1.5)
        later = sum(source._tracker.acked(d.tag) for d in arrived)
        return at_once, later, set(source._tracker._singles)


async def test_messages_behind_a_briefly_late_one_share_its_frame(amqp_url: str) -> None:
    """A message late by milliseconds (bulks answered out of order, a dead letter
    awaiting its confirm) costs no frame per message behind it."""
    assert Settings().amqp_ack_gap_hold.total_seconds() == 1
    at_once, later, singles = await _behind_a_late_one(amqp_url, "1s", late_after=0.1)
    assert at_once == 0
    assert later == 50
    assert singles == set()  # one multiple frame acked all 50


async def test_messages_behind_a_stuck_one_are_acked_singly_after_the_hold(
    amqp_url: str,
) -> None:
    at_once, later, singles = await _behind_a_late_one(amqp_url, "1s", late_after=None)
    assert (at_once, later, len(singles)) == (0, 49, 49)


async def test_a_zero_hold_acks_messages_behind_a_gap_at_once(amqp_url: str) -> None:
    at_once, later, singles = await _behind_a_late_one(amqp_url, "0", late_after=None)
    assert (at_once, later, len(singles)) == (49, 49, 49)
