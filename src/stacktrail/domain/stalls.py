"""Abandons requests that hung through a silence of their server once it answers again.

A peer that vanished without a reset (a black-holed route, a frozen host) swallows the
requests in flight: only their timeout ends them, long after the server is back. While a
request has waited longer than `after`, one cheap probe at a time (every `interval`, each
bounded by `interval`) asks the server directly. A request is *stalled* when it was sent
before the server's last unanswered probe gave up and a later probe was answered: the
server is back, and a request it swallowed is not coming back. `StallWatch.run` then
cancels it and raises `Stalled`, which callers retry like any transient error, within
about two intervals of the return.

A server that is only slow answers its probes, so its slow requests are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from stacktrail.domain.errors import TransientError

T = TypeVar("T")

Probe = Callable[[], Awaitable[object]]


class Stalled(TransientError):
    """The request hung through a silence of its server, which answers again."""


class StallWatch:
    def __init__(self, probe: Probe, *, after: float = 1.0, interval: float = 0.5) -> None:
        self._probe = probe
        self._after = after
        self._interval = interval
        self._probing: asyncio.Task[None] | None = None
        self._last_probe = float("-inf")  # when the latest probe was sent
        self._silent_until: float | None = None  # when the latest unanswered probe gave up
        self._revived_after: float | None = None  # the end of the silence the server ended
        self.abandoned = 0  # requests cancelled as stalled (for tests and metrics)

    async def run(self, request: Awaitable[T]) -> T:
        """Await `request`; raise `Stalled` (having cancelled it) when it is stalled."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.ensure_future(request)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self._interval)
                if done:
                    return task.result()
                if loop.time() - started >= self._after:
                    self._probe_soon(loop.time())
                    if self._revived_after is not None and self._revived_after >= started:
                        self.abandoned += 1
                        raise Stalled("the request hung while its server was silent")
        finally:
            if not task.done():
                task.cancel()
                task.add_done_callback(_retrieve)

    def _probe_soon(self, now: float) -> None:
        if self._probing is None and now - self._last_probe >= self._interval:
            self._last_probe = now
            self._probing = asyncio.create_task(self._probe_once(), name="stall-probe")

    async def _probe_once(self) -> None:
        try:
            async with asyncio.timeout(self._interval):
                await self._probe()
        except Exception:  # unanswered (timed out, refused, an error answer)
            self._silent_until = asyncio.get_running_loop().time()
            return
        else:
            if self._silent_until is not None:
                self._revived_after, self._silent_until = self._silent_until, None
        finally:
            self._probing = None

    async def close(self) -> None:
        if self._probing is not None:
            self._probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probing


def _retrieve(task: asyncio.Task[Any]) -> None:
    """The abandoned request's own outcome (a late timeout) is of no further interest."""
    if not task.cancelled():
        task.exception()
