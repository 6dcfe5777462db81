"""Archive objects: names, bodies, headers (pure code, no I/O).

Key layout (CloudTrail-like, by UTC event day):

    <prefix>/<project_id>/<region>/YYYY/MM/DD/
        <project_id>_<region>_<YYYYMMDDTHHMMZ>_<worker>_<segment>.<ext>

The time stamp is the seal time of the spool segment and `<segment>` its id, so delivering
the same segment again (after a crash) writes the same name with the same bytes (gzip
with mtime 0). Without a prefix the key starts with the project id.

Bodies (all gzip, Content-Type `application/gzip`):

- `json` (`.json.gz`): `{"Records": [ ...normalised CADF events, as spooled... ]}`
- `ndjson` (`.ndjson.gz`): one event per line
- `csv` (`.csv.gz`): a header row, then one row per event with the columns of
  `CSV_COLUMNS`, in this order:

      id, eventTime, action, outcome, eventType, project_id,
      initiator_id, initiator_typeURI, initiator_name, initiator_project_id,
      initiator_domain_id, initiator_host_address, initiator_host_agent,
      target_id, target_typeURI, target_project_id, target_name,
      observer_id, observer_typeURI, reason_code, reason_type, requestPath, extra

  `project_id` is the project whose trail the object belongs to; the other columns are
  the CADF fields of the same name (`initiator_host_address` = initiator.host.address,
  `reason_code` = reason.reasonCode, `reason_type` = reason.reasonType). Strings are
  written as they are, other values as JSON, missing ones empty. `extra` is a JSON object
  of every other field of the event, nested objects flattened to dotted names
  (`{"initiator.credential.type": "token", "attachments": [...]}`); lists stay lists.

Headers (Swift names; the S3 adapter maps them to x-amz-meta-*): `X-Delete-At` = end of
the event day (UTC midnight after it) + the trail's retention in days, as unix seconds;
`X-Object-Meta-Record-Count`, `-First-Event-Time`, `-Last-Event-Time` (ISO 8601 UTC) and
`-Sha256` (hex digest of the uncompressed body).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from stacktrail.archive.spool.segment import SegmentSpec
from stacktrail.config import Settings
from stacktrail.domain.expiry import expires_at
from stacktrail.domain.names import is_valid_project_id
from stacktrail.domain.store_names import container_problem, prefix_problem
from stacktrail.domain.trail import ArchiveFormat

EXTENSIONS = {
    ArchiveFormat.JSON: "json.gz",
    ArchiveFormat.NDJSON: "ndjson.gz",
    ArchiveFormat.CSV: "csv.gz",
}
CONTENT_TYPE = "application/gzip"

_REGION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$")
_PREFIX_PART_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAY_IN_KEY = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/[^/]+$")  # object_key's folders

_CSV_PATHS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("id", ("id",)),
    ("eventTime", ("eventTime",)),
    ("action", ("action",)),
    ("outcome", ("outcome",)),
    ("eventType", ("eventType",)),
    ("project_id", ()),  # the trail's project, not a field of the event
    ("initiator_id", ("initiator", "id")),
    ("initiator_typeURI", ("initiator", "typeURI")),
    ("initiator_name", ("initiator", "name")),
    ("initiator_project_id", ("initiator", "project_id")),
    ("initiator_domain_id", ("initiator", "domain_id")),
    ("initiator_host_address", ("initiator", "host", "address")),
    ("initiator_host_agent", ("initiator", "host", "agent")),
    ("target_id", ("target", "id")),
    ("target_typeURI", ("target", "typeURI")),
    ("target_project_id", ("target", "project_id")),
    ("target_name", ("target", "name")),
    ("observer_id", ("observer", "id")),
    ("observer_typeURI", ("observer", "typeURI")),
    ("reason_code", ("reason", "reasonCode")),
    ("reason_type", ("reason", "reasonType")),
    ("requestPath", ("requestPath",)),
)
CSV_COLUMNS: tuple[str, ...] = (*(name for name, _ in _CSV_PATHS), "extra")
_CSV_TAKEN = {".".join(path) for _, path in _CSV_PATHS if path}


class InvalidName(ValueError):
    """A name that must not go into an object key."""


# --- names


def check_project_id(project_id: str) -> str:
    if not is_valid_project_id(project_id):  # the one id rule (routing/ids.py)
        raise InvalidName(f"project id {project_id!r} is not usable in an object key")
    return project_id


def check_region(region: str) -> str:
    if not _REGION_RE.match(region):
        raise InvalidName(f"region {region!r} is not usable in an object key")
    return region


def normalise_prefix(prefix: str) -> str:
    """`/a/b/` -> `a/b`; every part must be a plain name (no `.`, `..` or empty parts)."""
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    parts = stripped.split("/")
    for part in parts:
        if part in {".", ".."} or not _PREFIX_PART_RE.match(part):
            raise InvalidName(f"key prefix {prefix!r} has an unusable part {part!r}")
    problem = prefix_problem(stripped)  # the API's rule too (length, `..`)
    if problem:
        raise InvalidName(f"key prefix {prefix!r}: {problem}")
    return stripped


def check_container(container: str) -> str:
    """The one container rule (store_names): the spool refuses what no store may take."""
    problem = container_problem(container)
    if problem:
        raise InvalidName(f"container name {container!r} is not usable: {problem}")
    return container


def check_spec(spec: SegmentSpec) -> None:
    """Raise InvalidName unless every part of the spec's object keys is a validated name."""
    check_project_id(spec.project_id)
    if not _DAY_RE.match(spec.day):
        raise InvalidName(f"day {spec.day!r} is not YYYY-MM-DD")
    if not spec.regions:
        raise InvalidName("the trail has no archive region")
    for region in spec.regions:
        check_region(region)
    normalise_prefix(spec.prefix)
    check_container(spec.container)


