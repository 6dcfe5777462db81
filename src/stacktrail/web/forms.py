"""HTML form fields <-> API documents, and the API's refusals (422) as messages per field.

The UI converts only shapes (checkbox -> boolean, one pattern per line -> list); every
rule on the values is the API's. A value that is not even of the right type (a
retention of `abc`) is sent as typed, so the API's own message comes back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from stacktrail.domain.event_rules import READ_ONLY_ACTIONS
from stacktrail.domain.validation import MAX_RULES

MAX_EVENT_ROWS = 5000
MAX_RULE_ROWS = MAX_RULES
EVENT_FIELD = "event:"  # one radio group per catalogued event type, named by the type
MAX_FORM_FIELDS = MAX_EVENT_ROWS + 100

_FIELD_WORDS = {
    "default_retention_days": "the default retention",
    "max_retention_days": "the longest retention",
    "retention_days": "retention",
    "default_interval": "the default interval",
    "min_interval": "the shortest interval",
    "archive.source `search`": "exporting from search",
    "archive.source": "the source",
    "search.enabled": "searchable events",
}
_FIELD_WORD = re.compile(
    "|".join(re.escape(name) for name in sorted(_FIELD_WORDS, key=len, reverse=True))
)


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def checked(form: FormData, name: str) -> bool:
    return isinstance(form.get(name), str)


def small_int(value: str, max_digits: int = 11) -> int | None:
    """A non-negative whole number of ASCII digits (str.isdigit() also takes e.g. `²`,
    which int() refuses), else None."""
    if len(value) <= max_digits and value.isascii() and value.isdigit():
        return int(value)
    return None


def int_or_raw(value: str) -> int | str:
    """A whole number when it is one, else the text as typed (the API then refuses it)."""
    return int(value) if re.fullmatch(r"-?[0-9]{1,12}", value) else value


def lines(value: str) -> list[str]:
    """Non-empty lines (commas also separate), without duplicates, in order."""
    items = [item.strip() for item in re.split(r"[\r\n,]+", value)]
    return list(dict.fromkeys(item for item in items if item))


def settings_patch(form: FormData, *, offer_search: bool, offer_source: bool) -> dict[str, Any]:
    archive: dict[str, Any] = {
        "enabled": checked(form, "archive.enabled"),
        "container": text(form, "archive.container"),
        "prefix": text(form, "archive.prefix"),
        "format": text(form, "archive.format"),
        "interval": text(form, "archive.interval"),
        "regions": [r for r in form.getlist("archive.regions") if isinstance(r, str)],
        "write_mode": text(form, "archive.write_mode"),
    }
    if offer_source:
        archive["source"] = text(form, "archive.source")
    patch: dict[str, Any] = {
        "enabled": checked(form, "enabled"),
        "retention_days": int_or_raw(text(form, "retention_days")),
        "archive": archive,
    }
    if offer_search:
        patch["search"] = {"enabled": checked(form, "search.enabled")}
    return patch


INHERIT_FIELD = "inherit"  # checkboxes "use the cloud's default", one per trail member


def _flat(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in doc.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _same(path: str, sent: Any, shown: Any) -> bool:
    if path == "archive.regions" and isinstance(sent, list) and isinstance(shown, list):
        return set(sent) == set(shown)
    return bool(sent == shown)


def with_inheritance(
    patch: Mapping[str, Any],
    form: FormData,
    current: Mapping[str, Any],
    members: Iterable[str],
) -> dict[str, Any]:
    """The patch as overrides: a member ticked "use the cloud's default" is cleared (null);
    a member that follows the cloud's default and was sent as shown is left out, so it keeps
    following the default; every other member sent becomes an override. `members`: the
    members this form shows."""
    inherited = set(current.get("inherited") or ())
    shown = _flat(current)
    allowed = set(members)
    cleared = {v for v in form.getlist(INHERIT_FIELD) if isinstance(v, str) and v in allowed}
    result: dict[str, Any] = {}
    flat = _flat(patch)
    for path in dict.fromkeys([*flat, *sorted(cleared)]):
        if path in cleared:
            value = None
        elif path in inherited and _same(path, flat[path], shown.get(path)):
            continue
        else:
            value = flat[path]
        *sections, name = path.split(".")
        target = result
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = value
    return result


def without_nulls(patch: Mapping[str, Any]) -> dict[str, Any]:
    """The members a patch sets (a draft shows the current value where it clears one)."""
    return {
        name: without_nulls(value) if isinstance(value, Mapping) else value
        for name, value in patch.items()
        if value is not None
    }


RULE_FIELD = "rule."  # `rule.<n>.<member>`: one row of the rules editor per rule
RULE_LISTS = ("service", "action", "target_type", "event_type")


def _rule_of(form: FormData, index: int) -> dict[str, Any] | None:
    """Row `index` of the rules editor as a rule document; None for a row not sent, a
    removed one, or the empty "add a rule" row."""
    prefix = f"{RULE_FIELD}{index}."
    effect = text(form, prefix + "effect")
    if not effect or checked(form, prefix + "remove"):
        return None
    rule: dict[str, Any] = {"effect": effect}
    for name in RULE_LISTS:
        values = lines(text(form, prefix + name))
        if name == "action" and checked(form, prefix + "read_only"):
            values = list(dict.fromkeys([*READ_ONLY_ACTIONS, *values]))
        if values:
            rule[name] = values
    outcomes = [v for v in form.getlist(prefix + "outcome") if isinstance(v, str) and v]
    if outcomes:
        rule["outcome"] = list(dict.fromkeys(outcomes))
    if len(rule) == 1 and not checked(form, prefix + "existing"):
        return None  # the empty row for a new rule
    return rule


def events_patch(form: FormData) -> dict[str, Any]:
    """The toggles (`event:<type>` = include/exclude/empty), the typed patterns and the
    rules editor's rows."""
    include: list[str] = []
    exclude: list[str] = []
    rows: set[int] = set()
    for key, value in form.multi_items():
        if key.startswith(RULE_FIELD):
            number = key[len(RULE_FIELD) :].split(".", 1)[0]
            index = small_int(number, 3)
            if index is not None and index <= MAX_RULE_ROWS:
                rows.add(index)
            continue
        if not key.startswith(EVENT_FIELD) or not isinstance(value, str):
            continue
        name = key[len(EVENT_FIELD) :]
        if value == "include":
            include.append(name)
        elif value == "exclude":
            exclude.append(name)
    include.extend(lines(text(form, "events.include_other")))
    exclude.extend(lines(text(form, "events.exclude_other")))
    rules = [rule for index in sorted(rows) if (rule := _rule_of(form, index)) is not None]
    return {
        "events": {
            "include": list(dict.fromkeys(include)),
            "exclude": list(dict.fromkeys(exclude)),
            "rules": rules,
        }
    }


