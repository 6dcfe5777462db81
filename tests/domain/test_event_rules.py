"""A trail's event selection: patterns and field rules, include/exclude, always-kept events."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from stacktrail.config import Settings
from stacktrail.domain.defaults import OperatorDefaults
from stacktrail.domain.document import TrailOverrides, resolve
from stacktrail.domain.event_rules import (
    ALWAYS_KEPT_EVENT_TYPES,
    OUTCOMES,
    READ_ONLY_ACTIONS,
    Effect,
    EventFields,
    EventRule,
    EventSelection,
)

SETTINGS = Settings()


def selection(events: dict[str, Any]) -> EventSelection:
    """A selection as the API stores and the pipeline reads it."""
    overrides = TrailOverrides.model_validate({"events": events})
    effective = resolve(overrides.document(), OperatorDefaults.from_settings(SETTINGS), SETTINGS)
    return effective.to_trail("p1").events


def api_call(
    action: str, service: str = "service/compute", outcome: str = "success"
) -> EventFields:
    """What keystonemiddleware's audit reports for one API call."""
    return EventFields(
        event_type="audit.http.response",
        action=action,
        outcome=outcome,
        target_type="compute/server",
        observer_type=service,
    )


NO_READS_OF_COMPUTE = {
    "rules": [{"effect": "exclude", "service": ["compute"], "action": list(READ_ONLY_ACTIONS)}]
}


def test_no_reads_of_compute_drops_reads_of_compute_only() -> None:
    rules = selection(NO_READS_OF_COMPUTE)
    assert not rules.keeps(api_call("read"))
    assert not rules.keeps(api_call("read/list"))
    assert not rules.keeps(api_call("read/get"))
    assert rules.keeps(api_call("create"))
    assert rules.keeps(api_call("read", service="service/network"))


def test_only_failures() -> None:
    rules = selection({"rules": [{"effect": "include", "outcome": ["failure"]}]})
    assert rules.keeps(api_call("create", outcome="failure"))
    assert not rules.keeps(api_call("create", outcome="success"))


def test_conditions_of_a_rule_all_hold_and_one_glob_of_each_suffices() -> None:
    rules = selection(
        {
            "rules": [
                {
                    "effect": "exclude",
                    "service": ["network", "compute"],
                    "action": ["delete*"],
                    "target_type": ["compute/*"],
                }
            ]
        }
    )
    assert not rules.keeps(api_call("delete"))
    assert not rules.keeps(api_call("delete/server", service="service/network"))
    assert rules.keeps(api_call("delete", service="service/image"))
    assert rules.keeps(api_call("update"))


def test_service_matches_the_observer_type_and_what_is_under_it() -> None:
    for service in ("compute", "service/compute", "service/comp*", "comp*"):
        rules = EventSelection(rules=(EventRule(Effect.EXCLUDE, service=(service,)),))
        assert not rules.keeps(api_call("create")), service
        assert not rules.keeps(api_call("create", service="service/compute/servers")), service
        assert rules.keeps(api_call("create", service="service/network")), service
        if "*" not in service:
            assert rules.keeps(api_call("create", service="service/computer")), service


def test_exclusion_wins_over_inclusion() -> None:
    rules = selection(
        {
            "include": ["audit.http.response"],
            "rules": [{"effect": "exclude", "outcome": ["failure"]}],
        }
    )
    assert rules.keeps(api_call("read"))
    assert not rules.keeps(api_call("read", outcome="failure"))


def test_patterns_and_rules_include_together() -> None:
    rules = selection(
        {"include": ["identity.*"], "rules": [{"effect": "include", "service": ["compute"]}]}
    )
    assert rules.keeps(api_call("read"))
    assert rules.keeps(EventFields("identity.project.created", "create/project"))
    assert not rules.keeps(api_call("read", service="service/network"))


@pytest.mark.parametrize("event_type", sorted(ALWAYS_KEPT_EVENT_TYPES))
def test_the_trails_own_change_events_are_always_kept(event_type: str) -> None:
    change = EventFields(event_type, "update/trail", "success", "service/audit/trail")
    for events in (
        {"exclude": ["*"]},
        {"include": ["nothing.matches"]},
        {"rules": [{"effect": "exclude", "event_type": ["stacktrail.*"]}]},
        {"rules": [{"effect": "include", "outcome": ["failure"]}]},
    ):
        assert selection(events).keeps(change), events
    assert EventSelection().keeps(change, default_excluded=True)


def test_operator_default_exclusion_yields_to_a_trails_include_rule() -> None:
    read = api_call("read/list")
    assert not EventSelection().keeps(read, default_excluded=True)
    kept = selection({"rules": [{"effect": "include", "action": ["read/*"]}]})
    assert kept.keeps(read, default_excluded=True)
    assert not selection({"exclude": ["delete"]}).keeps(read, default_excluded=True)


