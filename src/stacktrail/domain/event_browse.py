"""Browsing a project's recent events (pure rules and plain data).

The API and the UI read events through `EventBrowser`, implemented on search by the
composition root, so neither depends on how indices are laid out. Pages run newest
first; a page's cursor is the sort values of its last event, opaque to callers.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from stacktrail.domain.timeframe import Timeframe

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 200  # one page of full events stays well below a few MB
FILTER_MAX_CHARS = 255  # a filter value longer than any CADF id, URI or action
CURSOR_MAX_CHARS = 512


class CursorError(ValueError):
    """A cursor that this service did not hand out."""


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Exact matches on CADF fields; None: any."""

    action: str | None = None
    outcome: str | None = None
    observer: str | None = None  # observer.typeURI (the service), or observer.name
    initiator: str | None = None  # initiator.id or initiator.name
    target_type: str | None = None  # target.typeURI

    def active(self) -> dict[str, str]:
        """The filters given, by name."""
        names = ("action", "outcome", "observer", "initiator", "target_type")
        return {name: value for name in names if (value := getattr(self, name))}


@dataclass(slots=True)
class EventPage:
    events: list[dict[str, Any]]
    next_cursor: str | None
    total: int | None = None  # matching events in the frame, when the server counts
    indices: list[str] = field(default_factory=list)


class EventBrowser(Protocol):
    async def page(
        self,
        project_id: str,
        frame: Timeframe,
        filters: EventFilter,
        *,
        size: int,
        cursor: str | None,
    ) -> EventPage:
        """One page of the project's events in `frame`, newest first, after `cursor`."""
        ...

    async def get(self, project_id: str, event_id: str) -> dict[str, Any] | None:
        """One event of the project by its CADF id; None when it has no such event."""
        ...


def encode_cursor(sort: list[Any]) -> str:
    raw = json.dumps(sort, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The sort values of a cursor: [epoch ms (int), CADF id (str)]."""
    if len(cursor) > CURSOR_MAX_CHARS:
        raise CursorError("the cursor is too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError):
        raise CursorError("the cursor is not one this service handed out") from None
    if (
        not isinstance(values, list)
        or len(values) != 2
        or not isinstance(values[0], int)
        or isinstance(values[0], bool)
        or not isinstance(values[1], str)
    ):
        raise CursorError("the cursor is not one this service handed out")
    return values
