"""The operator's defaults and bounds for every trail (stored, else from the settings)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from stacktrail.domain.trail import ArchiveFormat, TrailSettings

MAX_INTERVAL = timedelta(days=1)  # the longest delivery interval anybody may set
FALLBACK_MIN_INTERVAL = timedelta(minutes=1)
RETENTION_LIMIT_DAYS = 36500  # no bound may exceed a hundred years


@dataclass(frozen=True, slots=True)
class Editor:
    """Who last changed something."""

    user_id: str
    user_name: str


@dataclass(frozen=True, slots=True)
class OperatorDefaults:
    default_retention_days: int
    max_retention_days: int
    default_interval: timedelta
    min_interval: timedelta
    default_container: str
    default_format: ArchiveFormat
    version: int = 0  # 0: never stored, taken from the settings
    updated_at: datetime | None = None
    updated_by: Editor | None = None

    @classmethod
    def from_settings(cls, settings: TrailSettings) -> OperatorDefaults:
        max_days = min(settings.retention_max_days, RETENTION_LIMIT_DAYS)
        interval = min(settings.archive_interval, MAX_INTERVAL)
        return cls(
            default_retention_days=min(settings.retention_days, max_days),
            max_retention_days=max_days,
            default_interval=interval,
            min_interval=min(FALLBACK_MIN_INTERVAL, interval),
            default_container=settings.archive_container,
            default_format=settings.archive_format,
        )

    def clamp_retention(self, days: int) -> int:
        return max(1, min(days, self.max_retention_days))

    def clamp_interval(self, interval: timedelta) -> timedelta:
        return max(self.min_interval, min(interval, MAX_INTERVAL))
