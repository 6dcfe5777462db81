from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacktrail.archive.layout import InvalidName, check_project_id
from stacktrail.domain.names import is_valid_project_id
from stacktrail.domain.validation import PROJECT_ID_PATTERN


@pytest.mark.parametrize(
    "value",
    [
        "90168d185e504b5580884a235ba31612",
        "default",
        "a",
        "a-b-9",
        "x" * 64,
        "0-a",
    ],
)
def test_valid(value: str) -> None:
    assert is_valid_project_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x" * 65,
        "-",
        "_",
        "A_b-9",  # `_` separates the parts of an archive object's name
        "A-b-9",  # upper case folds onto `a-b-9`'s index (index names are lower case)
        "Default",
        "90168D185E504B5580884A235BA31612",
        "-a",
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
        assert value == value.lower()  # case-exact: nothing folds onto another id


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}", fullmatch=True))
def test_an_id_that_would_fold_is_not_a_project_id(value: str) -> None:
    assert is_valid_project_id(value) == (value == value.lower())


@given(st.text(alphabet="abAB01-_.:/ é", max_size=70) | st.text(max_size=70))
def test_routing_the_api_and_the_archive_agree_on_project_ids(value: str) -> None:
    # An id the router sends events to must be one the API configures and the archive
    # can name objects after: otherwise its events would be dead-lettered for ever.
    try:
        check_project_id(value)
        archivable = True
    except InvalidName:
        archivable = False
    assert is_valid_project_id(value) == archivable
    assert is_valid_project_id(value) == bool(re.fullmatch(PROJECT_ID_PATTERN, value))
