"""Plain-language wording of trail settings, times, sizes and delivery errors (pure code)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from stacktrail.domain.document import event_selection
from stacktrail.domain.durations import parse_duration
from stacktrail.domain.event_rules import (
    ALWAYS_KEPT_EVENT_TYPES,
    READ_ONLY_ACTIONS,
    SERVICE_PREFIX,
)

FORMATS = {
    "json": "compressed JSON files (.json.gz), one list of events per file",
    "ndjson": "compressed NDJSON files (.ndjson.gz), one event per line",
    "csv": "compressed CSV files (.csv.gz), one event per row, for spreadsheets",
}
FORMAT_LABELS = {
    "json": "JSON (.json.gz)",
    "ndjson": "NDJSON, one event per line (.ndjson.gz)",
    "csv": "CSV, for spreadsheets (.csv.gz)",
}


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else (words or word + 's')}"


def join_words(items: Sequence[str], last: str = "and") -> str:
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def duration_words(text: str) -> str:
    """`15m` -> `15 minutes`, `1h` -> `1 hour`, `90s` -> `90 seconds`."""
    try:
        seconds = int(parse_duration(text).total_seconds())
    except ValueError:
        return text
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            return plural(seconds // size, unit)
    return plural(seconds, "second")


def every(text: str) -> str:
    """`15m` -> `Every 15 minutes`, `1h` -> `Every hour`, `1d` -> `Once a day`."""
    words = duration_words(text)
    if words == "1 day":
        return "Once a day"
    if words.startswith("1 ") and not words[2:].endswith("s"):
        return f"Every {words[2:]}"
    return f"Every {words}"


def retention_sentence(days: int, archive: bool, search: bool) -> str:
    places = []
    if archive:
        places.append("your container")
    if search:
        places.append("search")
    where = join_words(places) if places else "stacktrail"
    return f"Events older than {plural(days, 'day')} are deleted from {where}."


def delivery_sentence(archive: dict[str, Any]) -> str:
    regions = list(archive.get("regions") or [])
    where = f"in {join_words(regions)}" if regions else ""
    folder = f" (folder {archive['prefix']}/)" if archive.get("prefix") else ""
    return (
        f"{every(str(archive.get('interval', '')))}, new events are delivered to container "
        f"{archive.get('container', '')}{folder} {where}".rstrip()
        + "."
    )


def _service_name(pattern: str) -> str:
    return pattern.removeprefix(SERVICE_PREFIX)


def rule_words(rule: Mapping[str, Any]) -> str:
    """One rule's events in words: `reads of compute`, `failures`, `create actions on
    compute/server`."""
    actions = [str(a) for a in rule.get("action") or []]
    outcomes = [str(o) for o in rule.get("outcome") or []]
    read_only = set(READ_ONLY_ACTIONS) <= set(actions)
    others = [a for a in actions if a not in READ_ONLY_ACTIONS] if read_only else actions
    subjects = (["reads"] if read_only else []) + (
        [f"{join_words(others, 'or')} actions"] if others else []
    )
    subject = join_words(subjects, "or") if subjects else "events"
    if outcomes == ["failure"]:
        subject = "failures" if subject == "events" else f"failed {subject}"
    elif outcomes == ["success"]:
        subject = "successes" if subject == "events" else f"successful {subject}"
    elif outcomes:
        subject += f" with outcome {join_words(outcomes, 'or')}"
    words = [subject]
    if rule.get("service"):
        words.append("of " + join_words([_service_name(s) for s in rule["service"]], "or"))
    if rule.get("target_type"):
        words.append("on " + join_words(list(rule["target_type"]), "or"))
    if rule.get("event_type"):
        words.append("of type " + join_words(list(rule["event_type"]), "or"))
    return " ".join(words)


def _matching(patterns: Sequence[str]) -> list[str]:
    return [f"events matching {join_words(list(patterns), 'or')}"] if patterns else []


def selection_sentence(events: Mapping[str, Any]) -> str:
    """What a selection keeps, in words: `Keep every event except reads of compute.`,
    `Keep only failures.`, `Keep only events matching identity.*, except failures.`"""
    rules = [r for r in events.get("rules") or [] if isinstance(r, Mapping)]
    include = _matching(events.get("include") or [])
    exclude = _matching(events.get("exclude") or [])
    include += [rule_words(r) for r in rules if r.get("effect") == "include"]
    exclude += [rule_words(r) for r in rules if r.get("effect") == "exclude"]
    if not include and not exclude:
        return "Keep every event."
    if not include:
        return f"Keep every event except {join_words(exclude)}."
    if not exclude:
        return f"Keep only {join_words(include, 'or')}."
    return f"Keep only {join_words(include, 'or')}, except {join_words(exclude)}."


ALWAYS_KEPT_WORDS = (
    "The trail's own change events ("
    + ", ".join(sorted(ALWAYS_KEPT_EVENT_TYPES))
    + ") are always kept, whatever the rules say."
)


def coverage_of(events: Mapping[str, Any]) -> Callable[[str], str]:
    """Per event type: `all`, `some` or `none` of its events kept (none for a selection
    the API would refuse)."""
    try:
        selection = event_selection(events)
    except ValidationError:
        return lambda _name: "none"
    return selection.coverage


def size_words(size: int | None) -> str:
    if size is None:
        return "not known to this server"
    if size == 0:
        return "nothing"
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size:,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size:,} bytes"  # pragma: no cover


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def time_words(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return ""
    delta = (now or datetime.now(UTC)) - moment
    if delta < timedelta(minutes=1):
        return "just now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if delta.total_seconds() >= size:
            return f"{plural(int(delta.total_seconds() // size), unit)} ago"
    return "just now"  # pragma: no cover


def until(moment: datetime | None, now: datetime | None = None) -> str:
    """`in 4 minutes`, or `now` when the moment has come."""
    if moment is None:
        return ""
    seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    if seconds < 60:
        return "within a minute"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            return f"in {plural(int(seconds // size), unit)}"
    return "within a minute"  # pragma: no cover


_ERRORS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"HTTP 404|no such directory|NoSuchBucket", re.I),
        "The container does not exist (the store answered 404). Create it and grant "
        "stacktrail's writer write access to it, or let stacktrail manage the container.",
    ),
    (
        re.compile(r"does not grant write", re.I),
        "The container does not let stacktrail write into it. Create the container and grant "
        "stacktrail's service user write access to it, or let stacktrail manage the container.",
    ),
    (
        re.compile(r"arrived after their retention", re.I),
        "Some late events were already older than your retention period, so they were not "
        "stored (nothing needs to be done).",
    ),
    (
        re.compile(r"quota|HTTP 413|HTTP 507", re.I),
        "Your project's object storage is full (quota reached). Free space or ask for a "
        "larger quota; delivery resumes by itself.",
    ),
    (
        re.compile(r"reseller role missing|HTTP 403|HTTP 401", re.I),
        "The object storage refused stacktrail's writes. The cloud operator needs to check "
        "stacktrail's permissions; delivery is retried automatically.",
    ),
    (
        re.compile(r"no object-store endpoint", re.I),
        "This region has no object storage service. Choose another region or ask the "
        "cloud operator.",
    ),
    (
        re.compile(r"invalid container name|InvalidName", re.I),
        "The container name is not accepted by the object storage. Choose another name.",
    ),
    (
        re.compile(r"unreachable|timed? ?out|HTTP 5\d\d|HTTP 429|HTTP 408", re.I),
        "The object storage could not be reached or was busy. stacktrail keeps retrying; "
        "no events are lost meanwhile.",
    ),
]


def error_words(message: str) -> str:
    """What a delivery error recorded by the uploader means, for a project admin."""
    for pattern, words in _ERRORS:
        if pattern.search(message):
            return words
    return "Delivering events failed. stacktrail keeps retrying; no events are lost meanwhile."


def role_words(roles: Iterable[str], cloud_admin: bool) -> str:
    if cloud_admin:
        return "cloud administrator"
    roles = set(roles)
    if "admin" in roles or "audit_admin" in roles:
        return "project administrator"
    if "audit_viewer" in roles:
        return "auditor (can view)"
    if "member" in roles:
        return "project member (can view)"
    if "reader" in roles:
        return "reader (can view)"
    return "no role for audit trails"


def write_mode_words(mode: str) -> str:
    if mode == "acl":
        return (
            "Your project owns the container; stacktrail writes only where your project "
            "grants its writer write access."
        )
    return "stacktrail creates the container in your project if needed and writes into it."


def source_words(source: str) -> str:
    if source == "search":
        return "Events are exported from search on a schedule, then delivered."
    return "Events are delivered as they arrive."
