"""A TCP relay in front of a real server, to cut, black-hole or delay it in tests.

Not a fake: every byte goes to the real server. `stop()` cuts it (refuses new
connections and drops open ones) and `start()` brings it back on the same port;
`black_hole()` keeps connections open but forwards nothing either way (a peer that
vanished without a reset: only timeouts notice); `delay(s)` adds latency to every chunk;
`clear()` ends both. Only the relay changes: the server behind it (shared) is untouched.

With `unix=PATH` the relay listens on a UNIX socket instead of a TCP port: a process in
a network namespace of its own reaches it there (the file system is shared), through a
socat that listens on the server's usual address inside the namespace (tests/support/netns.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, unix: Path | None = None) -> None:
        self.target = (target_host, target_port)
        self.unix = unix
        self.port = 0 if unix is not None else free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._black_hole = False
        self._delay = 0.0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        if self.unix is not None:
            self.unix.unlink(missing_ok=True)
            self._server = await asyncio.start_unix_server(self._handle, self.unix)
        else:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    def black_hole(self) -> None:
        self._black_hole = True

    def delay(self, seconds: float) -> None:
        self._delay = seconds

    def clear(self) -> None:
        self._black_hole = False
        self._delay = 0.0

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    if self._black_hole:
                        continue  # swallowed: the other side waits for ever
                    if self._delay:
                        await asyncio.sleep(self._delay)
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)
