from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacktrail.routing import is_valid_project_id


@pytest.mark.parametrize(
    "value",
    [
        "90168d185e504b5580884a235ba31612",
        "default",
        "a",
        "A_b-9",
        "Default",
        "x" * 64,
        "-",
        "_",
    ],
)
def test_valid(value: str) -> None:
    assert is_valid_project_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x" * 65,
        "a/b",
        "a.b",
        "..",
        "a b",
        "a\n",  # `$` would accept this; the check must not
        "\na",
        "a\x00",
        "a:b",
        "a%2Fb",
        "é",
        "\u0661",  # a non-ASCII digit
        "\uff41",  # fullwidth a
        None,
        17,
        b"default",
        ["default"],
    ],
)
def test_invalid(value: object) -> None:
    assert not is_valid_project_id(value)


@given(st.text(max_size=80))
def test_valid_ids_are_safe_in_paths_and_index_names(value: str) -> None:
    if is_valid_project_id(value):
        assert value.isascii()
        assert 1 <= len(value) <= 64
        assert not set(value) & set('/\\.:%*?"<>| ,#\n\x00')
