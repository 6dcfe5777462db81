"""Which events a trail keeps: glob patterns and field rules, compiled once per trail.

A trail's selection has two kinds of entries, both `include` or `exclude`:

- patterns (`events.include` / `events.exclude`): globs matched against the event type,
  the CADF action and the target typeURI (any of the three);
- rules (`events.rules`): conditions on named fields, like CloudTrail's advanced event
  selectors: `event_type`, `service` (the observer typeURI, or the target's where the
  observer is the target, as keystonemiddleware reports), `action`, `outcome`,
  `target_type` (target typeURI). A service glob also matches what is under it:
  `compute` matches `service/compute` and `service/compute/servers`. Each condition is a
  list of globs of which one must match; every condition of a rule must hold.

An event is kept when nothing includes (no include pattern or rule) or something includes
it, and nothing excludes it: an exclusion always wins. stacktrail's own change events
(`stacktrail.trail.updated`, ...) are kept whatever the selection says, so a trail's
history can never be switched off by the trail itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import translate
from typing import Protocol

from stacktrail.domain.audit import NOTIFICATION_EVENT_TYPES

# the one-click group "read-only actions" (CADF taxonomy; Hermes' Logstash dropped the last two)
READ_ONLY_ACTIONS = ("read", "read/list", "read/get")
# the outcomes CADF defines
OUTCOMES = ("success", "failure", "pending", "unknown")
# stacktrail's own change events: never dropped by a selection
ALWAYS_KEPT_EVENT_TYPES = frozenset(NOTIFICATION_EVENT_TYPES.values())
SERVICE_PREFIX = "service/"  # `compute` also matches `service/compute` and what is under it
RULE_FIELDS = ("event_type", "service", "action", "outcome", "target_type")


class SelectableEvent(Protocol):
    """The fields a selection looks at (`SelectableEvent` has them, extracted once at decode)."""

    @property
    def event_type(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def target_type(self) -> str: ...
    @property
    def observer_type(self) -> str: ...


@dataclass(frozen=True, slots=True)
class EventFields:
    """A `SelectableEvent` of plain values (for callers without a decoded event)."""

    event_type: str = ""
    action: str = ""
    outcome: str = ""
    target_type: str = ""
    observer_type: str = ""


class Effect(StrEnum):
    INCLUDE = "include"
    EXCLUDE = "exclude"


@dataclass(frozen=True, slots=True)
class EventRule:
    """One field rule; an empty condition matches anything."""

    effect: Effect
    event_type: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    action: tuple[str, ...] = ()
    outcome: tuple[str, ...] = ()
    target_type: tuple[str, ...] = ()


def _compile(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for a list of globs (any of them), None for no list."""
    globs = list(dict.fromkeys(patterns))
    if not globs:
        return None
    return re.compile("|".join(f"(?:{translate(glob)})" for glob in globs))


