"""Which ids may name a project's trail (they end up in index names and object keys).

The one id rule: the API's path patterns (trails.validation) are taken from here.
"""

from __future__ import annotations

import re
from typing import Final, TypeGuard

# Keystone project ids are 32 lower-case hex digits; domain ids may be names like
# `default`. Case-exact: index names are lower case, so an id with an upper-case letter
# would fold onto another project's index (and a phantom `AUTH_<ID>` account); such ids
# are not project ids. No `_` (it separates the parts of an archive object's name) and
# no leading `-`.
PROJECT_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,63}$"
PROJECT_ID_PART_PATTERN: Final = r"^[a-z0-9-]{1,64}$"  # a search for part of an id
_PROJECT_ID: Final = re.compile(PROJECT_ID_PATTERN.strip("^$"))


def is_valid_project_id(value: object) -> TypeGuard[str]:
    """True for 1 to 64 lower-case ASCII letters, digits and `-`, not starting with `-`."""
    return type(value) is str and _PROJECT_ID.fullmatch(value) is not None


# pycadf's stand-in for an unknown id (`cadf.UNKNOWN`) and its kin: placeholders that
# look like ids but name no project
PLACEHOLDERS: Final = frozenset({"unknown", "None", "null"})


def owner_id(value: object) -> str | None:
    """`value` as the id of an owning project or domain; None for absent values,
    placeholders and anything that is not a project id."""
    if not is_valid_project_id(value) or value in PLACEHOLDERS:
        return None
    return value
