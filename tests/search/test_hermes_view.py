"""The search document has the JSON types Hermes' Go struct decodes; the event is kept."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from stacktrail.search.hermes import convert, fits_hermes, hermes_view
from tests.support.hermes_queries import struct_problems

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
resource = st.fixed_dictionaries(
    {"id": json_values},
    optional={
        "typeURI": json_values,
        "name": json_values,
        "project_id": json_values,
        "domain_id": json_values,
        "host": json_values,
        "addresses": st.lists(st.dictionaries(st.sampled_from(["url", "name"]), json_values)),
        "attachments": json_values,
    },
)
events = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1),
        "eventTime": st.just("2026-01-01T00:00:00+00:00"),
        "initiator": resource,
        "target": resource,
        "observer": resource,
    },
    optional={
        "reason": st.dictionaries(st.sampled_from(["reasonCode", "reasonType"]), json_values),
        "outcome": json_values,
        "requestPath": json_values,
        "attachments": st.lists(
            st.dictionaries(st.sampled_from(["name", "typeURI", "content"]), json_values)
        ),
    },
)


@given(events)
def test_every_event_becomes_one_hermes_decodes_and_the_event_is_kept(
    event: dict[str, Any],
) -> None:
    received = copy.deepcopy(event)
    view = hermes_view(event)
    assert struct_problems(view) == []
    assert event == received  # the archive keeps the event as received


def test_numbers_become_their_text_and_lists_their_first_element() -> None:
    event = {
        "id": "e",
        "reason": {"reasonCode": 401, "reasonType": "HTTP"},
        "target": {"id": "t", "project_id": ["p1", "p2"], "name": []},
        "initiator": {"id": "i", "host": {"agent": True}},
        "observer": {"id": "o"},
        "attachments": [{"name": "role", "typeURI": "x", "content": {"a": [1]}}],
    }
    view = hermes_view(event)
    assert view["reason"]["reasonCode"] == "401"
    assert view["target"]["project_id"] == "p1"
    assert "name" not in view["target"]  # an empty list: nothing to keep
    assert view["initiator"]["host"]["agent"] == "true"
    assert view["attachments"][0]["content"] == '{"a":[1]}'
    assert event["reason"]["reasonCode"] == 401


def test_a_conforming_event_is_not_copied() -> None:
    event = {"id": "e", "initiator": {"id": "i"}, "target": {"id": "t"}, "observer": {"id": "o"}}
    assert hermes_view(event) is event


# mostly what Hermes' struct takes already, now and then a value of another type
mostly_strings = st.one_of(st.text(max_size=3), st.none(), st.text(max_size=3), json_values)
near_resource = st.fixed_dictionaries(
    {"id": st.text(max_size=3)},
    optional={
        "typeURI": mostly_strings,
        "project_id": mostly_strings,
        "host": st.none()
        | st.text(max_size=3)
        | st.dictionaries(st.sampled_from(["agent", "address"]), mostly_strings),
        "addresses": st.none()
        | mostly_strings
        | st.lists(st.dictionaries(st.sampled_from(["url", "name"]), mostly_strings) | st.text()),
        "attachments": st.none()
        | st.text(max_size=3)
        | st.lists(st.dictionaries(st.sampled_from(["name", "content"]), mostly_strings)),
    },
)
near_events = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=3)},
    optional={
        "initiator": st.none() | near_resource | mostly_strings,
        "target": near_resource,
        "observer": near_resource,
        "reason": st.none()
        | mostly_strings
        | st.dictionaries(st.sampled_from(["reasonCode", "reasonType"]), mostly_strings),
        "outcome": mostly_strings,
        "attachments": st.none()
        | mostly_strings
        | st.lists(st.dictionaries(st.sampled_from(["typeURI", "content"]), mostly_strings)),
    },
)


@given(near_events)
def test_the_fast_check_passes_exactly_the_events_the_rule_leaves_alone(
    event: dict[str, Any],
) -> None:
    """`hermes_view` skips the rule for events that fit; it must agree with the rule."""
    assert fits_hermes(event) == (convert(event) is event)
    assert hermes_view(event) == convert(event)
