"""Why a message could not be turned into an audit event."""

from __future__ import annotations


class DecodeError(Exception):
    """The message is unusable; `reason` goes into the dead-letter header."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
