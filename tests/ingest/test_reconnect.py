"""The source reconnects to the real broker, through a relay that cuts it, as soon as the
broker answers again: not after the reconnect backoff grown during the outage."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

from stacktrail.ingest.consumer import AmqpSource
from tests.support.broker import own_queue_settings
from tests.support.polling import eventually
from tests.support.tcpproxy import TcpProxy


async def test_the_source_reconnects_within_two_seconds_of_the_broker_returning(
    amqp_url: str,
) -> None:
    broker = urlsplit(amqp_url)
    relay = TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672)
    await relay.start()
    through_relay = urlunsplit(broker._replace(netloc=f"guest:guest@{relay.address}"))
    source = AmqpSource(own_queue_settings(through_relay, amqp_reconnect_max="60s"))
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(stop))
    try:
        await eventually(lambda: source.connected, 10)
        await relay.stop()  # the connection is cut, and new ones are refused
        await eventually(lambda: not source.connected, 10)
        # attempts at about 0.5, 1.5, 3.5, 7.5 s: the next one waits about 8 s more
        await asyncio.sleep(9)
        await relay.start()
        back = await eventually(lambda: source.connected, 30, every=0.02)
        assert back <= 2.0, f"reconnected {back:.1f} s after the broker answered again"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await source.close()
        await relay.stop()


async def test_a_broker_that_refuses_the_login_keeps_the_whole_backoff(amqp_url: str) -> None:
    """It answers TCP probes all along: they must not turn the backoff into an attempt
    every probe interval (one refused login, and one log line, each time)."""
    broker = urlsplit(amqp_url)
    refused = urlunsplit(broker._replace(netloc=f"guest:wrong@{broker.netloc.split('@')[-1]}"))
    source = AmqpSource(own_queue_settings(refused))
    attempts = 0
    connect = source._connect

    async def counted() -> object:
        nonlocal attempts
        attempts += 1
        return await connect()

    source._connect = counted  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(stop))
    await asyncio.sleep(6)
    stop.set()
    await asyncio.wait_for(task, 10)
    await source.close()
    assert not source.connected
    # backoff 0.5, 1, 2, 4 s (±20 %): at most 4 attempts in 6 s; probes alone would make 12
    assert 2 <= attempts <= 4
