"""When an archive object expires: one rule for the stores (X-Delete-At) and the UI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def expires_at(day: str, retention_days: int) -> datetime:
    """End of the UTC event day `YYYY-MM-DD` plus the retention in days."""
    start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    return start + timedelta(days=1 + retention_days)
