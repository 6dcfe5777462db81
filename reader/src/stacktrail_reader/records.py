"""Records out of archive objects, in every archive format, for a time frame.

Objects are `.json.gz` (`{"Records": [...]}`), `.ndjson.gz` (one event per line) or
`.csv.gz` (a header row; a CSV record is returned as a mapping of its columns, with
`extra` parsed back). Objects live in day folders by the UTC day of their events, late
ones included, so a time frame reads the folders of its days and keeps the records whose
`eventTime` falls in it. A record delivered twice (the pipeline delivers at least once)
is returned once: de-duplication is by CADF `id`, per day folder, so memory stays
bounded by one day's ids, never by the records.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from stacktrail_reader import digest as d
from stacktrail_reader.sources import MissingObject, Source, SourceError

Record = dict[str, Any]
OnError = Callable[[str, Exception], None]  # object key, what went wrong
OnObject = Callable[[str, int], None]  # object key, records read from it

EXTENSIONS = (".json.gz", ".ndjson.gz", ".csv.gz")


@dataclass(frozen=True, slots=True)
class Filters:
    """Keep only records whose field equals one of the given values (empty: any)."""

    action: frozenset[str] = field(default_factory=frozenset)
    outcome: frozenset[str] = field(default_factory=frozenset)
    event_type: frozenset[str] = field(default_factory=frozenset)
    initiator: frozenset[str] = field(default_factory=frozenset)  # initiator id or name
    target_type: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, specs: list[str]) -> Filters:
        """`["action=create", "outcome=failure"]`; a name may repeat (any of them)."""
        values: dict[str, set[str]] = {}
        names = {"action", "outcome", "event_type", "initiator", "target_type"}
        for spec in specs:
            name, sep, value = spec.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in names:
                raise ValueError(
                    f"filter {spec!r}: use NAME=VALUE with NAME one of {sorted(names)}"
                )
            values.setdefault(name, set()).add(value)
        return cls(**{k: frozenset(v) for k, v in values.items()})

    def match(self, record: Mapping[str, Any]) -> bool:
        def get(*path: str) -> Any:
            value: Any = record
            for part in path:
                value = value.get(part) if isinstance(value, Mapping) else None
            return value

        checks = (
            (self.action, (get("action"),)),
            (self.outcome, (get("outcome"),)),
            (self.event_type, (get("eventType"),)),
            (
                self.initiator,
                (
                    get("initiator", "id"),
                    get("initiator", "name"),
                    get("initiator_id"),
                    get("initiator_name"),
                ),
            ),
            (self.target_type, (get("target", "typeURI"), get("target_typeURI"))),
        )
        return all(not wanted or any(v in wanted for v in got) for wanted, got in checks)


def parse_object(key: str, data: bytes) -> Iterator[Record]:
    """The records of one archive object (raises ValueError on a broken object)."""
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise ValueError(f"not gzip: {exc}") from exc
    if key.endswith(".json.gz"):
        body = json.loads(raw)
        records = body.get("Records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise ValueError('no "Records" list')
        yield from records
    elif key.endswith(".ndjson.gz"):
        for line in raw.splitlines():
            if line.strip():
                yield json.loads(line)
    elif key.endswith(".csv.gz"):
        for row in csv.DictReader(io.StringIO(raw.decode())):
            record: Record = {k: v for k, v in row.items() if v != ""}
            if "extra" in record:
                record["extra"] = json.loads(record["extra"])
            yield record
    else:
        raise ValueError("not an archive object (.json.gz, .ndjson.gz or .csv.gz)")


def _event_time(record: Mapping[str, Any]) -> datetime | None:
    value = record.get("eventTime")
    if not isinstance(value, str):
        return None
    try:
        return d.parse_time(value)
    except ValueError:
        return None


class ArchiveReader:
    """Streams one project's records of one region from a source.

    With `public_keys`, only objects that a digest signed by one of them lists with the
    same SHA-256 are read; any other goes to `on_error`. `prefetch` objects are read
    ahead in threads (the source must allow that; all the sources here do), so memory
    holds at most that many objects. `on_object` is called after each object, `on_error`
    for an object that cannot be read, parsed or verified (reading goes on; without
    `on_error` the error is raised).
    """

    def __init__(
        self,
        source: Source,
        project_id: str,
        region: str,
        *,
        prefix: str = "",
        on_object: OnObject | None = None,
        on_error: OnError | None = None,
        prefetch: int = 4,
        public_keys: Mapping[str, Ed25519PublicKey] | None = None,
    ) -> None:
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self.prefetch = prefetch
        self.public_keys = public_keys
        self._listed: dict[str, str] | None = None  # key -> SHA-256, from verified digests
        self.source = source
        self.project_id = project_id
        self.region = region
        self.prefix = prefix
        self.on_object = on_object
        self.on_error = on_error

    def day_prefix(self, day: datetime) -> str:
        return f"{d.base_prefix(self.project_id, self.region, self.prefix)}{day:%Y/%m/%d}/"

    def objects(self, start: datetime, end: datetime) -> Iterator[str]:
        """Keys of the archive objects in the day folders of [start, end)."""
        day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        while day < end:
            for key in self.source.list(self.day_prefix(day)):
                if key.endswith(EXTENSIONS):
                    yield key
            day += timedelta(days=1)

    def listed(self) -> dict[str, str]:
        """Object key -> SHA-256 of every object listed by a digest whose signature one of
        `public_keys` verifies (the whole chain: late objects are in later digests)."""
        if self._listed is None:
            keys = self.public_keys or {}
            listed: dict[str, str] = {}
            base = d.base_prefix(self.project_id, self.region, self.prefix)
            for key in self.source.list(f"{base}{d.DIGESTS}/"):
                if d.stamp_of(key) is None:
                    continue
                try:
                    document = json.loads(self.source.get(key))
                    public = keys.get(str(document.get("key_fingerprint")))
                    if public is None or not d.verify(document, public):
                        raise ValueError("the digest's signature does not verify")
                except (MissingObject, SourceError, ValueError, AttributeError) as exc:
                    if self.on_error is None:
                        raise ValueError(f"{key}: {exc}") from exc
                    self.on_error(key, exc)
                    continue
                for entry in document.get("objects", []):
                    listed[str(entry["key"])] = str(entry["sha256"])
            self._listed = listed
        return self._listed

    def _check(self, key: str, data: bytes) -> None:
        if self.public_keys is None:
            return
        expected = self.listed().get(key)
        if expected is None:
            raise ValueError("no valid digest lists this object")
        if d.sha256_hex(data) != expected:
            raise ValueError("the object differs from its digest (SHA-256)")

    def _fetched(self, keys: Iterator[str]) -> Iterator[tuple[str, Future[bytes]]]:
        """Objects read ahead by `prefetch` threads: at most that many held at once."""
        with ThreadPoolExecutor(max_workers=self.prefetch, thread_name_prefix="read") as pool:
            ahead: deque[tuple[str, Future[bytes]]] = deque()
            for key in keys:
                ahead.append((key, pool.submit(self.source.get, key)))
                if len(ahead) > self.prefetch:
                    yield ahead.popleft()
            while ahead:
                yield ahead.popleft()

    def records(
        self, start: datetime, end: datetime, filters: Filters | None = None
    ) -> Iterator[Record]:
        """Each record with `start <= eventTime < end` once, day by day."""
        seen: set[str] = set()
        current_day = ""
        for key, fetched in self._fetched(self.objects(start, end)):
            day = "/".join(key.rsplit("/", 4)[-4:-1])
            if day != current_day:  # an id repeats only within its event day
                seen.clear()
                current_day = day
            try:
                data = fetched.result()
                self._check(key, data)
                count = 0
                for record in parse_object(key, data):
                    moment = _event_time(record)
                    if moment is None or not start <= moment < end:
                        continue
                    ident = record.get("id")
                    if isinstance(ident, str):
                        if ident in seen:
                            continue
                        seen.add(ident)
                    if filters is None or filters.match(record):
                        count += 1
                        yield record
            except (MissingObject, SourceError, ValueError) as exc:
                if self.on_error is None:
                    raise
                self.on_error(key, exc)
                continue
            if self.on_object is not None:
                self.on_object(key, count)
