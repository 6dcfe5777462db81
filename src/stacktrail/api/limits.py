"""Request bounds applied before any route (and so before authentication).

A body is read here, counted as it arrives, within a time limit, and handed to the app
only when complete: a declared `Content-Length` over the limit is refused at once, a
chunked body as soon as it passes the limit, a slow one when its time is up. JSON bodies
nested deeper than the limit are refused (422) before anything parses them recursively.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stacktrail.api.problems import PROBLEM_MEDIA_TYPE, problem_body, problem_error

# JSON strings (with escapes), removed before counting brackets
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")


class BodyTooLarge(Exception):
    pass


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in `body` (read as JSON text)."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _is_json(content_type: bytes | None) -> bool:
    # FastAPI parses bodies without a content type as JSON too
    if content_type is None:
        return True
    media = content_type.split(b";", 1)[0].strip().lower()
    return not media.startswith(_FORM_TYPES) and (
        media == b"application/json" or media.endswith(b"+json")
    )


async def _respond(
    scope: Scope,
    send: Send,
    status: int,
    detail: str,
    close: bool,
    errors: list[dict[str, Any]] | None = None,
) -> None:
    body = problem_body(status, detail, scope.get("path", ""), errors)
    headers = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"cache-control", b"no-store")]
    if close:  # the rest of the body is never read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


class RequestLimits:
    """The body size, body time and JSON depth limits (see `Settings.api_*`)."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, body_timeout: float, max_json_depth: int
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = (
            f"the request body is larger than {self.max_body_bytes} bytes "
            "(STACKTRAIL_API_MAX_BODY_BYTES)"
        )
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            if not length.isdigit():
                await _respond(scope, send, 400, "invalid Content-Length", close=True)
            else:
                await _respond(scope, send, 413, too_large, close=True)
            return
        chunked = b"chunked" in (_header(scope, b"transfer-encoding") or b"").lower()
        if length in (None, b"0") and not chunked:
            await self.app(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.body_timeout):
                body, disconnected = await self._read(receive)
        except BodyTooLarge:
            await _respond(scope, send, 413, too_large, close=True)
            return
        except TimeoutError:
            detail = f"the request body did not arrive within {self.body_timeout:g}s"
            await _respond(scope, send, 408, detail, close=True)
            return
        if disconnected:
            return
        if _is_json(_header(scope, b"content-type")):
            depth = json_depth(body)
            if depth > self.max_json_depth:
                error = problem_error(
                    {
                        "type": "json_invalid",
                        "loc": ["body"],
                        "msg": f"JSON nested {depth} levels deep; at most "
                        f"{self.max_json_depth} are accepted",
                    }
                )
                detail = f"The request is not accepted: {error['detail']}"
                await _respond(scope, send, 422, detail, close=False, errors=[error])
                return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", True
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body, in one message, then the connection's own messages (disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
