"""The name rules of archive destinations, one per store kind (pure; the one home).

The API (trails/validation.py), each store adapter (clients/) and the Swift URL builder
all apply these, so a name that could leave its project's namespace is refused three
times over:

- Swift container (and the `file` store's directory, same rule): 1 to 256 bytes of UTF-8
  (Swift's `container_name_length`), no `/`, not `.` or `..` (a URL or path dot segment
  would climb into the account, or out of the archive root), no control characters.
- S3 bucket: AWS's naming rules (3-63 characters, lower case, digits, `.`, `-`, no `..`,
  not an IP address); and a project may name only the operator's shared buckets or a
  bucket of its own, `<project_id>` or `<project_id>-<anything>` (all projects share
  one S3 identity, so the name is the only thing that keeps them apart).
- Prefixes and object keys: relative, `/`-separated, no empty, `.` or `..` segments,
  no control characters, bounded.

Each `*_problem` function returns why a name is refused, or None when it is fine.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final

MAX_CONTAINER_BYTES: Final = 256  # Swift's container_name_length
MAX_PREFIX_LENGTH: Final = 256
MAX_KEY_BYTES: Final = 1024  # Swift's max_object_name_length
DOT_SEGMENTS: Final = frozenset({".", ".."})

_PREFIX_CHARS: Final = re.compile(r"[A-Za-z0-9._/-]*")
_S3_BUCKET: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4: Final = re.compile(r"\d+\.\d+\.\d+\.\d+")


def _utf8_problem(value: str, what: str) -> str | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{what} must be valid UTF-8"
    if any(not char.isprintable() for char in value):
        return f"{what} must not contain control or non-printable characters"
    return None


def container_problem(value: str) -> str | None:
    """Swift's container rule, also the `file` store's directory rule."""
    if not value:
        return "container name must not be empty"
    if len(value.encode("utf-8", "surrogatepass")) > MAX_CONTAINER_BYTES:
        return f"container name is longer than {MAX_CONTAINER_BYTES} bytes"
    if "/" in value:
        return "container name must not contain `/`"
    if value in DOT_SEGMENTS:
        return "container name must not be `.` or `..`"
    return _utf8_problem(value, "container name")


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


def s3_owner_problem(bucket: str, project_id: str, shared: Collection[str]) -> str | None:
    """Whether `project_id` may write into `bucket`: a shared bucket or one named after it."""
    if bucket in shared or bucket == project_id or bucket.startswith(project_id + "-"):
        return None
    allowed = ", ".join(sorted(shared))
    return (
        f"bucket {bucket!r} belongs to no one this project may write for: use "
        f"{allowed + ' (shared), ' if allowed else ''}{project_id!r} "
        f"or a name starting with '{project_id}-'"
    )


def _segments_problem(value: str, what: str) -> str | None:
    if value.startswith("/"):
        return f"{what} must not start with `/`"
    if any(segment in ("", ".", "..") for segment in value.split("/")):
        return f"{what} must not contain `..`, `.` segments or empty segments (`//`)"
    return _utf8_problem(value, what)


def prefix_problem(value: str) -> str | None:
    """A key prefix inside the container (trailing `/` already trimmed; "" is no prefix)."""
    if len(value) > MAX_PREFIX_LENGTH:
        return f"prefix is longer than {MAX_PREFIX_LENGTH} characters"
    if not _PREFIX_CHARS.fullmatch(value):
        return "prefix may contain only letters, digits, `.`, `_`, `-` and `/`"
    if ".." in value:  # also inside a segment: a prefix has no need of it
        return "prefix must not contain `..`, `.` segments or empty segments (`//`)"
    if not value:
        return None
    return _segments_problem(value, "prefix")


def key_problem(key: str) -> str | None:
    """An object key: relative, no dot or empty segments, at most Swift's 1024 bytes."""
    if not key:
        return "object key must not be empty"
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"object key is longer than {MAX_KEY_BYTES} bytes"
    return _segments_problem(key, "object key")
