from __future__ import annotations

import asyncio
import time

from hypothesis import given
from hypothesis import strategies as st

from stacktrail.domain.backoff import Backoff, Recovery, exponential


@given(st.integers(min_value=1, max_value=200), st.floats(0.01, 10), st.floats(0.01, 600))
def test_the_schedule_doubles_up_to_its_cap(failures: int, first: float, cap: float) -> None:
    delay = exponential(failures, first=first, cap=cap)
    assert delay <= cap
    assert delay == min(first * 2 ** min(failures - 1, 60), cap)


def test_reset_starts_the_schedule_again() -> None:
    backoff = Backoff(first=1, cap=8)
    delays = [backoff.next_delay() for _ in range(5)]
    assert 6.4 <= delays[-1] <= 9.6
    backoff.reset()
    assert 0.8 <= backoff.next_delay() <= 1.2


async def test_a_success_elsewhere_ends_every_wait() -> None:
    recovery = Recovery()
    started = time.monotonic()
    waits = [asyncio.create_task(recovery.wait(30)) for _ in range(3)]
    await asyncio.sleep(0.05)
    recovery.succeeded()
    assert await asyncio.gather(*waits) == [True, True, True]
    assert time.monotonic() - started < 1


async def test_a_probe_ends_the_wait_once_it_answers() -> None:
    answers = iter([False, False, True])

    async def probe() -> None:
        if not next(answers):
            raise ConnectionError("still down")

    recovery = Recovery(probe, probe_interval=0.05)
    assert await recovery.wait(30) is True
    assert recovery.probes == 3
    assert await Recovery(probe, probe_interval=0.05).wait(0.01) is False  # ran out


async def test_no_probe_while_throttled() -> None:
    async def probe() -> None:
        raise AssertionError("must not probe")

    recovery = Recovery(probe, probe_interval=0.01)
    assert await recovery.wait(0.1, probe=False) is False
