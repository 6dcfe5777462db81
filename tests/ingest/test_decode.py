from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stacktrail.domain.event import AuditEvent, DecodeError
from stacktrail.ingest.decode import DEFAULT_MAX_BYTES, decode_message, encode_event
from stacktrail.ingest.normalise import normalise_action
from tests.support.cadf_factory import (
    encode,
    load_sample,
    make_cadf,
    make_notification,
    sample_names,
    wrap_v1,
    wrap_v2,
)

# --------------------------------------------------------------------------- real samples


@dataclass(frozen=True)
class Expected:
    id: str
    time: datetime
    event_type: str  # as sent; bare samples are wrapped with "audit.cadf"
    action: str
    outcome: str
    target_type: str
    initiator_project_id: str | None
    target_project_id: str | None
    initiator_domain_id: str | None
    event_time: str  # normalised body["eventTime"]
    reporter_time: str | None = None  # normalised body["reporterchain"][0]["reporterTime"]


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


EXPECTED = {
    "02_hermes_doc_neutron_port_create.json": Expected(
        id="7189ce80-6e73-5ad9-bdc5-dcc47f176378",
        time=_utc("2017-12-18T18:27:32.352893+00:00"),
        event_type="audit.cadf",
        action="create",
        outcome="success",
        target_type="network/port",
        initiator_project_id="ba8304b657fb4568addf7116f41b4a16",
        target_project_id="ba8304b657fb4568addf7116f41b4a16",
        initiator_domain_id=None,
        event_time="2017-12-18T18:27:32.352893+00:00",
    ),
    "03_keystone_notif_project_created.json": Expected(
        id="openstack:f5352d7b-bee6-4c22-8213-450e7b646e9f",
        time=_utc("2014-02-14T01:20:47.932842+00:00"),
        event_type="identity.project.created",
        action="create/project",
        outcome="success",
        target_type="data/security/project",
        initiator_project_id=None,
        target_project_id="openstack:1c2fc591-facb-4479-a327-520dade1ea15",  # its own event
        initiator_domain_id=None,
        event_time="2014-02-14T01:20:47.932842+00:00",
    ),
    "04_keystone_notif_federated_authenticate.json": Expected(
        id="openstack:f5352d7b-bee6-4c22-8213-450e7b646e9f",
        time=_utc("2014-02-14T01:20:47.932842+00:00"),
        event_type="identity.authenticate",
        action="authenticate",
        outcome="success",
        target_type="service/security/account/user",
        initiator_project_id=None,
        target_project_id=None,
        initiator_domain_id=None,
        event_time="2014-02-14T01:20:47.932842+00:00",
    ),
    "06_keystone_notif_auth_failure_password_expired.json": Expected(
        id="78cd795f-5850-532f-9ab1-5adb04e30c0f",
        time=_utc("2016-11-11T18:31:11.156356+00:00"),
        event_type="identity.authenticate",
        action="authenticate",
        outcome="failure",
        target_type="service/security/account/user",
        initiator_project_id=None,
        target_project_id=None,
        initiator_domain_id=None,
        event_time="2016-11-11T18:31:11.156356+00:00",
    ),
    "08_pycadf_spec_event_serialisation.json": Expected(
        id="a80dc5ee-be83-48ad-ad5e-6577f2217637",
        time=_utc("2014-01-17T23:23:38.109989+00:00"),
        event_type="audit.cadf",
        action="read",
        outcome="success",
        target_type="service/compute/servers",
        initiator_project_id="e55b158759854ea6a7852aa76632c6c1",
        target_project_id=None,
        initiator_domain_id=None,
        event_time="2014-01-17T23:23:38.109989+00:00",
        reporter_time="2014-01-17T23:23:38.154152+00:00",
    ),
    "09_octavia_doc_kmw_audit_http_response.json": Expected(
        id="8cf14af5-246e-5739-a11e-513ca13b7d36",
        time=_utc("2018-10-11T22:42:22.720112+00:00"),
        event_type="audit.http.response",
        action="read/list",
        outcome="success",
        target_type="service/load-balancer/loadbalancers",
        initiator_project_id="90168d185e504b5580884a235ba31612",
        target_project_id=None,
        initiator_domain_id=None,
        event_time="2018-10-11T22:42:22.720112+00:00",
        reporter_time="2018-10-11T22:42:22.852613+00:00",
    ),
}