def _service_regex(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """A service glob names a typeURI and everything under it, `service/` optional:
    `compute` matches `service/compute` and `service/compute/servers`."""
    if not patterns:
        return None
    optional = re.escape(SERVICE_PREFIX)
    alternatives = []
    for glob in dict.fromkeys(patterns):
        body = translate(glob).removesuffix(r"\Z")
        prefix = "" if glob.startswith(SERVICE_PREFIX) else f"(?:{optional})?"
        alternatives.append(f"(?:{prefix}{body}(?:/.*)?\\Z)")
    return re.compile("|".join(alternatives), re.DOTALL)


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    conditions: tuple[tuple[str, re.Pattern[str]], ...]  # (SelectableEvent attribute, regex)

    def matches(self, event: SelectableEvent) -> bool:
        return all(regex.match(getattr(event, name)) for name, regex in self.conditions)


def _compiled_rule(rule: EventRule) -> _CompiledRule:
    conditions: list[tuple[str, re.Pattern[str]]] = []
    for attribute, regex in (
        ("event_type", _compile(rule.event_type)),
        ("observer_type", _service_regex(rule.service)),
        ("action", _compile(rule.action)),
        ("outcome", _compile(rule.outcome)),
        ("target_type", _compile(rule.target_type)),
    ):
        if regex is not None:
            conditions.append((attribute, regex))
    return _CompiledRule(tuple(conditions))


@dataclass(frozen=True, slots=True)
class _Side:
    """The include (or exclude) entries of a selection, compiled."""

    patterns: re.Pattern[str] | None
    rules: tuple[_CompiledRule, ...]

    @property
    def empty(self) -> bool:
        return self.patterns is None and not self.rules

    def coverage(self, event_type: str) -> tuple[bool, bool]:
        """(every event of the type matches, some may): patterns judged on the type."""
        if self.patterns is not None and self.patterns.match(event_type):
            return True, True
        some = False
        for rule in self.rules:
            applies = True
            others = False
            for attribute, regex in rule.conditions:
                if attribute != "event_type":
                    others = True
                elif not regex.match(event_type):
                    applies = False
            if applies and not others:
                return True, True
            some = some or applies
        return False, some

    def matches(self, event: SelectableEvent) -> bool:
        regex = self.patterns
        if regex is not None and (
            (event.event_type and regex.match(event.event_type))
            or (event.action and regex.match(event.action))
            or (event.target_type and regex.match(event.target_type))
        ):
            return True
        return any(rule.matches(event) for rule in self.rules)


def _side(patterns: Sequence[str], rules: Iterable[EventRule], effect: Effect) -> _Side:
    return _Side(
        _compile(patterns), tuple(_compiled_rule(rule) for rule in rules if rule.effect == effect)
    )


@dataclass(frozen=True, slots=True)
class EventSelection:
    """A trail's selection as plain data, with its matcher compiled at construction."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    rules: tuple[EventRule, ...] = ()
    _include: _Side = field(init=False, repr=False, compare=False)
    _exclude: _Side = field(init=False, repr=False, compare=False)
    _everything: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        included = _side(self.include, self.rules, Effect.INCLUDE)
        excluded = _side(self.exclude, self.rules, Effect.EXCLUDE)
        object.__setattr__(self, "_include", included)
        object.__setattr__(self, "_exclude", excluded)
        object.__setattr__(self, "_everything", included.empty and excluded.empty)

    @property
    def everything(self) -> bool:
        """No pattern and no rule: every event is kept."""
        return self._everything

    def includes(self, event: SelectableEvent) -> bool:
        """Whether an include pattern or rule names the event (this beats the operator's
        default exclusion)."""
        return not self._include.empty and self._include.matches(event)

    def keeps(self, event: SelectableEvent, *, default_excluded: bool = False) -> bool:
        """Whether the trail records the event. `default_excluded`: the operator's default
        exclusion matched it, so only an include of the trail's own keeps it."""
        if event.event_type in ALWAYS_KEPT_EVENT_TYPES:
            return True
        if self._everything:
            return not default_excluded
        if not self._exclude.empty and self._exclude.matches(event):
            return False
        if self._include.empty:
            return not default_excluded
        return self._include.matches(event)

    def coverage(self, event_type: str) -> str:
        """How much of an event type the trail records: `all`, `some` (a rule on other
        fields decides per event) or `none`. Patterns are judged on the event type."""
        if event_type in ALWAYS_KEPT_EVENT_TYPES or self._everything:
            return "all"
        all_out, some_out = self._exclude.coverage(event_type)
        if all_out:
            return "none"
        if self._include.empty:
            kept = "all"
        else:
            all_in, some_in = self._include.coverage(event_type)
            kept = "all" if all_in else "some" if some_in else "none"
        return "some" if kept == "all" and some_out else kept

    def matches(
        self,
        event_type: str,
        action: str,
        target_type: str,
        *,
        observer_type: str = "",
        outcome: str = "",
    ) -> bool:
        """`keeps` for plain values."""
        return self.keeps(EventFields(event_type, action, outcome, target_type, observer_type))