@dataclass(frozen=True, slots=True)
class RuleRow:
    """One row of the rules editor (the last one, `new`, adds a rule)."""

    index: int
    effect: str
    read_only: bool
    lists: dict[str, str]  # member -> the globs, one per line
    outcomes: tuple[str, ...]
    words: str
    new: bool = False


def rule_rows(rules: Sequence[Mapping[str, Any]], words: Any) -> list[RuleRow]:
    rows = []
    for index, rule in enumerate(rules):
        actions = [str(a) for a in rule.get("action") or []]
        read_only = set(READ_ONLY_ACTIONS) <= set(actions)
        if read_only:
            actions = [a for a in actions if a not in READ_ONLY_ACTIONS]
        lists = {name: "\n".join(str(v) for v in rule.get(name) or []) for name in RULE_LISTS}
        lists["action"] = "\n".join(actions)
        rows.append(
            RuleRow(
                index=index,
                effect=str(rule.get("effect") or ""),
                read_only=read_only,
                lists=lists,
                outcomes=tuple(str(o) for o in rule.get("outcome") or ()),
                words=str(words(rule)),
            )
        )
    if len(rows) < MAX_RULE_ROWS:
        blank = {name: "" for name in RULE_LISTS}
        rows.append(RuleRow(len(rows), "exclude", False, blank, (), "", new=True))
    return rows


def defaults_body(form: FormData) -> dict[str, Any]:
    return {
        "default_retention_days": int_or_raw(text(form, "default_retention_days")),
        "max_retention_days": int_or_raw(text(form, "max_retention_days")),
        "default_interval": text(form, "default_interval"),
        "min_interval": text(form, "min_interval"),
        "default_container": text(form, "default_container"),
        "default_format": text(form, "default_format"),
    }


