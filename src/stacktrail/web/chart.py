"""A small bar chart of events per day as inline SVG, rendered on the server (pure code).

The trail status carries `events_per_day`: the events ingested for the project on each
UTC day of the last 30 days, oldest first, ending with today (so far). `days_from_status`
reads it; `render` draws one bar per day, with a text alternative for screen readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

DAYS = 30
WIDTH, HEIGHT = 420, 140
LEFT, RIGHT, TOP, BOTTOM = 40, 6, 10, 22
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
BASE = TOP + PLOT_HEIGHT  # y of the zero line
LABEL_EVERY = 7  # days between date labels under the bars


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date  # a UTC day
    count: int | None  # None: not known (the status did not report the day)


def days_from_status(status: dict[str, Any], today: date | None = None) -> list[DayCount]:
    """The `DAYS` UTC days up to the status's last day (else today) with their counts."""
    known: dict[date, int] = {}
    for entry in status.get("events_per_day") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("count"), int):
            continue
        try:
            day = date.fromisoformat(str(entry.get("day")))
        except ValueError:
            continue
        known[day] = entry["count"]
    last = max(known, default=None) or today or datetime.now(UTC).date()
    first = last - timedelta(days=DAYS - 1)
    return [DayCount(day, known.get(day)) for day in _each_day(first, last)]


def _each_day(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _nice_max(value: int) -> int:
    """A round top for the scale whose half is a whole number too."""
    if value <= 4:
        return 4
    magnitude: int = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 4, 6, 8, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value  # pragma: no cover


def short_number(value: int) -> str:
    """`950` -> `950`, `2000` -> `2k`, `2500` -> `2.5k`, `3000000` -> `3M` (axis labels)."""
    for size, unit in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return str(value)


def day_label(day: date) -> str:
    """`Mar 2`: a date under the chart."""
    return f"{day:%b} {day.day}"


def bar_height(count: int, top: int) -> float:
    """The bar of `count` on a scale up to `top`; a day with any events stays visible."""
    if count <= 0:
        return 0.0
    return max(PLOT_HEIGHT * count / top, 1.5)


def describe(days: list[DayCount]) -> str:
    """The chart in words, its text alternative."""
    if not days:
        return "No days to show."
    known = [d for d in days if d.count is not None]
    span = f"{days[0].day.isoformat()} to {days[-1].day.isoformat()}, UTC days"
    if not known:
        return f"{span}: the counts are not known."
    total = sum(d.count or 0 for d in known)
    words = [f"{span}: {total:,} events in total"]
    busiest = max(known, key=lambda d: (d.count or 0, d.day))
    if busiest.count:
        words.append(f"most on {busiest.day.isoformat()} ({busiest.count:,})")
    if days[-1].count is not None:
        words.append(f"today so far {days[-1].count:,}")
    unknown = len(days) - len(known)
    if unknown:
        words.append(f"{unknown} {'day' if unknown == 1 else 'days'} not known")
    return "; ".join(words) + "."


def render(days: list[DayCount], title: str) -> Markup:
    """The chart as an accessible `<svg>` (role img, with a title and a description)."""
    top = _nice_max(max((d.count or 0 for d in days), default=0))
    slot = PLOT_WIDTH / max(len(days), 1)
    bar_w = max(slot * 0.7, 1.0)
    last = len(days) - 1
    parts: list[str] = []
    for frac in (0.0, 0.5, 1.0):
        y = BASE - frac * PLOT_HEIGHT
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{short_number(int(top * frac))}</text>"
        )
    for index, day in enumerate(days):
        x = LEFT + index * slot + (slot - bar_w) / 2
        when = day.day.isoformat() + (" (today, so far)" if index == last else "")
        data = f'data-day="{day.day.isoformat()}"'
        if day.count is None:
            parts.append(
                f'<rect class="unknown" {data} x="{x:.1f}" y="{BASE - 3:.1f}" '
                f'width="{bar_w:.1f}" height="3"><title>{escape(when)}: not known</title></rect>'
            )
            continue
        height = bar_height(day.count, top)
        kind = "bar today" if index == last else "bar"
        parts.append(
            f'<rect class="{kind}" {data} data-count="{day.count}" x="{x:.1f}" '
            f'y="{BASE - height:.1f}" width="{bar_w:.1f}" height="{height:.1f}">'
            f"<title>{escape(when)}: {day.count:,} events</title></rect>"
        )
    # dates under every LABEL_EVERY-th bar, counted back from today's
    labelled = sorted({last, *range(last, 0, -LABEL_EVERY)}) if days else []
    for index in labelled:
        centre = LEFT + (index + 0.5) * slot
        text = "today" if index == last else day_label(days[index].day)
        x, anchor = (LEFT + (index + 1) * slot, "end") if index == last else (centre, "middle")
        parts.append(
            f'<line class="tick" x1="{centre:.1f}" y1="{BASE}" x2="{centre:.1f}" '
            f'y2="{BASE + 3}"/>'
            f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">'
            f"{escape(text)}</text>"
        )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title chart-desc" preserveAspectRatio="xMidYMid meet">'
        f'<title id="chart-title">{escape(title)}</title>'
        f'<desc id="chart-desc">{escape(describe(days))}</desc>'
        + "".join(parts)
        + f'<line class="axis-line" x1="{LEFT}" y1="{BASE}" x2="{WIDTH - RIGHT}" y2="{BASE}"/>'
        + "</svg>"
    )
