"""The normalised audit event that flows through every stage (plain data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from stacktrail.domain.json_bytes import json_bytes

JsonDict = dict[str, Any]


@dataclass(slots=True)
class AuditEvent:
    """One CADF event after decoding and Hermes-style normalisation.

    `body` is the normalised CADF event exactly as it is indexed and archived; the other
    fields are extracted from it once so that routing and filters need not dig again.
    Every sink and copy shares one event: nothing changes it after decode (not frozen
    only because a frozen dataclass's constructor costs 1.7 µs more, once per message).
    """

    id: str
    time: datetime  # timezone-aware, UTC
    event_type: str  # oslo notification event_type; "" for a bare CADF event
    action: str
    outcome: str
    target_type: str
    initiator_project_id: str | None
    target_project_id: str | None
    initiator_domain_id: str | None
    body: JsonDict
    # the reporting service: observer.typeURI, or target.typeURI when the observer is the
    # target (keystonemiddleware's audit: `observer: {"id": "target"}`)
    observer_type: str = ""
    _json: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def body_json(self) -> bytes:
        """`body` as compact JSON, encoded once for every sink and copy that stores it.

        Exactly as long as the JSON (see `json_bytes`). Raises orjson.JSONEncodeError for
        a body JSON cannot hold (decode's limits prevent it).
        """
        encoded = self._json
        if encoded is None:
            encoded = self._json = json_bytes(self.body)  # a cache: the event stays as it was
        return encoded

    def compact(self) -> None:
        """Keep only the encoded body while the event waits for its sinks to finish.

        A parsed CADF event takes about four times its JSON in Python objects, and a
        prefetch window of waiting events is most of the pipeline's memory. Reading
        `body` afterwards (a sink's rare fallback) parses it again. A body JSON cannot
        hold (which decode's limits prevent) is kept as it is.
        """
        try:
            self.body_json()
        except orjson.JSONEncodeError:
            return
        del self.body

    if not TYPE_CHECKING:  # only for `body` after `compact`: mypy keeps checking names

        def __getattr__(self, name: str) -> Any:
            if name != "body":
                raise AttributeError(name)
            body = orjson.loads(object.__getattribute__(self, "_json"))
            object.__setattr__(self, "body", body)
            return body

    @property
    def day(self) -> str:
        """UTC day of the event as YYYY-MM-DD (the archive's chunk key)."""
        return self.time.strftime("%Y-%m-%d")


class DecodeError(Exception):
    """The message is unusable; `reason` goes into the dead-letter header."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotAuditEvent(DecodeError):
    """A well-formed oslo notification whose payload is no CADF event (ordinary noise).

    The control exchanges carry every notification of a service (`compute.instance.*`,
    `port.create.end`, ...); these are not poison, so the pipeline counts and acks them.
    """

    def __init__(self, event_type: str) -> None:
        super().__init__("no CADF event in payload")
        self.event_type = event_type
