"""Hermes-compatible normalisation of CADF events (what its Logstash pipeline did).

Keystone's own notifications name actions `<past tense verb>.<resource>`
(`created.project`, `deleted.role_assignment`); the CADF taxonomy and every other
OpenStack service use `<verb>/<resource>`. Python's `isoformat` with `%z`-style
formatting produces `+0000` offsets, which strict ISO 8601 readers (Elasticsearch's
`date_optional_time` among them) reject; they become `+00:00`.

Everything here mutates the freshly decoded event in place: no copies.
"""

from __future__ import annotations

from typing import Any

# Keystone's notification verbs (keystone.notifications.ACTIONS) and their CADF form.
_PAST_TENSE = {
    "created": "create",
    "deleted": "delete",
    "updated": "update",
    "disabled": "disable",
    "enabled": "enable",
}


def normalise_action(action: str) -> str:
    """`created.project` -> `create/project`; any other action is returned unchanged."""
    verb, dot, rest = action.partition(".")
    if dot:
        present = _PAST_TENSE.get(verb)
        if present is not None:
            return f"{present}/{rest}"
    return action


def normalise_offset(value: str) -> str:
    """`...T01:20:47.93+0000` -> `...T01:20:47.93+00:00`; other strings are returned as is.

    Only a trailing `+HHMM`/`-HHMM` (ASCII digits) is rewritten, as in Hermes.
    """
    if len(value) > 5 and value[-5] in "+-":
        digits = value[-4:]
        if digits.isascii() and digits.isdigit():
            return f"{value[:-2]}:{value[-2:]}"
    return value


def normalise_reporterchain(chain: Any) -> None:
    """Fix the offsets of `reporterTime` in a CADF reporterchain, in place.

    The chain is optional and not validated: entries that are not objects, or times
    that are not strings, are left alone.
    """
    if type(chain) is not list:
        return
    for step in chain:
        if type(step) is dict:
            when = step.get("reporterTime")
            if type(when) is str:
                fixed = normalise_offset(when)
                if fixed is not when:
                    step["reporterTime"] = fixed