def test_every_stored_sample_has_expectations() -> None:
    assert sample_names() == sorted(EXPECTED)


def _notification(name: str) -> dict[str, Any]:
    """The sample as a v1 notification (bare CADF samples get wrapped)."""
    sample = load_sample(name)
    if "payload" in sample:
        return sample
    return wrap_v1(sample, "audit.cadf")


def _cadf(name: str) -> dict[str, Any]:
    sample = load_sample(name)
    payload: dict[str, Any] = sample.get("payload", sample)
    return payload


def _check(event: AuditEvent, expected: Expected, original_cadf: dict[str, Any]) -> None:
    assert event.id == expected.id
    assert event.time == expected.time
    assert event.time.utcoffset() == timedelta(0)
    assert event.action == expected.action
    assert event.outcome == expected.outcome
    assert event.target_type == expected.target_type
    assert event.initiator_project_id == expected.initiator_project_id
    assert event.target_project_id == expected.target_project_id
    assert event.initiator_domain_id == expected.initiator_domain_id
    assert event.body["eventTime"] == expected.event_time
    assert event.body["action"] == expected.action
    if expected.reporter_time is not None:
        assert event.body["reporterchain"][0]["reporterTime"] == expected.reporter_time
    # the body is the CADF payload with the rewrites and nothing else
    rewritten = copy.deepcopy(original_cadf)
    rewritten["eventTime"] = expected.event_time
    rewritten["action"] = expected.action
    if expected.reporter_time is not None:
        rewritten["reporterchain"][0]["reporterTime"] = expected.reporter_time
    if rewritten["target"].get("typeURI") == "data/security/project":  # Logstash's step 4
        rewritten["target"].setdefault("project_id", rewritten["target"]["id"])
    assert event.body == rewritten


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("version", [1, 2])
def test_sample_in_oslo_envelope(name: str, version: int) -> None:
    notification = _notification(name)
    body = encode(notification if version == 1 else wrap_v2(notification))
    event = decode_message(body)
    _check(event, EXPECTED[name], _cadf(name))
    assert event.event_type == EXPECTED[name].event_type


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_as_bare_cadf(name: str) -> None:
    event = decode_message(encode(_cadf(name)))
    _check(event, EXPECTED[name], _cadf(name))
    assert event.event_type == ""


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_survives_its_own_encoding(name: str) -> None:
    event = decode_message(encode(_notification(name)))
    again = decode_message(encode_event(event))
    assert again.body == event.body
    assert (again.id, again.time, again.action) == (event.id, event.time, event.action)


def test_sample_fields_that_are_not_cadf_stay_in_the_body() -> None:
    event = decode_message(encode(_notification("03")))
    assert event.body["resource_info"] == "671da331c47d4e29bb6ea1d270154ec3"
    event = decode_message(encode(_notification("06")))
    assert event.body["reason"]["reasonCode"] == 401
    assert "_unique_id" not in event.body  # an oslo envelope key, not CADF


def test_the_size_of_a_typical_message() -> None:
    assert 1200 <= len(encode(make_cadf())) <= 1800
    assert 1400 <= len(make_notification(version=2)) <= 1800


# --------------------------------------------------------------------------- envelopes


def test_v1_and_v2_decode_to_the_same_event() -> None:
    v1 = decode_message(make_notification(version=1))
    v2 = decode_message(make_notification(version=2))
    assert v1 == v2
    assert v1.event_type == "audit.http.response"


def test_v2_envelope_around_a_bare_cadf_event() -> None:
    event = decode_message(encode(wrap_v2(make_cadf(event_id="bare-in-v2"))))
    assert (event.id, event.event_type) == ("bare-in-v2", "")


def test_v2_without_version_key_is_accepted() -> None:
    inner = orjson.dumps(wrap_v1(make_cadf(event_id="e1"))).decode()
    assert decode_message(encode({"oslo.message": inner})).id == "e1"


