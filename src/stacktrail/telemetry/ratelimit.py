"""Log lines that repeat at most once per interval, saying how many were folded in."""

from __future__ import annotations

import logging
from time import monotonic
from typing import Any


class RateLimitedLog:
    """The first call logs at once; later calls within `interval` are only counted.

    The next line that is logged says how many were held back, so a flood (a full
    dead-letter queue, a delivery round every second) costs one line per interval.
    """

    def __init__(self, logger: logging.Logger, interval: float) -> None:
        self._log = logger
        self._interval = interval
        self._last = -float("inf")
        self._held = 0

    def log(self, level: int, message: str, *args: Any) -> bool:
        """Log now, or count the line for later; True when it was logged."""
        now = monotonic()
        if now - self._last < self._interval:
            self._held += 1
            return False
        self._last = now
        if self._held:
            message += " (and %d more like it since the last line)"
            args = (*args, self._held)
            self._held = 0
        self._log.log(level, message, *args)
        return True

    def info(self, message: str, *args: Any) -> bool:
        return self.log(logging.INFO, message, *args)

    def warning(self, message: str, *args: Any) -> bool:
        return self.log(logging.WARNING, message, *args)
