"""The one retry schedule of every dependency, and the probe that ends a delay early.

`exponential` is the schedule (0.5 s, 1 s, 2 s ... up to a cap, jittered so retries of
many batches spread out); `Backoff` walks it for one retrying job. `Recovery` is shared
by every job waiting for the same dependency: a delay ends as soon as the dependency
answers again, either because another job's request went through or because a cheap
probe (one at a time, every `probe_interval`) did, so work resumes within about one
probe interval after an outage instead of after the longest backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable

JITTER = 0.2


def exponential(failures: int, *, first: float, cap: float) -> float:
    """The delay after `failures` consecutive failures (1: the first), before jitter."""
    if failures <= 0:
        return 0.0
    return min(first * 2.0 ** min(failures - 1, 60), cap)


def jittered(delay: float) -> float:
    return delay * random.uniform(1 - JITTER, 1 + JITTER)


class Backoff:
    """0.5 s, 1 s, 2 s ... up to `cap`, with jitter so retries of many batches spread out."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self._first = first
        self._cap = cap
        self._failures = 0

    @property
    def failures(self) -> int:
        return self._failures

    def next_delay(self) -> float:
        self._failures += 1
        return jittered(exponential(self._failures, first=self._first, cap=self._cap))

    def reset(self) -> None:
        self._failures = 0


Probe = Callable[[], Awaitable[object]]


class Recovery:
    """Ends the retry delays of one dependency as soon as it answers again.

    `succeeded()` is called on every request that went through; `wait(delay)` sleeps at
    most `delay` and returns early (True) after such a success or a successful probe.
    The probe raises (or times out) while the dependency is still down.
    """

    def __init__(self, probe: Probe | None = None, probe_interval: float = 0.5) -> None:
        self._probe = probe
        self._interval = probe_interval
        self._answered = asyncio.Event()
        self._probing = False
        self.probes = 0  # probes sent (for tests and logs)

    def succeeded(self) -> None:
        """The dependency answered: wake every waiting job."""
        answered, self._answered = self._answered, asyncio.Event()
        answered.set()

    async def wait(self, delay: float, *, probe: bool = True) -> bool:
        """Sleep up to `delay` s; True when the dependency answered before it ran out.

        `probe=False` for a dependency that answers but asks to slow down (throttling):
        its delay then ends early only on another job's success."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        answered = self._answered
        while (left := deadline - loop.time()) > 0:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the task's own
            # cancellation when the inner await finishes at the same moment (a stop hangs).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(self._interval, left)):
                    await answered.wait()
            if answered.is_set():
                return True
            may_probe = probe and self._probe is not None and not self._probing
            if may_probe and left > self._interval and await self._probe_once():
                return True
        return answered.is_set()

    async def _probe_once(self) -> bool:
        assert self._probe is not None
        self._probing = True
        self.probes += 1
        try:
            async with asyncio.timeout(self._interval):
                await self._probe()
        except Exception:  # still down (refused, timed out, error answer)
            return False
        finally:
            self._probing = False
        self.succeeded()
        return True