def test_other_v2_minor_versions_are_accepted() -> None:
    envelope = wrap_v2(wrap_v1(make_cadf(event_id="e1")))
    envelope["oslo.version"] = "2.1"
    assert decode_message(encode(envelope)).id == "e1"


def test_event_type_null_counts_as_absent() -> None:
    notification = wrap_v1(make_cadf())
    notification["event_type"] = None
    assert decode_message(encode(notification)).event_type == ""
    del notification["event_type"]
    assert decode_message(encode(notification)).event_type == ""


def test_accepts_bytearray_and_memoryview() -> None:
    body = make_notification()
    assert decode_message(bytearray(body)).id == decode_message(body).id  # type: ignore[arg-type]
    assert decode_message(memoryview(body)).id == decode_message(body).id  # type: ignore[arg-type]


# --------------------------------------------------------------------------- normalisation


def test_keystone_role_assignment_keeps_scope_keys() -> None:
    payload = make_cadf(
        initiator_project="aaaa0000aaaa0000aaaa0000aaaa0000",
        action="created.role_assignment",
        target_type="data/security/account/user",
        project="bbbb1111bbbb1111bbbb1111bbbb1111",
        role="9fe2ff9ee4384b1894a90878d3e92bab",
        user="c9f76d3c31e142af9291de2935bde98a",
        inherited_to_projects=False,
    )
    event = decode_message(encode(wrap_v1(payload, "identity.role_assignment.created")))
    assert event.action == "create/role_assignment"
    assert event.initiator_project_id == "aaaa0000aaaa0000aaaa0000aaaa0000"
    assert event.target_project_id == "bbbb1111bbbb1111bbbb1111bbbb1111"
    assert event.body["project"] == "bbbb1111bbbb1111bbbb1111bbbb1111"
    assert event.body["role"] == "9fe2ff9ee4384b1894a90878d3e92bab"
    assert event.body["inherited_to_projects"] is False


def test_keystone_domain_key_is_the_domain_when_the_initiator_has_none() -> None:
    payload = make_cadf(initiator_project=None, action="created.role_assignment", domain="default")
    event = decode_message(encode(wrap_v1(payload, "identity.role_assignment.created")))
    assert event.initiator_domain_id == "default"
    assert event.body["domain"] == "default"


def test_scope_attributes_win_over_keystone_keys() -> None:
    payload = make_cadf(
        initiator_domain="d1", target_project="p-target", project="p-key", domain="d-key"
    )
    event = decode_message(encode(payload))
    assert event.target_project_id == "p-target"
    assert event.initiator_domain_id == "d1"


@pytest.mark.parametrize("value", [None, "", 17, ["p1"], {"id": "p1"}])
def test_keystone_scope_keys_that_are_not_ids_are_ignored(value: Any) -> None:
    payload = make_cadf(initiator_project=None, project=value, domain=value)
    event = decode_message(encode(payload))
    assert event.target_project_id is None
    assert event.initiator_domain_id is None


@pytest.mark.parametrize("field", ["project_id", "domain_id"])
@pytest.mark.parametrize("value", [None, ""])
def test_empty_scope_attributes_count_as_absent(field: str, value: Any) -> None:
    payload = make_cadf(initiator_project=None)
    payload["initiator"][field] = value
    payload["target"]["project_id"] = value
    event = decode_message(encode(payload))
    assert event.initiator_project_id is None
    assert event.initiator_domain_id is None
    assert event.target_project_id is None


def test_target_without_type_uri() -> None:
    payload = make_cadf()
    del payload["target"]["typeURI"]
    assert decode_message(encode(payload)).target_type == ""
    payload["target"]["typeURI"] = None
    assert decode_message(encode(payload)).target_type == ""