@dataclass(frozen=True, slots=True)
class EventRow:
    index: int
    name: str
    count: int
    last_seen: str
    choice: str  # "", "include" or "exclude"
    recorded: str  # now: "all", "some" or "none" of its events
    after: str = ""  # after saving the draft under review, else ""


@dataclass(slots=True)
class EventSelection:
    rows: list[EventRow] = field(default_factory=list)
    other_include: list[str] = field(default_factory=list)
    other_exclude: list[str] = field(default_factory=list)

    def changed(self) -> list[EventRow]:
        """The rows whose recording the draft under review changes."""
        return [row for row in self.rows if row.after and row.after != row.recorded]


def event_selection(
    catalogue: Sequence[Mapping[str, Any]],
    include: Sequence[str],
    exclude: Sequence[str],
    recorded: Any,
    after: Any = None,
) -> EventSelection:
    """The catalogue as rows with their toggle and how much of each type is recorded
    (`recorded(name)` now, `after(name)` with the draft); patterns naming no catalogued
    type apart."""
    names = [str(entry["event_type"]) for entry in catalogue][:MAX_EVENT_ROWS]
    known = set(names)
    selection = EventSelection()
    for index, entry in enumerate(catalogue[:MAX_EVENT_ROWS]):
        name = str(entry["event_type"])
        choice = "exclude" if name in exclude else "include" if name in include else ""
        selection.rows.append(
            EventRow(
                index=index,
                name=name,
                count=int(entry.get("count") or 0),
                last_seen=str(entry.get("last_seen") or ""),
                choice=choice,
                recorded=str(recorded(name)),
                after=str(after(name)) if after is not None else "",
            )
        )
    selection.other_include = [p for p in include if p not in known or p in exclude]
    selection.other_exclude = [p for p in exclude if p not in known]
    return selection


# --- 422 errors (problem documents: `errors` entries with `field`, `code`, `detail`)


_RULE_PATH = re.compile(r"^(events\.rules\[[0-9]+\](?:\.[a-z_]+)?)")


def field_of(path: str) -> str:
    """The form field showing a refused value: `archive.regions[0]` -> `archive.regions`,
    `events.rules[1].action[0]` -> `events.rules[1].action` (each rule is its own row);
    `""` for the whole body."""
    rule = _RULE_PATH.match(path)
    if rule:
        return rule.group(1)
    return re.sub(r"\[[0-9]+\]", "", path)


def _bound(error: Mapping[str, Any], key: str) -> str:
    ctx = error.get("context")
    return str(ctx.get(key, "")) if isinstance(ctx, Mapping) else ""


def message_of(error: Mapping[str, Any]) -> str:
    kind = str(error.get("code", ""))
    msg = str(error.get("detail", ""))
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "Enter a whole number."
    if kind == "greater_than_equal":
        return f"Enter a number of at least {_bound(error, 'ge')}."
    if kind == "less_than_equal":
        return f"Enter a number of at most {_bound(error, 'le')}."
    if kind == "too_short":
        return "Choose at least one."
    if kind == "too_long":
        return f"Too many entries (at most {_bound(error, 'max_length')})."
    if kind == "string_too_short":
        return "This must not be empty."
    if kind == "string_too_long":
        return f"This is too long (at most {_bound(error, 'max_length')} characters)."
    if kind in ("enum", "literal_error"):
        return f"Choose one of the offered options ({_bound(error, 'expected')})."
    if kind == "string_pattern_mismatch":
        return "Use only letters, digits, `-` and `_`."
    msg = _FIELD_WORD.sub(lambda m: _FIELD_WORDS[m.group(0)], msg)
    return msg[:1].upper() + msg[1:] if msg else "This value is not accepted."


def errors_by_field(errors: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Messages per form field, each once and each its own entry (shown one per line)."""
    result: dict[str, list[str]] = {}
    for error in errors:
        messages = result.setdefault(field_of(str(error.get("field") or "")), [])
        message = message_of(error)
        if message not in messages:
            messages.append(message)
    return result
