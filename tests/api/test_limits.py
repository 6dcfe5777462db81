"""Request bounds over real HTTP: body size before authentication, body, header and idle
timeouts, the connection limit (against the server `stacktrail.api.serve` runs)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from stacktrail.api import create_app
from stacktrail.config import Settings
from stacktrail.db import engine as db
from stacktrail.db.trail_store import TrailStore
from stacktrail.keystone import KeystoneClient
from tests.api.live_server import LiveServer

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
KEEP_ALIVE = 1.0
MAX_CONNECTIONS = 8
HUNDRED_MB = 100 * 1024 * 1024


def limited(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "api_header_timeout": timedelta(seconds=HEADER_TIMEOUT),
            "api_body_timeout": timedelta(seconds=BODY_TIMEOUT),
            "api_keep_alive_timeout": timedelta(seconds=KEEP_ALIVE),
            "api_max_connections": MAX_CONNECTIONS,
        }
    )


@pytest.fixture
async def server(keystone_settings: Settings, tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The API with Keystone authentication, served over HTTP in this process."""
    settings = limited(keystone_settings)
    url = f"sqlite+aiosqlite:///{tmp_path}/limits.db"
    await db.upgrade(url)

    def build() -> tuple[TrailStore, object]:
        store = TrailStore(db.create_engine(url), settings)
        return store, create_app(settings, store, KeystoneClient(settings))

    live = LiveServer(settings, build)  # type: ignore[arg-type]
    await asyncio.to_thread(live.start)
    yield live
    await asyncio.to_thread(live.stop)


def connect(server: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def read_response(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def closed_after(sock: socket.socket) -> float:
    """Seconds until the server closes the connection (reading everything it sends)."""
    started = time.monotonic()
    with contextlib.suppress(ConnectionResetError):
        read_response(sock)
    return time.monotonic() - started


def rss_bytes() -> int:
    """Resident memory of this process, which runs the server."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


@pytest.fixture
def rss_peak() -> Iterator[list[int]]:
    """The highest RSS seen (every 5 ms) while the test runs: [baseline, peak]."""
    seen = [rss_bytes(), rss_bytes()]
    running = True

    def sample() -> None:
        while running:
            seen[1] = max(seen[1], rss_bytes())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    yield seen
    running = False
    sampler.join()


def test_declared_large_body_is_refused_before_it_is_read(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"PATCH /v1/projects/p1/trail HTTP/1.1\r\nHost: api\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % HUNDRED_MB
        )
        response = read_response(sock)  # without a byte of the body sent
    assert response.startswith(b"HTTP/1.1 413 "), response[:200]
    assert b"STACKTRAIL_API_MAX_BODY_BYTES" in response
    assert b"cache-control: no-store" in response.lower()


def test_streamed_large_body_is_cut_and_memory_stays_steady(
    server: LiveServer, rss_peak: list[int]
) -> None:
    chunk = b"x" * (1024 * 1024)
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    sent = 0
    with connect(server) as sock:
        sock.sendall(
            b"PATCH /v1/projects/p1/trail HTTP/1.1\r\nHost: api\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        try:
            while sent < HUNDRED_MB:
                sock.sendall(frame)
                sent += len(chunk)
            sock.sendall(b"0\r\n\r\n")
            response = read_response(sock)
        except (BrokenPipeError, ConnectionResetError):
            response = b""
    baseline, peak = rss_peak
    # the server stopped reading after the limit (1 MB); the kernel's buffers took a few
    assert sent < 16 * 1024 * 1024, sent
    assert peak - baseline < 32 * 1024 * 1024, (baseline, peak)
    assert response == b"" or response.startswith(b"HTTP/1.1 413 "), response[:200]


def test_slow_body_is_answered_408(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"PATCH /v1/projects/p1/trail HTTP/1.1\r\nHost: api\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        started = time.monotonic()
        response = read_response(sock)
        waited = time.monotonic() - started
    assert response.startswith(b"HTTP/1.1 408 "), response[:200]
    assert waited < BODY_TIMEOUT + 2, waited


def test_silent_and_slow_header_connections_are_closed(server: LiveServer) -> None:
    with connect(server) as silent:
        assert closed_after(silent) < HEADER_TIMEOUT + 2

    with connect(server) as slow:
        started = time.monotonic()
        slow.settimeout(0.2)
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: api\r\nX-Padding: " + b"a" * 100:
            try:
                slow.sendall(bytes([byte]))
                if slow.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        assert closed, "a client sending its headers a byte at a time was never cut"
        assert time.monotonic() - started < HEADER_TIMEOUT + 2


def test_idle_keep_alive_connection_is_closed(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 "), first
        assert closed_after(sock) < KEEP_ALIVE + 1.5

        # after a response, the next request's headers have their deadline too
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert closed_after(sock) < HEADER_TIMEOUT + 1.5


async def test_connections_beyond_the_limit_are_answered_503(server: LiveServer) -> None:
    held = [connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            response = await http.get("/healthz")
        assert response.status_code == 503
    finally:
        for sock in held:
            sock.close()
    await asyncio.sleep(0.2)
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/healthz")).status_code == 200