@pytest.mark.parametrize(
    ("event_time", "expected", "in_body"),
    [
        (
            "2024-05-17T09:41:27.512043+0000",
            datetime(2024, 5, 17, 9, 41, 27, 512043, tzinfo=UTC),
            "2024-05-17T09:41:27.512043+00:00",
        ),
        (
            "2024-05-17T11:41:27+0200",
            datetime(2024, 5, 17, 9, 41, 27, tzinfo=UTC),
            "2024-05-17T11:41:27+02:00",
        ),
        (
            "2024-05-17T04:11:27-05:30",
            datetime(2024, 5, 17, 9, 41, 27, tzinfo=UTC),
            "2024-05-17T04:11:27-05:30",
        ),
        (
            "2024-05-17T09:41:27Z",
            datetime(2024, 5, 17, 9, 41, 27, tzinfo=UTC),
            "2024-05-17T09:41:27Z",
        ),
        (  # naive: CADF times are UTC; the offset is written out for search's date format
            "2024-05-17T09:41:27.5",
            datetime(2024, 5, 17, 9, 41, 27, 500000, tzinfo=UTC),
            "2024-05-17T09:41:27.500000+00:00",
        ),
        (  # a space instead of the `T`: rewritten as strict ISO 8601
            "2024-05-17 09:41:27",
            datetime(2024, 5, 17, 9, 41, 27, tzinfo=UTC),
            "2024-05-17T09:41:27+00:00",
        ),
        (  # a day boundary crossed by the offset
            "2024-05-18T01:00:00+0300",
            datetime(2024, 5, 17, 22, 0, tzinfo=UTC),
            "2024-05-18T01:00:00+03:00",
        ),
    ],
)
def test_event_time(event_time: str, expected: datetime, in_body: str) -> None:
    event = decode_message(encode(make_cadf(event_time=event_time)))
    assert event.time == expected
    assert event.time.tzinfo is UTC
    assert event.body["eventTime"] == in_body
    assert event.day == expected.strftime("%Y-%m-%d")


def test_reporter_times_are_normalised_too() -> None:
    payload = make_cadf(event_time="2024-05-17T09:41:27+0000")
    payload["reporterchain"].append(
        {"reporterTime": "2024-05-17T09:41:28-0130", "role": "relay", "reporter": {"id": "x"}}
    )
    event = decode_message(encode(payload))
    times = [step["reporterTime"] for step in event.body["reporterchain"]]
    assert times == ["2024-05-17T09:41:27+00:00", "2024-05-17T09:41:28-01:30"]


def test_encode_event_is_the_normalised_body() -> None:
    event = decode_message(make_notification(action="created.project"))
    assert orjson.loads(encode_event(event)) == event.body
    assert event.body["action"] == "create/project"


# --------------------------------------------------------------------------- refusals

NOTIFICATION_WITHOUT_CADF = {
    "event_type": "compute.instance.create.end",
    "publisher_id": "nova-compute:host1",
    "message_id": "7e5cda3f-0d36-4aa5-9d1b-8ea1f7f5b5a2",
    "priority": "INFO",
    "timestamp": "2024-05-17 09:41:27.604712",
    "payload": {"tenant_id": "p1", "user_id": "u1", "instance_id": "i1", "state": "active"},
}


def _without(path: str) -> bytes:
    payload = make_cadf()
    *parents, last = path.split(".")
    node = payload
    for key in parents:
        node = node[key]
    del node[last]
    return encode(wrap_v1(payload))


def _with(path: str, value: Any) -> bytes:
    payload = make_cadf()
    *parents, last = path.split(".")
    node = payload
    for key in parents:
        node = node[key]
    node[last] = value
    return encode(wrap_v1(payload))


def _v2(inner: Any) -> bytes:
    return encode({"oslo.version": "2.0", "oslo.message": inner})


