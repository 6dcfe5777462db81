"""Which ids may name a project's trail (they end up in index names and object keys)."""

from __future__ import annotations

import re
from typing import Final, TypeGuard

# Keystone project ids are 32 hex digits; domain ids may be names like `default`.
_PROJECT_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_valid_project_id(value: object) -> TypeGuard[str]:
    """True for a non-empty string of at most 64 ASCII letters, digits, `_` and `-`."""
    return type(value) is str and _PROJECT_ID.fullmatch(value) is not None
