"""Times on the command line: ISO 8601, UTC unless an offset is given."""

from __future__ import annotations

from datetime import UTC, datetime

import typer


def parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        typer.echo(f"stacktrail: {option} {value!r} is not an ISO 8601 time", err=True)
        raise typer.Exit(2) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
