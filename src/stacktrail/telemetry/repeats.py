"""Log a failure that repeats once per state change, plus a periodic summary.

A dependency that is down fails every retry (a full disk under the spool fails every
second); one line when it starts failing (with its traceback), one when the message
changes, one summary every `summary_interval` while it lasts, and one when it works again.
"""

from __future__ import annotations

import logging
import time


class Repeats:
    def __init__(self, logger: logging.Logger, what: str, summary_interval: float = 60.0) -> None:
        self._log = logger
        self._what = what
        self._interval = summary_interval
        self._failures = 0
        self._since = 0.0
        self._last_message = ""
        self._summarised = 0.0

    @property
    def failing(self) -> bool:
        return self._failures > 0

    @property
    def failures(self) -> int:
        return self._failures

    @property
    def failing_for(self) -> float:
        """Seconds since the first failure of the current run (0 while it works)."""
        return time.monotonic() - self._since if self._failures else 0.0

    @property
    def last_message(self) -> str:
        return self._last_message

    def failed(
        self, message: str, *, detail: str = "", exc_info: BaseException | None = None
    ) -> bool:
        """Note one failure; returns whether it was logged. `detail` (e.g. the next retry
        time) is logged with the message but does not make it a new one."""
        now = time.monotonic()
        self._failures += 1
        if self._failures == 1 or message != self._last_message:
            if self._failures == 1:
                self._since = now
            self._last_message = message
            self._summarised = now
            self._log.warning("%s: %s%s", self._what, message, detail, exc_info=exc_info)
            return True
        if now - self._summarised >= self._interval:
            self._summarised = now
            self._log.warning(
                "%s: still failing (%d attempts in %.0f s): %s%s",
                self._what,
                self._failures,
                now - self._since,
                message,
                detail,
            )
            return True
        return False

    def recovered(self) -> None:
        if self._failures:
            self._log.info(
                "%s: works again after %d failed attempts in %.0f s",
                self._what,
                self._failures,
                time.monotonic() - self._since,
            )
        self._failures = 0
        self._last_message = ""
