"""ETags (the quoted version) and If-Match preconditions."""

from __future__ import annotations

from stacktrail.db.trail_store import IfMatch

_MAX_DIGITS = 19  # versions are 64-bit at most


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(header: str | None) -> IfMatch:
    """The versions an If-Match header accepts; None: no precondition (absent or `*`).

    An unparseable value accepts no version, so the request fails with 412. Weak tags
    (`W/"3"`) are accepted as well: proxies that compress responses weaken ETags; so is
    the bare version (`5`), which clients send when they read the version from a body.
    """
    if header is None:
        return None
    header = header.strip()
    if header == "*":
        return None
    versions: set[int] = set()
    for part in header.split(","):
        tag = part.strip().removeprefix("W/")
        if tag.isascii() and tag.isdigit():  # `If-Match: 5`: the version, unquoted
            tag = f'"{tag}"'
        digits = tag[1:-1]
        # ASCII only (str.isdigit() takes superscripts, which int() refuses), and no
        # longer than a version can be (int() refuses thousands of digits).
        if (
            len(tag) >= 3
            and tag[0] == tag[-1] == '"'
            and len(digits) <= _MAX_DIGITS
            and digits.isascii()
            and digits.isdigit()
        ):
            versions.add(int(digits))
    return frozenset(versions)
