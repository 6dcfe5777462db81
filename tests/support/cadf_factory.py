"""Realistic CADF audit events and oslo.messaging envelopes for tests and benchmarks.

`make_cadf` builds what keystonemiddleware's audit filter emits for an API response
(`audit.http.response`): initiator with host and credential, target with endpoint
addresses, a reporterchain and a correlation tag; about 1.3 KB as compact JSON, about
1.6 KB inside a v2 notification. The real samples from public sources are copied into
`tests/data/samples/` so that a clean checkout carries them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "data" / "samples"

CADF_EVENT_TYPE_URI = "http://schemas.dmtf.org/cloud/audit/1.0/event"
DEFAULT_EVENT_TIME = datetime(2024, 5, 17, 9, 41, 27, 512043, tzinfo=UTC)
DEFAULT_INITIATOR_PROJECT = "90168d185e504b5580884a235ba31612"
_NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")

Json = dict[str, Any]


def sample_names() -> list[str]:
    """File names of the stored real samples, sorted."""
    return sorted(p.name for p in SAMPLES_DIR.glob("*.json"))


def load_sample(name: str) -> Json:
    """One stored sample as parsed JSON; `name` with or without `.json`, or its number."""
    matches = [n for n in sample_names() if n == name or n.removesuffix(".json") == name]
    if not matches:
        matches = [n for n in sample_names() if n.startswith(f"{name}_")]
    if len(matches) != 1:
        raise LookupError(f"no unique sample named {name!r} in {SAMPLES_DIR}")
    data: Json = orjson.loads((SAMPLES_DIR / matches[0]).read_bytes())
    return data


def format_time(value: datetime | str) -> str:
    """A CADF time string as pycadf writes it (`+0000`-style offsets); strings pass through."""
    if isinstance(value, str):
        return value
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f%z")


def make_cadf(
    *,
    event_id: str | None = None,
    event_time: datetime | str = DEFAULT_EVENT_TIME,
    initiator_project: str | None = DEFAULT_INITIATOR_PROJECT,
    initiator_domain: str | None = None,
    target_project: str | None = None,
    action: str = "update",
    outcome: str = "success",
    target_type: str = "compute/server",
    request_path: str | None = None,
    **extra: Any,
) -> Json:
    """A keystonemiddleware-style `audit.http.response` CADF event (a fresh dict).

    `None` leaves a scope attribute out, as keystonemiddleware does; `extra` keys are set
    at the top level (e.g. keystone's `project`/`domain`/`role`), `None` values delete.
    """
    if event_id is None:
        event_id = str(uuid.uuid5(_NAMESPACE, f"{format_time(event_time)}/{action}"))
    correlation = uuid.uuid5(_NAMESPACE, event_id)
    server = uuid.uuid5(_NAMESPACE, f"server/{event_id}")
    project_in_url = target_project or initiator_project or "e55b158759854ea6a7852aa76632c6c1"
    endpoint = "https://compute.example.com:8774/v2.1"
    initiator: Json = {
        "typeURI": "service/security/account/user",
        "id": "2af901396a424d5ca9dffa725226e8c7",
        "name": "ops-automation",
        "domain": "Default",
        "credential": {"token": "***", "identity_status": "Confirmed"},
        "host": {
            "agent": "openstacksdk/3.3.0 keystoneauth1/5.6.0 CPython/3.11.9",
            "address": "10.180.12.77",
        },
    }
    if initiator_project is not None:
        initiator["project_id"] = initiator_project
    if initiator_domain is not None:
        initiator["domain_id"] = initiator_domain
    target: Json = {
        "typeURI": target_type,
        "id": str(server),
        "name": "nova",
        "addresses": [
            {"url": endpoint, "name": "admin"},
            {"url": endpoint, "name": "private"},
            {"url": endpoint, "name": "public"},
        ],
    }
    if target_project is not None:
        target["project_id"] = target_project
    event: Json = {
        "typeURI": CADF_EVENT_TYPE_URI,
        "id": event_id,
        "eventType": "activity",
        "eventTime": format_time(event_time),
        "action": action,
        "outcome": outcome,
        "reason": {"reasonCode": "200", "reasonType": "HTTP"},
        "initiator": initiator,
        "target": target,
        "observer": {"id": "target"},
        "reporterchain": [
            {
                "reporterTime": format_time(event_time),
                "role": "modifier",
                "reporter": {"id": "target"},
            }
        ],
        "requestPath": request_path or f"/v2.1/{project_in_url}/servers/{server}/action",
        "tags": [f"correlation_id?value={correlation}"],
    }
    for key, value in extra.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def wrap_v1(
    payload: Any,
    event_type: str = "audit.http.response",
    *,
    publisher_id: str = "nova-api",
    priority: str = "INFO",
) -> Json:
    """An oslo.messaging notification (the v1 layout, also the inside of a v2 envelope).

    `payload` is normally a CADF event; anything else makes a malformed notification.
    """
    seed = str(payload.get("id", "") if isinstance(payload, dict) else "") + event_type
    return {
        "message_id": str(uuid.uuid5(_NAMESPACE, f"message/{seed}")),
        "publisher_id": publisher_id,
        "event_type": event_type,
        "priority": priority,
        "payload": payload,
        "timestamp": "2024-05-17 09:41:27.604712",
        "_unique_id": uuid.uuid5(_NAMESPACE, f"unique/{seed}").hex,
    }


def wrap_v2(notification: Json) -> Json:
    """The oslo.messaging v2 envelope around a v1 notification."""
    return {"oslo.version": "2.0", "oslo.message": orjson.dumps(notification).decode()}


def encode(document: Any) -> bytes:
    return orjson.dumps(document)


def make_notification(
    payload: Json | None = None,
    *,
    event_type: str = "audit.http.response",
    version: Literal[1, 2] = 2,
    **cadf: Any,
) -> bytes:
    """A message body as RabbitMQ delivers it: `payload` (or `make_cadf(**cadf)`) wrapped."""
    if payload is None:
        payload = make_cadf(**cadf)
    elif cadf:
        raise TypeError("pass either a payload or make_cadf() arguments, not both")
    notification = wrap_v1(payload, event_type)
    if version == 1:
        return encode(notification)
    if version == 2:
        return encode(wrap_v2(notification))
    raise ValueError(f"oslo.messaging envelope version must be 1 or 2, not {version!r}")
