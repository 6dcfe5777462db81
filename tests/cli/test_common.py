"""The event loop `stacktrail run` runs on is the one the settings choose."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from stacktrail.cli.common import run_loop
from stacktrail.config import EventLoop, Settings


async def loop_kind() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_the_default_loop_is_uvloop() -> None:
    assert Settings().event_loop is EventLoop.UVLOOP
    assert run_loop(loop_kind(), Settings()) is uvloop.Loop


def test_the_standard_librarys_loop_can_be_chosen() -> None:
    kind = run_loop(loop_kind(), Settings(event_loop=EventLoop.ASYNCIO))
    assert not issubclass(kind, uvloop.Loop)
    assert issubclass(kind, asyncio.BaseEventLoop)


@pytest.mark.parametrize("choice", list(EventLoop))
def test_the_main_coroutines_result_and_error_come_back(choice: EventLoop) -> None:
    async def fails() -> None:
        raise LookupError("from the loop")

    settings = Settings(event_loop=choice)
    assert run_loop(asyncio.sleep(0, "done"), settings) == "done"
    with pytest.raises(LookupError, match="from the loop"):
        run_loop(fails(), settings)
