"""One way for tests to wait for something that happens in the background."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], within: float = 30.0, every: float = 0.05
) -> float:
    """Poll `check` (plain or async) until it holds; the seconds it took. Fails after
    `within` seconds with an AssertionError naming the wait."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return loop.time() - start
        if loop.time() - start > within:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(every)
