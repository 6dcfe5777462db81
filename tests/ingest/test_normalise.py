from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacktrail.ingest.normalise import normalise_action, normalise_offset, normalise_reporterchain


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("created.project", "create/project"),
        ("deleted.role_assignment", "delete/role_assignment"),
        ("updated.user", "update/user"),
        ("disabled.domain", "disable/domain"),
        ("enabled.domain", "enable/domain"),
        ("created.OS-TRUST:trust", "create/OS-TRUST:trust"),
        ("created.OS-FEDERATION:identity_provider", "create/OS-FEDERATION:identity_provider"),
        # not keystone's past tense: unchanged
        ("authenticate", "authenticate"),
        ("authenticate/login", "authenticate/login"),
        ("read/list", "read/list"),
        ("create/project", "create/project"),
        ("create", "create"),
        ("created", "created"),
        ("creat.project", "creat.project"),
        ("Created.project", "Created.project"),
        ("revoked.token", "revoked.token"),
        ("update.user", "update.user"),
        ("", ""),
    ],
)
def test_action(action: str, expected: str) -> None:
    assert normalise_action(action) == expected


def test_action_unchanged_is_the_same_object() -> None:
    action = "read/list"
    assert normalise_action(action) is action


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2016-11-11T18:31:11.156356+0000", "2016-11-11T18:31:11.156356+00:00"),
        ("2014-01-17T23:23:38+0530", "2014-01-17T23:23:38+05:30"),
        ("2014-01-17T23:23:38-0800", "2014-01-17T23:23:38-08:00"),
        ("2014-01-17T23:23:38.109989+00:00", "2014-01-17T23:23:38.109989+00:00"),
        ("2014-01-17T23:23:38Z", "2014-01-17T23:23:38Z"),
        ("2014-01-17T23:23:38", "2014-01-17T23:23:38"),
        ("2014-01-17", "2014-01-17"),
        ("+0000", "+0000"),
        ("2014-01-17T23:23:38+00", "2014-01-17T23:23:38+00"),
        # digits, but not ASCII ones (Devanagari and Arabic-Indic zeros)
        (
            "2014-01-17T23:23:38+\u0966\u0966\u0966\u0660",
            "2014-01-17T23:23:38+\u0966\u0966\u0966\u0660",
        ),
        ("", ""),
    ],
)
def test_offset(value: str, expected: str) -> None:
    assert normalise_offset(value) == expected


def test_reporterchain_is_fixed_in_place() -> None:
    chain: list[Any] = [
        {"reporterTime": "2014-01-17T23:23:38.154152+0000", "role": "modifier"},
        {"reporterTime": "2014-01-17T23:23:39+00:00", "role": "relay"},
        {"role": "observer"},
        {"reporterTime": 17},
        "not an object",
        None,
    ]
    normalise_reporterchain(chain)
    assert chain == [
        {"reporterTime": "2014-01-17T23:23:38.154152+00:00", "role": "modifier"},
        {"reporterTime": "2014-01-17T23:23:39+00:00", "role": "relay"},
        {"role": "observer"},
        {"reporterTime": 17},
        "not an object",
        None,
    ]


@pytest.mark.parametrize("chain", [None, "x", 3, {"reporterTime": "2014-01-17T23:23:38+0000"}])
def test_reporterchain_that_is_not_a_list_is_left_alone(chain: Any) -> None:
    before = repr(chain)
    normalise_reporterchain(chain)
    assert repr(chain) == before


@given(st.text())
def test_action_is_idempotent(action: str) -> None:
    once = normalise_action(action)
    assert normalise_action(once) == once


@given(st.text())
def test_offset_is_idempotent(value: str) -> None:
    once = normalise_offset(value)
    assert normalise_offset(once) == once