def test_the_stored_document_leaves_out_conditions_not_given() -> None:
    overrides = TrailOverrides.model_validate({"events": NO_READS_OF_COMPUTE})
    assert overrides.document() == {"events": NO_READS_OF_COMPUTE}
    assert "events.rules" in overrides.fields()


def test_existing_pattern_documents_still_read_the_same() -> None:
    rules = selection({"include": ["identity.*"], "exclude": ["read/*"]})
    assert rules.keeps(EventFields("identity.project.created", "create/project"))
    assert not rules.keeps(EventFields("identity.user.read", "read/list"))
    assert rules.matches("identity.project.created", "create/project", "data/security")


def _paths(events: dict[str, Any]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as caught:
        TrailOverrides.model_validate({"events": events})
    return [error["loc"] for error in caught.value.errors()]


def test_refusals_name_the_field_path_of_each_bad_value() -> None:
    paths = _paths(
        {
            "rules": [
                {"effect": "exclude"},
                {"effect": "drop", "action": ["read", "a["], "outcome": ["bad"]},
                {"effect": "include", "servce": ["compute"]},
            ]
        }
    )
    assert paths == [
        ("events", "rules", 0),
        ("events", "rules", 1, "effect"),
        ("events", "rules", 1, "action", 1),
        ("events", "rules", 1, "outcome", 0),
        ("events", "rules", 2, "servce"),
    ]


def test_every_limit_is_enforced() -> None:
    many = [{"effect": "exclude", "action": ["a"]}] * 51
    assert _paths({"rules": many}) == [("events", "rules")]
    assert _paths({"rules": [{"effect": "exclude", "action": ["a"] * 101}]}) == [
        ("events", "rules", 0, "action")
    ]
    assert _paths({"rules": [{"effect": "exclude", "action": ["x" * 257]}]}) == [
        ("events", "rules", 0, "action", 0)
    ]


# --- the compiled matcher agrees with the plain definition

_word = st.sampled_from(["read", "read/list", "create", "compute", "network", "compute/server"])
_glob = st.one_of(_word, _word.map(lambda w: w[:3] + "*"), st.just("*"))
_rule = st.builds(
    EventRule,
    effect=st.sampled_from(list(Effect)),
    event_type=st.lists(st.sampled_from(["audit.http.response", "identity.*"]), max_size=1).map(
        tuple
    ),
    service=st.lists(_glob, max_size=2).map(tuple),
    action=st.lists(_glob, max_size=2).map(tuple),
    outcome=st.lists(st.sampled_from(OUTCOMES), max_size=2).map(tuple),
    target_type=st.lists(_glob, max_size=2).map(tuple),
)
_event = st.builds(
    EventFields,
    event_type=st.sampled_from(["audit.http.response", "identity.project.created"]),
    action=_word,
    outcome=st.sampled_from(OUTCOMES),
    target_type=_word,
    observer_type=st.sampled_from(
        ["service/compute", "service/compute/servers", "service/network", "compute", ""]
    ),
)


def _plain_service(globs: tuple[str, ...], value: str) -> bool:
    """A glob names a service typeURI (`service/` optional) and everything under it."""
    parts = value.split("/")
    heads = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    return any(
        fnmatchcase(head, glob)
        or (not glob.startswith("service/") and fnmatchcase(head, "service/" + glob))
        for glob in globs
        for head in heads
    )


def _plain_rule(rule: EventRule, event: EventFields) -> bool:
    if rule.service and not _plain_service(rule.service, event.observer_type):
        return False
    return all(
        not globs or any(fnmatchcase(value, glob) for glob in globs)
        for globs, value in (
            (rule.event_type, event.event_type),
            (rule.action, event.action),
            (rule.outcome, event.outcome),
            (rule.target_type, event.target_type),
        )
    )


def _plain_keeps(
    include: list[str], exclude: list[str], rules: list[EventRule], event: EventFields
) -> bool:
    fields = [f for f in (event.event_type, event.action, event.target_type) if f]

    def named(patterns: list[str]) -> bool:
        return any(fnmatchcase(f, p) for p in patterns for f in fields)

    includes = [r for r in rules if r.effect == Effect.INCLUDE]
    excludes = [r for r in rules if r.effect == Effect.EXCLUDE]
    if named(exclude) or any(_plain_rule(r, event) for r in excludes):
        return False
    if not include and not includes:
        return True
    return named(include) or any(_plain_rule(r, event) for r in includes)


@given(
    include=st.lists(_glob, max_size=2),
    exclude=st.lists(_glob, max_size=2),
    rules=st.lists(_rule, max_size=3),
    event=_event,
)
def test_compiled_selection_matches_the_definition(
    include: list[str], exclude: list[str], rules: list[EventRule], event: EventFields
) -> None:
    compiled = EventSelection(tuple(include), tuple(exclude), tuple(rules))
    assert compiled.keeps(event) == _plain_keeps(include, exclude, rules, event)
