"""Field rules of trail configurations (pure functions, used by pydantic models).

Every check raises ValueError with a message meant for the person who sent the value.
"""

from __future__ import annotations

import re
from datetime import timedelta

from stacktrail.domain.defaults import MAX_INTERVAL
from stacktrail.domain.durations import format_duration, parse_duration

# The same rule as routing.is_valid_project_id and the archive's object names.
PROJECT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$"
PROJECT_ID_PART_PATTERN = r"^[A-Za-z0-9-]{1,64}$"  # a search for part of an id
REGION_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
MAX_PATTERN_LENGTH = 256
MAX_PATTERNS = 100
MAX_PREFIX_LENGTH = 256
MAX_CONTAINER_BYTES = 256

_PATTERN_CHARS = re.compile(r"^[A-Za-z0-9._/:\-*?\[\]]+$")
_PREFIX_CHARS = re.compile(r"^[A-Za-z0-9._/-]*$")
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


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
    """Swift's rules: 1 to 256 bytes of UTF-8, no `/`; control characters refused too."""
    if not value:
        raise ValueError("container name must not be empty")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_CONTAINER_BYTES:
        raise ValueError(f"container name is longer than {MAX_CONTAINER_BYTES} bytes")
    if "/" in value:
        raise ValueError("container name must not contain `/`")
    if any(not char.isprintable() for char in value):
        raise ValueError("container name must not contain control or non-printable characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("container name must be valid UTF-8") from None
    return value


def s3_bucket_problem(value: str) -> str | None:
    """Why `value` is not a valid S3 bucket name, or None when it is."""
    if not _S3_BUCKET.fullmatch(value):
        return (
            "an S3 bucket name has 3 to 63 characters: lower-case letters, digits, "
            "`.` and `-`, starting and ending with a letter or digit"
        )
    if ".." in value or _IPV4.fullmatch(value):
        return "an S3 bucket name must not contain `..` or look like an IP address"
    return None


def check_prefix(value: str) -> str:
    """Key prefix inside the container: relative, no `..`, safe characters; `/` trimmed."""
    if len(value) > MAX_PREFIX_LENGTH:
        raise ValueError(f"prefix is longer than {MAX_PREFIX_LENGTH} characters")
    if value.startswith("/"):
        raise ValueError("prefix must not start with `/`")
    if not _PREFIX_CHARS.fullmatch(value):
        raise ValueError("prefix may contain only letters, digits, `.`, `_`, `-` and `/`")
    value = value.rstrip("/")
    segments = value.split("/") if value else []
    if any(segment in ("", ".", "..") for segment in segments) or ".." in value:
        raise ValueError("prefix must not contain `..`, `.` segments or empty segments (`//`)")
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
