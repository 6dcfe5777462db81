"""Segments: what a segment holds (its header), its id and its file names.

A segment holds the records of one project for one UTC event day, all spooled under the
same archive configuration. The configuration is written into the segment's header, so a
sealed segment is self-describing: after a restart (or from `stacktrail archive flush`)
it is delivered exactly as it would have been, to the same names with the same bytes,
without asking the config store.

Open segments live in the spool's journal (journal.py); sealing builds their own file.
File names (all in the spool directory):

    <id>.open                      being appended to (the format before the journal:
                                   only found, cut and sealed at start)
    <id>.tmp                       being built from the journal (removed at start)
    <id>.<YYYYMMDDTHHMMZ>.sealed   closed; the stamp is the seal time, the object
                                   names' "delivery time"
    <id>.done                      regions already confirmed for a sealed segment
    <id>.corrupt                   a file whose header could not be read (kept aside)

`<id>` is a 16-digit zero-padded number: microseconds since the epoch at creation, made
strictly increasing within the spool, so ids are unique and sort by age.
"""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from stacktrail.domain.trail import ArchiveFormat, Trail, WriteMode

HEADER_VERSION = 1
OPEN_SUFFIX = ".open"
SEALED_SUFFIX = ".sealed"
DONE_SUFFIX = ".done"
TMP_SUFFIX = ".tmp"
CORRUPT_SUFFIX = ".corrupt"

_OPEN_RE = re.compile(r"^(\d{16})\.open$")
_SEALED_RE = re.compile(r"^(\d{16})\.(\d{8}T\d{4}Z)\.sealed$")
STAMP_FORMAT = "%Y%m%dT%H%MZ"


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    """What every record of a segment shares: project, event day, archive destination."""

    project_id: str
    day: str  # YYYY-MM-DD (UTC day of the events)
    container: str
    prefix: str
    format: ArchiveFormat
    regions: tuple[str, ...]
    write_mode: WriteMode
    retention_days: int
    interval: float  # seconds a segment stays open at most

    @classmethod
    def for_trail(
        cls, project_id: str, day: str, trail: Trail, default_regions: tuple[str, ...] = ()
    ) -> SegmentSpec:
        archive = trail.archive
        return cls(
            project_id=project_id,
            day=day,
            container=archive.container,
            prefix=archive.prefix,
            format=archive.format,
            regions=archive.regions or default_regions,
            write_mode=archive.write_mode,
            retention_days=trail.retention_days,
            interval=archive.interval.total_seconds(),
        )

    def to_header(self) -> bytes:
        return orjson.dumps(
            {
                "v": HEADER_VERSION,
                "project_id": self.project_id,
                "day": self.day,
                "container": self.container,
                "prefix": self.prefix,
                "format": self.format.value,
                "regions": list(self.regions),
                "write_mode": self.write_mode.value,
                "retention_days": self.retention_days,
                "interval": self.interval,
            }
        )

    @classmethod
    def from_header(cls, payload: bytes) -> SegmentSpec:
        data: dict[str, Any] = orjson.loads(payload)
        if data.get("v") != HEADER_VERSION:
            raise ValueError(f"unknown segment header version {data.get('v')!r}")
        return cls(
            project_id=str(data["project_id"]),
            day=str(data["day"]),
            container=str(data["container"]),
            prefix=str(data["prefix"]),
            format=ArchiveFormat(data["format"]),
            regions=tuple(str(r) for r in data["regions"]),
            write_mode=WriteMode(data["write_mode"]),
            retention_days=int(data["retention_days"]),
            interval=float(data["interval"]),
        )


@dataclass(eq=False, slots=True)
class Segment:
    """A segment file the spool tracks (open or sealed, not yet deleted).

    A spool holds one per active (project, day): tens of thousands at cloud scale, so the
    fields are kept small (tuples, not sets; the path is derived, not stored).
    """

    id: int
    spec: SegmentSpec
    directory: Path  # the spool's (one shared object)
    size: int  # bytes on disk (whole frames only)
    created: float  # wall-clock seconds
    records: int = 0  # -1: not counted (a sealed segment found at start)
    sealed_at: datetime | None = None
    full: bool = False  # takes no more records; sealed at the next opportunity
    delivered: frozenset[str] = frozenset()  # regions confirmed
    durable_size: int = 0  # size covered by the last fsync
    # a segment held by the journal: where its record frames are, (journal id, offset,
    # length), and the journals holding any of its entries; both empty for a segment in a
    # file of its own (its `path`; for one in the journal, the name a rebuild gives it)
    extents: array[int] = field(default_factory=lambda: array("q"))  # flat triples: small
    journals: tuple[int, ...] = ()
    sealed_time: float = 0.0  # clock when sealed (or found sealed at start)

    @property
    def path(self) -> Path:
        """`<id>.open` until sealed, then `<id>.<stamp>.sealed` (the name of its file, or
        for one in the journal, the name a rebuild gives it)."""
        sealed_at = self.sealed_at
        name = open_name(self.id) if sealed_at is None else sealed_name(self.id, sealed_at)
        return self.directory / name

    def in_journals(self, journal_id: int) -> None:
        """Note that the journal holds an entry of this segment."""
        if journal_id not in self.journals:
            self.journals = (*self.journals, journal_id)

    @property
    def in_journal(self) -> bool:
        return bool(self.journals)

    def ranges(self) -> list[tuple[int, int, int]]:
        """(journal id, offset, length) of each run of its record frames, in order."""
        e = self.extents
        return [(e[i], e[i + 1], e[i + 2]) for i in range(0, len(e), 3)]

    @property
    def sealed(self) -> bool:
        return self.sealed_at is not None

    @property
    def name(self) -> str:
        return format_id(self.id)

    @property
    def stamp(self) -> str:
        """The seal time as YYYYMMDDTHHMMZ (only for sealed segments)."""
        if self.sealed_at is None:
            raise ValueError(f"segment {self.name} is not sealed")
        return self.sealed_at.strftime(STAMP_FORMAT)

    @property
    def pending_regions(self) -> tuple[str, ...]:
        return tuple(r for r in self.spec.regions if r not in self.delivered)


def format_id(segment_id: int) -> str:
    return f"{segment_id:016d}"


def open_name(segment_id: int) -> str:
    return format_id(segment_id) + OPEN_SUFFIX


def sealed_name(segment_id: int, sealed_at: datetime) -> str:
    return f"{format_id(segment_id)}.{sealed_at.strftime(STAMP_FORMAT)}{SEALED_SUFFIX}"


def tmp_name(segment_id: int) -> str:
    return format_id(segment_id) + TMP_SUFFIX


def done_name(segment_id: int) -> str:
    return format_id(segment_id) + DONE_SUFFIX


def parse_open(name: str) -> int | None:
    match = _OPEN_RE.match(name)
    return int(match.group(1)) if match else None


def parse_sealed(name: str) -> tuple[int, datetime] | None:
    match = _SEALED_RE.match(name)
    if not match:
        return None
    stamp = datetime.strptime(match.group(2), STAMP_FORMAT).replace(tzinfo=UTC)
    return int(match.group(1)), stamp
