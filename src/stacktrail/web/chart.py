"""A small bar chart of events per day as inline SVG, rendered on the server (pure code).

The delivery status reports how many events a project ingested in the last 24 clock
hours (and the last hour), not a per-day history; `days_from_status` places that count
on today's bar and marks the earlier days as unknown, and the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

DAYS = 30
WIDTH, HEIGHT = 420, 140
LEFT, RIGHT, TOP, BOTTOM = 40, 6, 10, 22


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    count: int | None  # None: not known
    label: str = ""  # how the count was obtained, when not a plain calendar day


def days_from_status(status: dict[str, Any], today: date | None = None) -> list[DayCount]:
    """The last `DAYS` days, ending today; only the last 24 hours are known."""
    today = today or datetime.now(UTC).date()
    events = status.get("events") or {}
    last_day = events.get("last_day")
    days = [DayCount(today - timedelta(days=back), None) for back in range(DAYS - 1, 0, -1)]
    known = int(last_day) if isinstance(last_day, int) else None
    days.append(DayCount(today, known, "last 24 hours"))
    return days


def _nice_max(value: int) -> int:
    """A round top for the scale whose half is a whole number too."""
    if value <= 4:
        return 4
    magnitude: int = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 4, 6, 8, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value  # pragma: no cover


def render(days: list[DayCount], title: str) -> Markup:
    """The chart as an accessible `<svg>` (role img, with a title and a description)."""
    known = [d for d in days if d.count is not None]
    top = _nice_max(max((d.count or 0 for d in known), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.7, 1.0)
    base = TOP + plot_h
    parts: list[str] = []
    for frac in (0.0, 0.5, 1.0):
        y = base - frac * plot_h
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{int(top * frac):,}</text>"
        )
    for index, day in enumerate(days):
        x = LEFT + index * slot + (slot - bar_w) / 2
        label = day.label or day.day.isoformat()
        if day.count is None:
            parts.append(
                f'<rect class="unknown" x="{x:.1f}" y="{base - 3:.1f}" width="{bar_w:.1f}" '
                f'height="3"><title>{escape(label)}: not known</title></rect>'
            )
            continue
        height = max(plot_h * day.count / top, 1.5 if day.count else 0)
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{base - height:.1f}" width="{bar_w:.1f}" '
            f'height="{height:.1f}"><title>{escape(label)}: {day.count:,} events</title></rect>'
        )
    if days:
        last = len(days) - 1
        for index, anchor in ((0, "start"), (last // 2, "middle"), (last, "end")):
            x = (
                LEFT
                + index * slot
                + (0 if anchor == "start" else slot if anchor == "end" else slot / 2)
            )
            day = days[index]
            text = "today" if index == last else day.day.strftime("%b %d")
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">'
                f"{escape(text)}</text>"
            )
    summary = (
        "; ".join(f"{d.label or d.day.isoformat()}: {d.count:,} events" for d in known)
        or "no counts known"
    )
    unknown = len(days) - len(known)
    desc = f"{summary}. {unknown} earlier days not known." if unknown else f"{summary}."
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title chart-desc" preserveAspectRatio="xMidYMid meet">'
        f'<title id="chart-title">{escape(title)}</title>'
        f'<desc id="chart-desc">{escape(desc)}</desc>'
        f'<line class="axis-line" x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}"/>'
        + "".join(parts)
        + "</svg>"
    )