REFUSED = {
    # transport
    "empty": (b"", "empty message"),
    "whitespace": (b" \n\t ", "empty message"),
    "invalid JSON": (b'{"a": 1,,}', "invalid JSON at byte 8: "),
    "invalid JSON after multibyte characters": ('{"éé": x}'.encode(), "invalid JSON at byte 9: "),
    "trailing garbage": (b"{} x", "invalid JSON at byte 3: "),
    "truncated": (make_notification()[:-10], "invalid JSON at byte "),
    "NaN": (b'{"payload": NaN}', "invalid JSON at byte 12: "),
    "Infinity": (b'{"payload": {"a": -Infinity}}', "invalid JSON at byte 19: "),
    "huge number": (b'{"payload": 1e999}', "invalid JSON at byte 12: "),
    "lone surrogate": (b'{"id": "\\ud800"}', "invalid JSON at byte "),
    "invalid UTF-8": (b'{"id": "\xff"}', "invalid UTF-8 at byte 8"),
    "overlong UTF-8": (b'{"id": "\xc0\xaf"}', "invalid UTF-8 at byte 8"),
    "UTF-16": ('{"id": "x"}'.encode("utf-16"), "invalid UTF-8 at byte 0"),
    "byte order mark": (
        b'\xef\xbb\xbf{"id": "x"}',
        "invalid JSON: starts with a UTF-8 byte order mark",
    ),
    "nested too deeply": (
        b"[" * 2000 + b"]" * 2000,
        "JSON nested too deeply (more than 1024 levels)",
    ),
    "nested too deeply inside the payload": (
        b'{"payload": {"a": ' + b"[" * 1100 + b"]" * 1100 + b"}}",
        "JSON nested too deeply (more than 1024 levels)",
    ),
    # top level
    "list": (b"[]", "not an oslo notification: top-level JSON is a list"),
    "number": (b"42", "not an oslo notification: top-level JSON is a number"),
    "float": (b"4.5e3", "not an oslo notification: top-level JSON is a number"),
    "string": (b'"audit"', "not an oslo notification: top-level JSON is a string"),
    "null": (b"null", "not an oslo notification: top-level JSON is null"),
    "boolean": (b"true", "not an oslo notification: top-level JSON is a boolean"),
    "empty object": (b"{}", "not an oslo notification: no payload and no CADF event"),
    "unrelated object": (b'{"a": 1}', "not an oslo notification: no payload and no CADF event"),
    # v2 envelope
    "v2 message is an object": (_v2({"payload": {}}), "oslo.message is an object, not a string"),
    "v2 message is a number": (_v2(3), "oslo.message is a number, not a string"),
    "v2 message is null": (_v2(None), "oslo.message is null, not a string"),
    "v2 message is invalid JSON": (
        _v2('{"payload": '),
        "invalid JSON in oslo.message at char 12: ",
    ),
    "v2 message is empty": (_v2(""), "oslo.message is empty"),
    "v2 message is a list": (_v2("[1, 2]"), "not an oslo notification: oslo.message holds a list"),
    "v2 message is a string": (_v2('"x"'), "not an oslo notification: oslo.message holds a string"),
    "v2 message nested too deeply": (
        _v2("[" * 1100 + "]" * 1100),
        "JSON in oslo.message nested too deeply (more than 1024 levels)",
    ),
    "v2 unknown version": (
        encode({"oslo.version": "3.0", "oslo.message": "{}"}),
        "unsupported oslo.version: '3.0'",
    ),
    "v2 version is a number": (
        encode({"oslo.version": 2, "oslo.message": "{}"}),
        "unsupported oslo.version: 2",
    ),
    "v2 without message": (
        encode({"oslo.version": "2.0"}),
        "oslo.version envelope without oslo.message",
    ),
    "v2 with an empty notification": (
        _v2("{}"),
        "not an oslo notification: no payload and no CADF event",
    ),
    # notification
    "missing payload": (
        encode({k: v for k, v in NOTIFICATION_WITHOUT_CADF.items() if k != "payload"}),
        "missing payload",
    ),
    "payload is a list": (encode(wrap_v1([make_cadf()])), "payload is a list, not an object"),
    "payload is a string": (
        encode(wrap_v1(orjson.dumps(make_cadf()).decode())),
        "payload is a string, not an object",
    ),
    "payload is null": (encode(wrap_v1(None)), "payload is null, not an object"),
    "payload is not CADF": (encode(NOTIFICATION_WITHOUT_CADF), "no CADF event in payload"),
    "payload is empty": (encode(wrap_v1({})), "no CADF event in payload"),
    "event_type is a number": (
        encode({**wrap_v1(make_cadf()), "event_type": 7}),
        "event_type is a number, not a string",
    ),
    # required CADF fields
    **{
        f"missing {path}": (_without(path), f"missing CADF field: {path}")
        for path in (
            "id",
            "eventTime",
            "action",
            "outcome",
            # (no initiator at all is accepted: the unscoped trail, see below)
            "target",
            "observer",
            "initiator.id",
            "target.id",
            "observer.id",
        )
    },
    "id is a number": (_with("id", 17), "CADF field id is a number, not a string"),
    "id is null": (_with("id", None), "CADF field id is null, not a string"),
    "id is empty": (_with("id", ""), "CADF field id is empty"),
    "id is too long": (_with("id", "x" * 513), "CADF field id is longer than 512 bytes"),
    "id is too long in bytes": (_with("id", "é" * 257), "CADF field id is longer than 512 bytes"),
    "eventTime is a number": (
        _with("eventTime", 1700000000),
        "CADF field eventTime is a number, not a string",
    ),
    "action is a list": (_with("action", ["create"]), "CADF field action is a list, not a string"),
    "action is null": (_with("action", None), "CADF field action is null, not a string"),
    "outcome is an object": (_with("outcome", {}), "CADF field outcome is an object, not a string"),
    "outcome is a boolean": (
        _with("outcome", True),
        "CADF field outcome is a boolean, not a string",
    ),
    "initiator is a string": (
        _with("initiator", "admin"),
        "CADF field initiator is a string, not an object",
    ),
    "target is a list": (_with("target", []), "CADF field target is a list, not an object"),
    "observer is null": (_with("observer", None), "CADF field observer is null, not an object"),
    "initiator.id is a number": (
        _with("initiator.id", 7),
        "CADF field initiator.id is a number, not a string",
    ),
    "target.id is null": (_with("target.id", None), "CADF field target.id is null, not a string"),
    "observer.id is an object": (
        _with("observer.id", {}),
        "CADF field observer.id is an object, not a string",
    ),
    "initiator.project_id is a number": (
        _with("initiator.project_id", 12),
        "CADF field initiator.project_id is a number, not a string",
    ),
    "initiator.domain_id is a list": (
        _with("initiator.domain_id", ["default"]),
        "CADF field initiator.domain_id is a list, not a string",
    ),
    "target.project_id is an object": (
        _with("target.project_id", {"id": "p"}),
        "CADF field target.project_id is an object, not a string",
    ),
    "target.typeURI is a boolean": (
        _with("target.typeURI", False),
        "CADF field target.typeURI is a boolean, not a string",
    ),
    # eventTime values
    "eventTime is a word": (
        _with("eventTime", "yesterday"),
        "eventTime is not a timestamp: 'yesterday'",
    ),
    "eventTime is empty": (_with("eventTime", ""), "eventTime is not a timestamp: ''"),
    "eventTime month 13": (
        _with("eventTime", "2024-13-01T00:00:00+0000"),
        "eventTime is not a timestamp: '2024-13-01T00:00:00+0000'",
    ),
    "eventTime hour 24": (
        _with("eventTime", "2024-05-17T24:00:00"),
        "eventTime is not a timestamp: '2024-05-17T24:00:00'",
    ),
    "eventTime epoch seconds as string": (
        _with("eventTime", "1700000000"),
        "eventTime is not a timestamp: '1700000000'",
    ),
    "eventTime is long garbage": (
        _with("eventTime", "x" * 500),
        "eventTime is not a timestamp: '" + "x" * 40 + "'...",
    ),
    "eventTime with non-ASCII": (
        _with("eventTime", "gestern"),
        "eventTime is not a timestamp: 'gestern'",
    ),
    "eventTime out of range": (
        _with("eventTime", "0001-01-01T00:00:00+01:00"),
        "eventTime is out of range: '0001-01-01T00:00:00+01:00'",
    ),
    "eventTime too far ahead": (
        _with("eventTime", "9999-12-31T23:59:59+00:00"),
        "eventTime is out of range: '9999-12-31T23:59:59+00:00'",
    ),
}


