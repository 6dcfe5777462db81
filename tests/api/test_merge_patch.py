from __future__ import annotations

from typing import Any

import pytest

from stacktrail.api.conditional import etag, parse_if_match
from stacktrail.api.merge_patch import merge_patch

# RFC 7386, appendix A
RFC_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_EXAMPLES)
def test_rfc_7386_examples(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_inputs_are_not_modified() -> None:
    target = {"a": {"b": 1}}
    patch = {"a": {"b": None, "c": 2}}
    merge_patch(target, patch)
    assert target == {"a": {"b": 1}}
    assert patch == {"a": {"b": None, "c": 2}}


@pytest.mark.parametrize(
    ("header", "versions"),
    [
        (None, None),
        ("*", None),
        (' "*" ', frozenset()),
        ('"3"', frozenset({3})),
        ('W/"3"', frozenset({3})),
        ('"1", "2" ,W/"7"', frozenset({1, 2, 7})),
        ("3", frozenset({3})),  # unquoted, as read from a body's version
        ("9" * 20, frozenset()),
        ("-3", frozenset()),
        ('"abc"', frozenset()),
        ('""', frozenset()),
        ("", frozenset()),
        ('"\u00b2"', frozenset()),  # a superscript two: a digit to str, not to int()
        ('"' + "9" * 5000 + '"', frozenset()),
        ('"1", "' + "9" * 20 + '"', frozenset({1})),
    ],
)
def test_if_match(header: str | None, versions: frozenset[int] | None) -> None:
    assert parse_if_match(header) == versions


def test_etag() -> None:
    assert etag(0) == '"0"'
    assert parse_if_match(etag(42)) == frozenset({42})
