"""Turn one RabbitMQ message body into an AuditEvent, or say precisely why not.

Accepted bodies:

- oslo.messaging v1: the notification itself (`event_type`, `payload`, ...);
- oslo.messaging v2: `{"oslo.version": "2.0", "oslo.message": "<v1 notification as JSON>"}`;
- a bare CADF event as the whole body (event_type "").

The CADF event (the notification's payload) becomes the event body after Hermes-style
normalisation (see `normalise`). This runs for every message: the happy path does one
JSON parse per layer, type checks with `type(...) is`, and mutates the parsed objects in
place. Every failure is a DecodeError whose reason is short enough for an AMQP header.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import orjson

from stacktrail.domain.durations import format_duration
from stacktrail.domain.event import AuditEvent, DecodeError, JsonDict, NotAuditEvent
from stacktrail.domain.event_limits import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_BYTES,
    EventLimits,
    check_shape,
    may_exceed_shape,
)
from stacktrail.ingest.normalise import (
    normalise_action,
    normalise_keystone,
    normalise_offset,
    normalise_reporterchain,
)

__all__ = ["DEFAULT_MAX_BYTES", "LATEST_EVENT_TIME", "decode_message", "encode_event"]

MAX_EVENT_ID_BYTES: Final = 512  # Elasticsearch/OpenSearch refuse longer document ids

V2_VERSION_KEY: Final = "oslo.version"
V2_MESSAGE_KEY: Final = "oslo.message"

# Keys of an oslo notification (v1 layout), to tell "missing payload" from garbage.
_NOTIFICATION_KEYS: Final = frozenset(
    {"event_type", "publisher_id", "message_id", "priority", "timestamp", "_unique_id"}
)
_REQUIRED_STRINGS: Final = ("id", "eventTime", "action", "outcome")
_RESOURCES: Final = ("initiator", "target", "observer")
_MISSING: Final[Any] = object()
_NO_INITIATOR: Final[JsonDict] = {}  # read only: stands in for a missing initiator
# An archive object expires at its event day + retention (up to 100 years): later event
# times would overflow datetime there, and no audit event is dated that far ahead.
LATEST_EVENT_TIME: Final = datetime(9000, 1, 1, tzinfo=UTC)
_SHOWN_CHARS: Final = 40


def decode_message(
    body: bytes,
    *,
    max_bytes: int | None = None,
    limits: EventLimits = DEFAULT_LIMITS,
    now: datetime | None = None,
) -> AuditEvent:
    """Decode and normalise one message body; raise DecodeError(reason) if unusable.

    Refuses what breaks `limits` (see events.limits: what decode accepts, every sink can
    encode); `max_bytes` overrides its size limit. `now` is the clock the future skew of
    eventTime is measured from (default: read here).
    """
    if max_bytes is None:
        max_bytes = limits.max_bytes
    size = len(body)
    if size > max_bytes:
        raise DecodeError(f"message too large: {size} bytes > limit of {max_bytes}")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(_json_error(exc, body)) from None
    if type(doc) is not dict:
        raise DecodeError(f"not an oslo notification: top-level JSON is {_kind(doc)}")
    if V2_MESSAGE_KEY in doc:
        doc = _unwrap_v2(doc)
    elif V2_VERSION_KEY in doc:
        raise DecodeError(f"{V2_VERSION_KEY} envelope without {V2_MESSAGE_KEY}")

    check = _Checks(limits, now, may_exceed_shape(body, limits))
    payload = doc.get("payload", _MISSING)
    if payload is _MISSING:
        if _looks_like_cadf(doc):
            return _event(doc, "", check)
        if _NOTIFICATION_KEYS.isdisjoint(doc):
            raise DecodeError("not an oslo notification: no payload and no CADF event")
        raise DecodeError("missing payload")
    if type(payload) is not dict:
        raise DecodeError(f"payload is {_kind(payload)}, not an object")
    event_type = doc.get("event_type")
    if type(event_type) is not str:
        if event_type is not None:
            raise DecodeError(f"event_type is {_kind(event_type)}, not a string")
        event_type = ""
    if not _looks_like_cadf(payload):
        raise NotAuditEvent(event_type)
    return _event(payload, event_type, check)


def encode_event(event: AuditEvent) -> bytes:
    """The normalised CADF body as compact JSON (what search and archive store)."""
    return event.body_json()


def _unwrap_v2(envelope: JsonDict) -> JsonDict:
    version = envelope.get(V2_VERSION_KEY)
    if version is not None and (type(version) is not str or not version.startswith("2.")):
        raise DecodeError(f"unsupported {V2_VERSION_KEY}: {_show(version)}")
    inner = envelope[V2_MESSAGE_KEY]
    if type(inner) is not str:
        raise DecodeError(f"{V2_MESSAGE_KEY} is {_kind(inner)}, not a string")
    try:
        message = orjson.loads(inner)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(_json_error(exc, inner)) from None
    if type(message) is not dict:
        raise DecodeError(f"not an oslo notification: {V2_MESSAGE_KEY} holds {_kind(message)}")
    return message


def _looks_like_cadf(doc: JsonDict) -> bool:
    """Whether a dict is meant as a CADF event (then it is validated, and refused precisely).

    Other notifications (nova's `compute.instance.*`, keystone's basic format) have none
    of these top-level keys.
    """
    return (
        "typeURI" in doc
        or "eventTime" in doc
        or "eventType" in doc
        or "initiator" in doc
        or "observer" in doc
    )


class _Checks:
    """What `_event` checks beyond the CADF minimum: the shape, the future skew."""

    __slots__ = ("limits", "now", "shape")

    def __init__(self, limits: EventLimits, now: datetime | None, shape: bool) -> None:
        self.limits = limits
        self.now = now
        self.shape = shape  # False: the raw bytes already prove the shape limits hold


def _event(cadf: JsonDict, event_type: str, check: _Checks) -> AuditEvent:
    """Validate the minimum of a CADF event, normalise it in place, extract the fields.

    The checks are inline on purpose (this runs for every message); when one fails,
    `_invalid` works out the precise reason.
    """
    if check.shape:
        check_shape(cadf, check.limits)
    get = cadf.get
    event_id = get("id")
    raw_time = get("eventTime")
    raw_action = get("action")
    outcome = get("outcome")
    initiator = get("initiator")
    if initiator is None:  # keystone-manage bootstrap: nobody initiated it (unscoped)
        initiator = _NO_INITIATOR
    target = get("target")
    observer = get("observer")
    if (
        type(event_id) is not str
        or not event_id
        or type(raw_time) is not str
        or type(raw_action) is not str
        or type(outcome) is not str
        or type(initiator) is not dict
        or type(target) is not dict
        or type(observer) is not dict
        or (type(initiator.get("id")) is not str and initiator is not _NO_INITIATOR)
        or type(target.get("id")) is not str
        or type(observer.get("id")) is not str
    ):
        raise _invalid(cadf)
    if len(event_id) > MAX_EVENT_ID_BYTES // 4 and len(event_id.encode()) > MAX_EVENT_ID_BYTES:
        raise DecodeError(f"CADF field id is longer than {MAX_EVENT_ID_BYTES} bytes")

    event_time = normalise_offset(raw_time)
    if event_time is not raw_time:
        cadf["eventTime"] = event_time
    try:
        time = datetime.fromisoformat(event_time)
    except ValueError:
        raise DecodeError(f"eventTime is not a timestamp: {_show(raw_time)}") from None
    if time.tzinfo is not UTC:
        naive = time.tzinfo is None
        time = _as_utc(time, raw_time)
        if naive:  # search's strict date format needs the offset: write it out
            cadf["eventTime"] = time.isoformat()
    if event_time[10:11] != "T":  # `2024-05-17 09:41:27+00:00` -> ISO 8601 with a `T`
        cadf["eventTime"] = time.isoformat()
    if time >= LATEST_EVENT_TIME:
        raise DecodeError(f"eventTime is out of range: {_show(raw_time)}")
    # Far-future events would make indices and objects that no retention reaches.
    skew = check.limits.max_future_skew
    if time - (check.now or datetime.now(UTC)) > skew:
        raise DecodeError(
            f"eventTime is more than {format_duration(skew)} in the future: {_show(raw_time)}"
        )

    action = raw_action
    if "." in raw_action:
        action = normalise_action(raw_action)
        if action is not raw_action:
            cadf["action"] = action

    chain = get("reporterchain")
    if chain is not None:
        normalise_reporterchain(chain)
    normalise_keystone(cadf)  # Logstash's rules for keystone's notifications

    target_type = target.get("typeURI")
    if type(target_type) is not str:
        _require_absent(target_type, "target.typeURI")
        target_type = ""
    initiator_project_id = initiator.get("project_id")
    if type(initiator_project_id) is not str or not initiator_project_id:
        _require_absent(initiator_project_id, "initiator.project_id")
        initiator_project_id = None
    target_project_id = target.get("project_id")
    if type(target_project_id) is not str or not target_project_id:
        _require_absent(target_project_id, "target.project_id")
        # keystone puts the scope of e.g. a role assignment at the top: `project`/`domain`
        target_project_id = get("project")
        if type(target_project_id) is not str or not target_project_id:
            target_project_id = None
    initiator_domain_id = initiator.get("domain_id")
    if type(initiator_domain_id) is not str or not initiator_domain_id:
        _require_absent(initiator_domain_id, "initiator.domain_id")
        initiator_domain_id = get("domain")
        if type(initiator_domain_id) is not str or not initiator_domain_id:
            initiator_domain_id = None

    return AuditEvent(
        id=event_id,
        time=time,
        event_type=event_type,
        action=action,
        outcome=outcome,
        target_type=target_type,
        initiator_project_id=initiator_project_id,
        target_project_id=target_project_id,
        initiator_domain_id=initiator_domain_id,
        body=cadf,
        observer_type=_service(observer, target_type),
    )


def _service(observer: JsonDict, target_type: str) -> str:
    """The reporting service: the observer's typeURI, or the target's where the observer is
    the target (keystonemiddleware's audit says `observer: {id: target}`)."""
    if observer.get("id") == "target":
        return target_type
    value = observer.get("typeURI")
    return value if type(value) is str else ""


def _invalid(cadf: JsonDict) -> DecodeError:
    """The precise reason why `_event` refused a CADF event (the first failed check)."""
    for name in _REQUIRED_STRINGS:
        value = cadf.get(name, _MISSING)
        if type(value) is not str:
            return _field_error(name, value)
        if name == "id" and not value:
            return DecodeError("CADF field id is empty")
    for name in _RESOURCES:
        resource = cadf.get(name, _MISSING)
        if name == "initiator" and (resource is _MISSING or resource is None):
            continue
        if type(resource) is not dict:
            return _field_error(name, resource, "an object")
        resource_id = resource.get("id", _MISSING)
        if type(resource_id) is not str:
            return _field_error(f"{name}.id", resource_id)
    return DecodeError("invalid CADF event")


def _as_utc(parsed: datetime, original: str) -> datetime:
    if parsed.tzinfo is None:  # no offset: CADF times are UTC
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise DecodeError(f"eventTime is out of range: {_show(original)}") from None


def _require_absent(value: Any, name: str) -> None:
    """An optional CADF string attribute that is not a non-empty string must be null/""."""
    if value is None or value == "":
        return
    raise DecodeError(f"CADF field {name} is {_kind(value)}, not a string")


def _field_error(name: str, value: Any, expected: str = "a string") -> DecodeError:
    if value is _MISSING:
        return DecodeError(f"missing CADF field: {name}")
    return DecodeError(f"CADF field {name} is {_kind(value)}, not {expected}")


def _json_error(exc: orjson.JSONDecodeError, data: bytes | str) -> str:
    """An operator-readable reason for a JSON parse failure (off the hot path)."""
    message = exc.msg
    if isinstance(data, str):  # the inner document of a v2 envelope
        where = f"in {V2_MESSAGE_KEY}"
        if not data.strip():
            return f"{V2_MESSAGE_KEY} is empty"
        if message.startswith("depth limit"):
            return f"JSON {where} nested too deeply (more than 1024 levels)"
        return f"invalid JSON {where} at char {exc.pos}: {message}"
    raw = bytes(data)
    if not raw.strip():
        return "empty message"
    if raw.startswith(b"\xef\xbb\xbf"):
        return "invalid JSON: starts with a UTF-8 byte order mark"
    try:
        text = raw.decode()
    except UnicodeDecodeError as bad:
        return f"invalid UTF-8 at byte {bad.start}"
    if message.startswith("depth limit"):
        return "JSON nested too deeply (more than 1024 levels)"
    # orjson counts characters; operators look at bytes (hexdump, AMQP body size).
    offset = len(text[: exc.pos].encode())
    return f"invalid JSON at byte {offset}: {message}"


def _kind(value: Any) -> str:
    """The JSON kind of a value, with its article, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _show(value: Any) -> str:
    """A value quoted for a reason: ASCII only, shortened."""
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        return ascii(value[:_SHOWN_CHARS]) + "..."
    shown = ascii(value)
    return shown if len(shown) <= _SHOWN_CHARS + 2 else shown[: _SHOWN_CHARS + 2] + "..."
