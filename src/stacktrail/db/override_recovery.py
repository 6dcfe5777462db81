"""Which members of a complete stored trail document were the project's own choice.

Before trails were stored as overrides, every write stored the complete document, with
each member the client left out copied from the operator defaults of that moment. The
change history keeps every document written and every change of the defaults, so for
each member we find the write that gave it its current value and the defaults in force
then: a member equal to the default of its moment was inherited, any other was chosen.

Where the history cannot tell, the rule keeps the trail as it works today:
- a member whose value no recorded write explains (history missing or edited by hand) is
  compared with the current defaults; equal ones become inherited (their effective value
  does not move), the others stay overrides;
- a member whose default comes from the settings (archive.enabled, archive.prefix,
  archive.regions) is compared with the current settings, as their past values are not
  recorded; without the settings it stays an override;
- a value a client sent explicitly that equalled the default of its moment cannot be told
  from an inherited one: it becomes inherited.
Pure code; the migration `0005_trail_overrides` feeds it rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stacktrail.domain.durations import parse_duration

# members whose default never depended on anything
FIXED_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "events.include": [],
    "events.exclude": [],
    "events.rules": [],
    "archive.write_mode": "reseller",
    "archive.source": "ingest",
    "search.enabled": True,
}
# members whose default is an operator default (its name in the defaults document)
OPERATOR_DEFAULTS = {
    "retention_days": "default_retention_days",
    "archive.interval": "default_interval",
    "archive.container": "default_container",
    "archive.format": "default_format",
}
SETTINGS_MEMBERS = ("archive.enabled", "archive.prefix", "archive.regions")


@dataclass(frozen=True, slots=True)
class Change:
    id: int
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Recovery:
    overrides: dict[str, Any]
    guessed: tuple[str, ...]  # members decided without a recorded write (see above)


def leaves(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in doc.items():
        if isinstance(value, Mapping):
            found.update(leaves(value, f"{prefix}{name}."))
        else:
            found[f"{prefix}{name}"] = value
    return found


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for path, value in flat.items():
        *sections, name = path.split(".")
        target = doc
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = value
    return doc


def _same(path: str, a: Any, b: Any) -> bool:
    if path == "archive.interval" and isinstance(a, str) and isinstance(b, str):
        try:
            return parse_duration(a) == parse_duration(b)
        except ValueError:
            return a == b
    return bool(a == b)


def defaults_at(
    change_id: int | None, defaults_changes: Sequence[Change], current: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """The defaults document in force at the project change `change_id` (None: now)."""
    before = [c for c in defaults_changes if change_id is not None and c.id < change_id]
    if before and before[-1].new is not None:
        return before[-1].new
    after = [c for c in defaults_changes if change_id is None or c.id > change_id]
    if change_id is not None and after and after[0].old is not None:
        return after[0].old  # the defaults the first later change replaced
    return current


def recover(
    config: Mapping[str, Any],
    history: Sequence[Change],
    defaults_changes: Sequence[Change],
    current_defaults: Mapping[str, Any] | None,
    settings_values: Mapping[str, Any] | None,
) -> Recovery:
    """The overrides of a complete stored document. `history`: the project's changes,
    `defaults_changes`: the defaults' changes, both oldest first; `current_defaults`: the
    defaults document in force now (None: unknown); `settings_values`: the current values
    of `SETTINGS_MEMBERS` (None: unknown)."""
    current = leaves(config)
    kept: dict[str, Any] = {}
    guessed: list[str] = []
    for path, value in current.items():
        written_at: int | None = None
        for change in reversed(history):
            if change.new is None or not _same(path, leaves(change.new).get(path), value):
                break
            written_at = change.id
        if path in FIXED_DEFAULTS:
            default: Any = FIXED_DEFAULTS[path]
        elif path in OPERATOR_DEFAULTS:
            if written_at is None:
                guessed.append(path)
            then = defaults_at(written_at, defaults_changes, current_defaults)
            default = None if then is None else then.get(OPERATOR_DEFAULTS[path])
        elif path in SETTINGS_MEMBERS:
            default = None if settings_values is None else settings_values.get(path)
            guessed.append(path)
        else:
            default = None
        if default is None or not _same(path, value, default):
            kept[path] = value
    return Recovery(nest(kept), tuple(guessed))
