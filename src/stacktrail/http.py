"""What every httpx-based adapter shares."""

from __future__ import annotations

import httpx

_EMPTY = b""


def release(response: httpx.Response) -> httpx.Response:
    """Let a fully read response free its request body now.

    A response and its stream refer to each other, and the stream holds the request and
    its body: the cycle keeps megabytes (a bulk request, an archive object) alive until
    the garbage collector runs, which a busy pipeline makes rare (see gc_tuning). The
    content stays readable.
    """
    response.stream = httpx.ByteStream(_EMPTY)
    return response
