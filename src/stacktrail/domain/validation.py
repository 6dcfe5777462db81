"""Field rules of trail configurations (pure functions, used by pydantic models).

Every check raises ValueError with a message meant for the person who sent the value.
"""

from __future__ import annotations

import re
from datetime import timedelta

from stacktrail.domain.defaults import MAX_INTERVAL
from stacktrail.domain.durations import format_duration, parse_duration
from stacktrail.domain.names import PROJECT_ID_PART_PATTERN as PROJECT_ID_PART_PATTERN
from stacktrail.domain.names import PROJECT_ID_PATTERN as PROJECT_ID_PATTERN
from stacktrail.domain.store_names import MAX_CONTAINER_BYTES as MAX_CONTAINER_BYTES
from stacktrail.domain.store_names import MAX_PREFIX_LENGTH as MAX_PREFIX_LENGTH
from stacktrail.domain.store_names import container_problem, prefix_problem
from stacktrail.domain.store_names import s3_bucket_problem as s3_bucket_problem

REGION_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
MAX_PATTERN_LENGTH = 256
MAX_PATTERNS = 100
MAX_RULES = 50  # field rules per trail

_PATTERN_CHARS = re.compile(r"^[A-Za-z0-9._/:\-*?\[\]]+$")


def check_pattern(value: str) -> str:
    """A glob on event type, CADF action or target typeURI, e.g. `identity.*`, `read/*`."""
    if not value:
        raise ValueError("pattern must not be empty")
    if len(value) > MAX_PATTERN_LENGTH:
        raise ValueError(f"pattern is longer than {MAX_PATTERN_LENGTH} characters")
    if not _PATTERN_CHARS.fullmatch(value):
        raise ValueError(
            f"pattern {value!r} may contain only letters, digits, `._/:-` "
            "and the glob characters `*?[]`"
        )
    inside = False
    members = 0
    for char in value:
        if char == "[":
            if inside:
                raise ValueError(f"pattern {value!r}: `[` inside a character class")
            inside, members = True, 0
        elif char == "]":
            if not inside:
                raise ValueError(f"pattern {value!r}: `]` without a matching `[`")
            if members == 0:
                raise ValueError(f"pattern {value!r}: empty character class `[]`")
            inside = False
        elif inside:
            members += 1
    if inside:
        raise ValueError(f"pattern {value!r}: `[` without a matching `]`")
    return value


def check_container(value: str) -> str:
    """Swift's rules (store_names.container_problem): 1-256 bytes, no `/`, not `.`/`..`."""
    problem = container_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def check_prefix(value: str) -> str:
    """Key prefix inside the container (store_names.prefix_problem); trailing `/` trimmed."""
    if value.startswith("/"):
        raise ValueError("prefix must not start with `/`")
    value = value.rstrip("/")
    problem = prefix_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def parse_interval(value: str) -> timedelta:
    """A delivery interval like `15m`: whole seconds, positive, at most a day."""
    try:
        interval = parse_duration(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    if interval.total_seconds() != int(interval.total_seconds()):
        raise ValueError(f"interval {value!r} must be a whole number of seconds")
    if interval > MAX_INTERVAL:
        raise ValueError(f"interval {value!r} is longer than {format_duration(MAX_INTERVAL)}")
    return interval


def check_interval(value: str) -> str:
    """Canonical form of an interval (`900s` -> `15m`)."""
    return format_duration(parse_interval(value))
