from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacktrail.ingest.normalise import (
    normalise_action,
    normalise_keystone,
    normalise_offset,
    normalise_reporterchain,
)


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
        # Logstash's rule: every other `.` becomes `/`
        ("creat.project", "creat/project"),
        ("Created.project", "Created/project"),
        ("revoked.token", "revoked/token"),
        ("update.user", "update/user"),
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


# Logstash's normalisation (sapcc/helm-charts openstack/hermes), one test per step.


def _decode(payload: dict[str, object], event_type: str = "identity.x") -> object:
    from stacktrail.ingest.decode import decode_message
    from tests.support.cadf_factory import encode, wrap_v1, wrap_v2

    return decode_message(encode(wrap_v2(wrap_v1(payload, event_type))))


def test_step1_the_payload_is_the_document_without_envelope_keys() -> None:
    from tests.support.cadf_factory import make_cadf

    event = _decode(make_cadf())
    for key in ("oslo.version", "publisher_id", "event_type", "message_id", "priority"):
        assert key not in event.body  # type: ignore[attr-defined]


def test_step2_past_tense_verbs_and_dots() -> None:
    assert normalise_action("disabled.domain") == "disable/domain"
    assert normalise_action("created.role_assignment.x") == "create/role_assignment/x"
    assert normalise_action("authenticate.success") == "authenticate/success"


def test_step3_offsets_gain_their_colon() -> None:
    assert normalise_offset("2024-05-17T09:41:27.512043+0200") == "2024-05-17T09:41:27.512043+02:00"


def test_step4_a_projects_own_event_reaches_its_trail() -> None:
    from tests.support.cadf_factory import make_cadf

    payload = make_cadf(initiator_project=None, target_type="data/security/project")
    payload["target"]["id"] = "cccc2222cccc2222cccc2222cccc2222"
    event = _decode(payload)
    assert event.target_project_id == "cccc2222cccc2222cccc2222cccc2222"  # type: ignore[attr-defined]


def test_step5_user_id_and_domain_name() -> None:
    cadf: dict[str, Any] = {
        "initiator": {"id": "hash", "user_id": "u1", "domain_name": "Default"},
        "target": {"id": "t"},
    }
    normalise_keystone(cadf)
    assert cadf["initiator"] == {"id": "u1", "domain": "Default"}


def test_step6_top_level_scope_goes_to_the_target_when_the_initiator_has_none() -> None:
    cadf: dict[str, Any] = {
        "initiator": {"id": "i"},
        "target": {"id": "t"},
        "project": "p",
        "domain": "d",
    }
    normalise_keystone(cadf)
    assert cadf["target"] == {"id": "t", "project_id": "p", "domain_id": "d"}
    scoped: dict[str, Any] = {
        "initiator": {"id": "i", "project_id": "q"},
        "target": {"id": "t"},
        "project": "p",
    }
    normalise_keystone(scoped)
    assert "project_id" not in scoped["target"]


def test_step7_role_assignments_become_attachments_and_the_user_the_target() -> None:
    cadf: dict[str, Any] = {
        "initiator": {"id": "i"},
        "target": {"id": "t", "typeURI": "data/security/account/user"},
        "role": "r1",
        "group": "g1",
        "inherited_to_projects": False,
        "user": "u9",
    }
    normalise_keystone(cadf)
    assert cadf["attachments"] == [
        {"name": "role_id", "typeURI": "/data/security/role", "content": "r1"},
        {"name": "group_id", "typeURI": "/data/security/group", "content": "g1"},
        {"name": "inherited_to_projects", "typeURI": "xs:boolean", "content": False},
    ]
    assert cadf["target"]["id"] == "u9"
