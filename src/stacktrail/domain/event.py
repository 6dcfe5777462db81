"""The normalised audit event that flows through every stage (plain data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One CADF event after decoding and Hermes-style normalisation.

    `body` is the normalised CADF event exactly as it is indexed and archived; the other
    fields are extracted from it once so that routing and filters need not dig again.
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

    @property
    def day(self) -> str:
        """UTC day of the event as YYYY-MM-DD (the archive's chunk key)."""
        return self.time.strftime("%Y-%m-%d")


class DecodeError(Exception):
    """The message is unusable; `reason` goes into the dead-letter header."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
