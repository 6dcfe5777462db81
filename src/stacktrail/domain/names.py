"""Which ids may name a project's trail (they end up in index names and object keys)."""

from __future__ import annotations

import re
from typing import Final, TypeGuard

# Keystone project ids are 32 hex digits; domain ids may be names like `default`. No `_`
# (it separates the parts of an archive object's name) and no leading `-`: an id every
# sink can use, the same rule as the API's (trails.validation.PROJECT_ID_PATTERN).
_PROJECT_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")


def is_valid_project_id(value: object) -> TypeGuard[str]:
    """True for 1 to 64 ASCII letters, digits and `-`, starting with a letter or digit."""
    return type(value) is str and _PROJECT_ID.fullmatch(value) is not None
