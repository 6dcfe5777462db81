"""One INFO line per delivery round: what the uploader delivered since the last line.

Deliveries finish one by one (each segment, each region); a line each would flood the
log at scale, and none hides that the archive works. So the first delivery after a
quiet spell is logged at once, and later ones are summed into one line per interval.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from time import monotonic

from stacktrail.telemetry import metrics

log = logging.getLogger("stacktrail.archive.delivery")


@dataclass(slots=True)
class _Round:
    objects: int = 0
    events: int = 0
    bytes: int = 0
    failures: int = 0
    projects: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.objects or self.failures)


class DeliveryReport:
    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._round = _Round()
        self._last = -float("inf")
        self._timer: asyncio.TimerHandle | None = None

    def delivered(self, project_id: str, events: int, size: int) -> None:
        metrics.ARCHIVE_OBJECTS.labels(result="delivered").inc()
        metrics.ARCHIVE_BYTES.inc(size)
        metrics.ARCHIVE_EVENTS.inc(events)
        self._round.objects += 1
        self._round.events += events
        self._round.bytes += size
        self._round.projects.add(project_id)
        self._due()

    def failed(self, project_id: str) -> None:
        metrics.ARCHIVE_OBJECTS.labels(result="failed").inc()
        self._round.failures += 1
        self._round.projects.add(project_id)
        self._due()

    def _due(self) -> None:
        wait = self._last + self._interval - monotonic()
        if wait <= 0:
            self.emit()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(wait, self.emit)

    def emit(self) -> None:
        """Log what the round did (nothing when it did nothing)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        done, self._round = self._round, _Round()
        if not done:
            return
        self._last = monotonic()
        log.info(
            "archive delivery: %d objects (%d events, %d bytes) for %d projects; %d failed",
            done.objects,
            done.events,
            done.bytes,
            len(done.projects),
            done.failures,
        )
