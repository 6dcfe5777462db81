"""RabbitMQ adapter: pika's asyncio connection behind awaitable calls.

pika was chosen by measurement (bench/amqp_clients.py): on the same broker its asyncio
adapter drained about twice as fast as aiormq and three times as fast as aio-pika,
because its frame decoding is cheaper per message. pika is callback based; this module
turns each RPC into a future and fails every pending future when its channel or the
connection closes, so callers write plain `await` code and see one exception type.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pika
from pika.adapters.asyncio_connection import AsyncioConnection
from pika.channel import Channel
from pika.spec import Basic


class AmqpError(ConnectionError):
    """The broker closed the connection or channel, or refused a call."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def _reason(error: BaseException | None) -> AmqpError:
    if isinstance(error, AmqpError):
        return error
    code = getattr(error, "reply_code", None)
    text = getattr(error, "reply_text", None) or repr(error)
    return AmqpError(f"{text} ({code})" if code else text, code=code)


class AmqpChannel:
    """One channel: awaitable RPCs, optional publisher confirms."""

    def __init__(self, channel: Channel) -> None:
        self.raw = channel
        self._pending: set[asyncio.Future[Any]] = set()
        self._confirms: dict[int, asyncio.Future[bool]] = {}
        self._published = 0
        self.closed: asyncio.Future[AmqpError] = asyncio.get_running_loop().create_future()
        channel.add_on_close_callback(self._on_close)

    @property
    def is_open(self) -> bool:
        return bool(self.raw.is_open)

    def _on_close(self, _channel: Channel, reason: BaseException) -> None:
        error = _reason(reason)
        if not self.closed.done():
            self.closed.set_result(error)
        for future in [*self._pending, *self._confirms.values()]:
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        self._confirms.clear()

    async def call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a pika RPC that reports through `callback=`; raises AmqpError on close."""
        if not self.raw.is_open:
            raise AmqpError("channel is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.add(future)

        def done(frame: Any) -> None:
            if not future.done():
                future.set_result(frame)

        method(*args, callback=done, **kwargs)
        try:
            return await future
        finally:
            self._pending.discard(future)

    async def enable_confirms(self) -> None:
        await self.call(self.raw.confirm_delivery, self._on_confirm)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        acked = isinstance(method, Basic.Ack)
        tags = (
            [t for t in self._confirms if t <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        for tag in tags:
            future = self._confirms.pop(tag, None)
            if future is not None and not future.done():
                future.set_result(acked)

    async def publish_confirmed(
        self, exchange: str, routing_key: str, body: bytes, properties: pika.BasicProperties
    ) -> bool:
        """Publish on a confirming channel; True when the broker acked it."""
        if not self.raw.is_open:
            raise AmqpError("channel is closed")
        self._published += 1
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._confirms[self._published] = future
        self.raw.basic_publish(exchange, routing_key, body, properties)
        return await future

    async def close(self) -> None:
        if self.raw.is_open:
            self.raw.close()
        await asyncio.shield(self.closed)


class AmqpConnection:
    """A connection on the running event loop."""

    def __init__(self) -> None:
        self.raw: AsyncioConnection | None = None
        self.closed: asyncio.Future[AmqpError] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, url: str, connect_timeout: float = 30.0) -> AmqpConnection:
        self = cls()
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()

        def on_open(_connection: Any) -> None:
            if not opened.done():
                opened.set_result(None)

        def on_open_error(_connection: Any, error: BaseException) -> None:
            if not opened.done():
                opened.set_exception(_reason(error))

        def on_close(_connection: Any, reason: BaseException) -> None:
            if not self.closed.done():
                self.closed.set_result(_reason(reason))
            if not opened.done():
                opened.set_exception(_reason(reason))

        parameters = pika.URLParameters(url)
        parameters.connection_attempts = 1
        self.raw = AsyncioConnection(
            parameters,
            on_open_callback=on_open,
            on_open_error_callback=on_open_error,
            on_close_callback=on_close,
            custom_ioloop=loop,
        )
        try:
            async with asyncio.timeout(connect_timeout):
                await asyncio.shield(opened)
        except BaseException:
            await self.close()
            raise
        return self

    @property
    def is_open(self) -> bool:
        return self.raw is not None and bool(self.raw.is_open)

    async def channel(self) -> AmqpChannel:
        if not self.is_open:
            raise AmqpError("connection is closed")
        assert self.raw is not None
        future: asyncio.Future[Channel] = asyncio.get_running_loop().create_future()
        self.raw.channel(on_open_callback=future.set_result)
        done, _ = await asyncio.wait([future, self.closed], return_when=asyncio.FIRST_COMPLETED)
        if future not in done:
            raise self.closed.result()
        return AmqpChannel(future.result())

    async def close(self) -> None:
        if self.raw is not None and not (self.raw.is_closed or self.raw.is_closing):
            self.raw.close()
        if self.raw is not None and not self.raw.is_closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await asyncio.shield(self.closed)
