"""The project page's digest panel: per region, when the last signed digest was delivered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from stacktrail.web.explain import ago, parse_time

DASH = "\u2013"  # an en dash, between the ends of a period


def period_words(start: datetime | None, end: datetime, now: datetime) -> str:
    """`10:00-11:00 UTC` (an en dash) today; with the date on other days, both dates
    when it spans days."""
    end = end.astimezone(UTC)
    if start is None:
        return f"the period up to {end:%Y-%m-%d %H:%M} UTC"
    start = start.astimezone(UTC)
    same_day = end - timedelta(microseconds=1) < datetime.combine(
        start.date() + timedelta(days=1), datetime.min.time(), UTC
    )
    if not same_day:
        return f"{start:%Y-%m-%d %H:%M} {DASH} {end:%Y-%m-%d %H:%M} UTC"
    day = "" if start.date() == now.astimezone(UTC).date() else f"{start:%Y-%m-%d} "
    until = "24:00" if end.date() != start.date() else f"{end:%H:%M}"  # midnight after
    return f"{day}{start:%H:%M}{DASH}{until} UTC"


def digest_lines(
    status: dict[str, Any] | None, delivering: bool = True, now: datetime | None = None
) -> list[str]:
    """One sentence per region of the status, e.g. `Last digest delivered 12 minutes
    ago, covering 10:00-11:00 UTC, RegionOne.`; `delivering`: whether the trail delivers
    to a container (digests are written only then)."""
    now = now or datetime.now(UTC)
    lines = []
    for region in (status or {}).get("regions") or []:
        name = str(region.get("region", ""))
        last = region.get("last_digest") or {}
        end = parse_time(last.get("period_end"))
        if end is None:
            lines.append(
                f"No digest delivered yet for {name}."
                if delivering
                else f"No digest for {name}: digests are written while events are delivered "
                "to a container."
            )
            continue
        delivered = parse_time(last.get("delivered_at"))
        when = f"delivered {ago(delivered, now)}" if delivered else "delivered"
        covering = period_words(parse_time(last.get("period_start")), end, now)
        lines.append(f"Last digest {when}, covering {covering}, {name}.")
    return lines
