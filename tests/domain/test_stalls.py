from __future__ import annotations

import asyncio
import time

import pytest

from stacktrail.domain.stalls import Stalled, StallWatch

AFTER = 0.2
INTERVAL = 0.1


class Server:
    """A peer that can fall silent: while silent, nothing it is asked comes back."""

    def __init__(self) -> None:
        self._speaking = asyncio.Event()
        self._speaking.set()
        self.probes = 0

    @property
    def silent(self) -> bool:
        return not self._speaking.is_set()

    @silent.setter
    def silent(self, value: bool) -> None:
        if value:
            self._speaking.clear()
        else:
            self._speaking.set()

    async def probe(self) -> None:
        self.probes += 1
        await self._speaking.wait()

    async def swallowed(self) -> str:
        await asyncio.sleep(3600)
        return "never"

    async def slow(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "answer"


async def test_a_request_swallowed_by_a_silence_is_abandoned_once_the_server_answers() -> None:
    server = Server()
    watch = StallWatch(server.probe, after=AFTER, interval=INTERVAL)
    server.silent = True
    request = asyncio.create_task(watch.run(server.swallowed()))
    await asyncio.sleep(1.0)
    assert not request.done()  # still silent: only a timeout could end it
    server.silent = False
    back = time.monotonic()
    with pytest.raises(Stalled):
        await request
    assert time.monotonic() - back <= 3 * INTERVAL
    assert watch.abandoned == 1
    await watch.close()


async def test_a_request_sent_just_before_the_silence_ends_is_abandoned_too() -> None:
    """Sent after the last probe was sent but before it gave up: swallowed all the same."""
    server = Server()
    watch = StallWatch(server.probe, after=AFTER, interval=INTERVAL)
    server.silent = True
    older = asyncio.create_task(watch.run(server.swallowed()))  # keeps the probes going
    await asyncio.sleep(0.5)
    late = asyncio.create_task(watch.run(server.swallowed()))
    await asyncio.sleep(0.02)
    server.silent = False
    for request in (older, late):
        with pytest.raises(Stalled):
            await request
    await watch.close()


async def test_a_slow_server_that_answers_its_probes_keeps_its_requests() -> None:
    server = Server()
    watch = StallWatch(server.probe, after=AFTER, interval=INTERVAL)
    assert await watch.run(server.slow(1.0)) == "answer"
    assert server.probes >= 3  # it was asked, and it answered every time
    assert watch.abandoned == 0
    await watch.close()


async def test_a_request_sent_after_the_silence_is_not_abandoned_for_it() -> None:
    server = Server()
    watch = StallWatch(server.probe, after=AFTER, interval=INTERVAL)
    server.silent = True
    request = asyncio.create_task(watch.run(server.swallowed()))
    await asyncio.sleep(0.5)
    server.silent = False
    with pytest.raises(Stalled):
        await request
    assert await watch.run(server.slow(0.8)) == "answer"
    assert watch.abandoned == 1
    await watch.close()


async def test_cancelling_the_caller_cancels_the_request() -> None:
    server = Server()
    watch = StallWatch(server.probe, after=AFTER, interval=INTERVAL)
    inner = asyncio.create_task(server.swallowed())
    outer = asyncio.create_task(watch.run(inner))
    await asyncio.sleep(0.05)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    await asyncio.sleep(0)
    assert inner.cancelled()
    await watch.close()
