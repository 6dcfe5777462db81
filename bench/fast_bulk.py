"""A minimal `_bulk` endpoint that accepts everything, to measure stacktrail, not a cluster.

Speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies): `POST /_bulk` answers one
`201 created` item per action line; any other request answers `{"acknowledged": true}`.
Counts documents so the benchmark knows when the stream is through.

    python bench/fast_bulk.py --port 29333
"""

from __future__ import annotations

import argparse
import asyncio

ITEM = b'{"create":{"status":201,"result":"created"}}'
documents = 0


def _response(body: bytes) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
    )
    return head + body


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global documents
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            length = 0
            for line in header_lines:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            method, path, _ = request_line.split(" ", 2)
            if method == "POST" and path.startswith("/_bulk"):
                count = body.count(b"\n") // 2
                documents += count
                payload = b'{"took":1,"errors":false,"items":[' + b",".join([ITEM] * count) + b"]}"
            elif path.startswith("/_count"):
                payload = b'{"count":%d}' % documents
            else:
                payload = b'{"acknowledged":true}'
            writer.write(_response(payload))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=29333)
    asyncio.run(main(parser.parse_args().port))