@pytest.mark.parametrize(("body", "reason"), list(REFUSED.values()), ids=list(REFUSED))
def test_refused(body: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_message(body)
    if reason.endswith(": ") or reason.endswith("byte "):
        assert caught.value.reason.startswith(reason)
    else:
        assert caught.value.reason == reason
    assert str(caught.value) == caught.value.reason


def test_reason_shows_non_ascii_escaped() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_message(_with("eventTime", "gestern 🕐"))
    assert caught.value.reason == "eventTime is not a timestamp: 'gestern \\U0001f550'"


def test_first_missing_field_is_named() -> None:
    payload = make_cadf()
    del payload["observer"]
    del payload["action"]
    with pytest.raises(DecodeError, match=r"^missing CADF field: action$"):
        decode_message(encode(payload))


def test_size_limit() -> None:
    body = make_notification()
    assert decode_message(body, max_bytes=len(body)).id
    with pytest.raises(DecodeError) as caught:
        decode_message(body, max_bytes=len(body) - 1)
    assert caught.value.reason == f"message too large: {len(body)} bytes > limit of {len(body) - 1}"


def test_size_limit_is_checked_before_parsing() -> None:
    body = b"\xff" * (DEFAULT_MAX_BYTES + 1)
    with pytest.raises(DecodeError) as caught:
        decode_message(body)
    assert caught.value.reason == (
        f"message too large: {DEFAULT_MAX_BYTES + 1} bytes > limit of {DEFAULT_MAX_BYTES}"
    )


def test_default_limit_is_4_mib() -> None:
    assert DEFAULT_MAX_BYTES == 4 * 1024 * 1024


# --------------------------------------------------------------------------- properties

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
CADF_KEYS = st.sampled_from(
    [
        "id",
        "eventTime",
        "action",
        "outcome",
        "initiator",
        "target",
        "observer",
        "typeURI",
        "eventType",
        "payload",
        "event_type",
        "oslo.message",
        "oslo.version",
        "project_id",
        "domain_id",
        "reporterchain",
        "reporterTime",
        "project",
        "domain",
    ]
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(CADF_KEYS | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=25,
)


def _decodes_or_refuses(body: bytes) -> AuditEvent | None:
    """Decode, or check the refusal is a DecodeError with a reason fit for a header."""
    try:
        return decode_message(body)
    except DecodeError as exc:
        reason = exc.reason
    assert reason
    assert reason.isascii()
    assert len(reason) <= 200
    return None


@PROPERTY_SETTINGS
@given(st.binary(max_size=2000))
@example(b"\x00")
@example(b"{" * 1100)
@example(b'{"oslo.message": "\\"')
def test_arbitrary_bytes_only_raise_decode_error(body: bytes) -> None:
    _decodes_or_refuses(body)


@PROPERTY_SETTINGS
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=1500))
def test_corrupted_messages_only_raise_decode_error(noise: bytes, at: int) -> None:
    body = make_notification(version=1)
    _decodes_or_refuses(body[:at] + noise + body[at + len(noise) :])