def worker_name(settings: Settings) -> str:
    """The worker's name in object keys, reduced to [a-z0-9-]: `settings.archive_worker`,
    else `<host name>-<6 hex digits of the spool directory's path>`.

    Workers sharing a queue must write distinct keys. A spool directory belongs to one
    process at a time (its lock), so the default differs for two workers on one host and
    stays the same across restarts of one worker, whose spool, seen ids and deliveries it
    takes over."""
    if settings.archive_worker:
        raw = settings.archive_worker
    else:
        spool = str(Path(settings.spool_dir).expanduser().resolve())
        host = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().lower()).strip("-")[:56]
        raw = f"{host}-{hashlib.sha256(spool.encode()).hexdigest()[:6]}"
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    return name[:63] or "worker"


def object_key(spec: SegmentSpec, region: str, stamp: str, worker: str, segment: str) -> str:
    day = datetime.strptime(spec.day, "%Y-%m-%d")
    project = check_project_id(spec.project_id)
    region = check_region(region)
    name = f"{project}_{region}_{stamp}_{worker}_{segment}.{EXTENSIONS[spec.format]}"
    parts = [normalise_prefix(spec.prefix), project, region, day.strftime("%Y/%m/%d"), name]
    return "/".join(p for p in parts if p)


def day_of_key(key: str) -> str | None:
    """The event day (YYYY-MM-DD) of a key `object_key` built, read back from its
    YYYY/MM/DD folders (None for keys of other shapes)."""
    match = _DAY_IN_KEY.search(key)
    if match is None:
        return None
    return f"{match.group(1)}-{match.group(2)}-{match.group(3)}"


def delete_at(day: str, retention_days: int) -> int:
    """End of the UTC event day plus the retention, as unix seconds (X-Delete-At)."""
    return int(expires_at(day, retention_days).timestamp())


def spec_delete_at(spec: SegmentSpec) -> int:
    return delete_at(spec.day, spec.retention_days)


# --- bodies


@dataclass(frozen=True, slots=True)
class ObjectBody:
    data: bytes  # gzip
    records: int
    raw_bytes: int  # uncompressed size
    sha256: str  # of the uncompressed body
    md5: str  # of `data`: what the store must confirm
    first_event_time: str
    last_event_time: str
    object_sha256: str = ""  # of `data`, as the archive digests list it


def _event_time(raw: Any) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _iso(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else ""


def _flatten(value: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for name, item in value.items():
        dotted = f"{prefix}{name}"
        if isinstance(item, dict) and item:
            _flatten(item, dotted + ".", out)
        else:
            out[dotted] = item


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _dig(event: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = event
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def csv_rows(project_id: str, events: Iterable[dict[str, Any]]) -> Iterable[list[str]]:
    for event in events:
        row = [project_id if not path else _cell(_dig(event, path)) for _, path in _CSV_PATHS]
        flat: dict[str, Any] = {}
        _flatten(event, "", flat)
        extra = {k: v for k, v in flat.items() if k not in _CSV_TAKEN}
        row.append(orjson.dumps(extra).decode())
        yield row


def render(spec: SegmentSpec, records: Sequence[bytes], events: Sequence[dict[str, Any]]) -> bytes:
    """The uncompressed body: `records` are the spooled bytes, `events` the same parsed."""
    if spec.format is ArchiveFormat.JSON:
        return b'{"Records":[' + b",".join(records) + b"]}"
    if spec.format is ArchiveFormat.NDJSON:
        return b"".join(r + b"\n" for r in records)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(spec.project_id, events))
    return text.getvalue().encode()


def build_body(spec: SegmentSpec, records: Sequence[bytes]) -> ObjectBody:
    """Render and gzip `records` (the orjson bytes of normalised event bodies)."""
    events = [orjson.loads(r) for r in records]
    raw = render(spec, records, events)
    data = gzip.compress(raw, compresslevel=6, mtime=0)
    times = [t for t in (_event_time(e.get("eventTime")) for e in events) if t is not None]
    return ObjectBody(
        data=data,
        records=len(records),
        raw_bytes=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        first_event_time=_iso(min(times, default=None)),
        last_event_time=_iso(max(times, default=None)),
        object_sha256=hashlib.sha256(data).hexdigest(),
    )


def object_headers(body: ObjectBody, delete_at_epoch: int) -> dict[str, str]:
    headers = {
        "Content-Type": CONTENT_TYPE,
        "X-Delete-At": str(delete_at_epoch),
        "X-Object-Meta-Record-Count": str(body.records),
        "X-Object-Meta-Sha256": body.sha256,
    }
    if body.first_event_time:
        headers["X-Object-Meta-First-Event-Time"] = body.first_event_time
        headers["X-Object-Meta-Last-Event-Time"] = body.last_event_time
    return headers