@PROPERTY_SETTINGS
@given(JSON_VALUES, st.sampled_from(["top", "payload", "v2", "v2 payload"]))
def test_arbitrary_json_only_raises_decode_error(value: Any, where: str) -> None:
    if where == "top":
        document = value
    elif where == "payload":
        document = {"event_type": "audit.cadf", "payload": value}
    elif where == "v2":
        document = {"oslo.version": "2.0", "oslo.message": orjson.dumps(value).decode()}
    else:
        document = wrap_v2({"event_type": "audit.cadf", "payload": value})
    _decodes_or_refuses(encode(document))


PATHS = st.sampled_from(
    [
        ("id",),
        ("eventTime",),
        ("action",),
        ("outcome",),
        ("initiator",),
        ("target",),
        ("observer",),
        ("initiator", "id"),
        ("initiator", "project_id"),
        ("initiator", "domain_id"),
        ("target", "id"),
        ("target", "project_id"),
        ("target", "typeURI"),
        ("observer", "id"),
        ("reporterchain",),
        ("project",),
        ("domain",),
    ]
)


@PROPERTY_SETTINGS
@given(PATHS, JSON_VALUES | st.just(KeyError), st.sampled_from([1, 2]))
def test_damaged_cadf_fields_only_raise_decode_error(
    path: tuple[str, ...], value: Any, version: Literal[1, 2]
) -> None:
    payload = make_cadf()
    node = payload
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    event = _decodes_or_refuses(make_notification(payload, version=version))
    if event is not None:
        for scope in (
            event.initiator_project_id,
            event.target_project_id,
            event.initiator_domain_id,
        ):
            assert scope is None or (isinstance(scope, str) and scope)
        assert event.time.utcoffset() == timedelta(0)


OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
EVENT_TIMES = st.builds(
    lambda when, tz: when.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)),
    st.none() | st.just(UTC) | OFFSETS,
)
ACTIONS = st.sampled_from(
    [
        "create",
        "read",
        "read/list",
        "update",
        "delete",
        "authenticate",
        "created.project",
        "deleted.role_assignment",
        "updated.user",
        "disabled.domain",
        "enabled.domain",
    ]
) | st.text(max_size=30)


def _time_text(when: datetime, style: str) -> str:
    text = when.isoformat()
    if when.tzinfo is None:
        return text
    if style == "compact":  # pycadf style: +HHMM
        return text[:-3] + text[-2:]
    if style == "Z" and when.utcoffset() == timedelta(0):
        return text[:-6] + "Z"
    return text


@PROPERTY_SETTINGS
@given(
    event_id=st.text(min_size=1, max_size=128),
    when=EVENT_TIMES,
    style=st.sampled_from(["iso", "compact", "Z"]),
    action=ACTIONS,
    event_type=st.text(max_size=40),
)
def test_round_trip_through_v2_keeps_id_time_action(
    event_id: str, when: datetime, style: str, action: str, event_type: str
) -> None:
    payload = make_cadf(event_id=event_id, event_time=_time_text(when, style), action=action)
    # The clock at the end of EVENT_TIMES: no time is in the refused future (tested apart).
    now = datetime(2200, 1, 1, tzinfo=UTC)
    event = decode_message(make_notification(payload, event_type=event_type), now=now)
    expected_time = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    assert event.id == event_id
    assert event.time == expected_time
    assert event.time.tzinfo is UTC
    assert event.action == normalise_action(action)
    assert event.event_type == event_type
    # what search and archive store decodes to the same event again
    again = decode_message(encode_event(event), now=now)
    assert (again.id, again.time, again.action, again.body) == (
        event.id,
        event.time,
        event.action,
        event.body,
    )


@pytest.mark.parametrize("initiator", [None, "missing"])
def test_an_event_without_initiator_goes_to_the_unscoped_trail(initiator: str | None) -> None:
    from stacktrail.domain.trail import UNSCOPED
    from stacktrail.ingest.route import owner_projects

    payload = make_cadf(initiator_project=None, action="created.project")
    if initiator == "missing":
        del payload["initiator"]
    else:
        payload["initiator"] = None
    event = decode_message(encode(wrap_v1(payload, "identity.project.created")))
    assert event.initiator_project_id is None
    assert owner_projects(event) == [UNSCOPED]
    assert event.body.get("initiator") == payload.get("initiator")  # kept as received


def test_an_initiator_that_is_no_object_is_still_refused() -> None:
    payload = make_cadf()
    payload["initiator"] = "alice"
    with pytest.raises(DecodeError, match="initiator is a string, not an object"):
        decode_message(encode(wrap_v1(payload)))


def test_the_reporting_service_is_the_observer_or_the_target_it_names() -> None:
    """keystonemiddleware's audit says `observer: {id: target}`: the target reported it."""
    middleware = decode_message(make_notification(target_type="service/compute/servers"))
    assert middleware.observer_type == "service/compute/servers"
    cadf = make_cadf(target_type="data/security/project")
    cadf["observer"] = {"id": "openstack:3b1c", "typeURI": "service/security"}
    assert decode_message(make_notification(cadf)).observer_type == "service/security"
    cadf["observer"] = {"id": "openstack:3b1c"}
    assert decode_message(make_notification(cadf)).observer_type == ""
