"""Offline validation of a project's archive against its signed, hash-linked digests.

Walks the digests of one project and region in period order and reports, per period:
a missing or changed object, an object in the data tree that no digest lists, a digest
whose signature does not verify, and breaks in the chain (a missing digest, a link to
the wrong digest or hash, a period that does not follow the one before, and digests
missing after the newest one although their period ended more than `write_delay` ago).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from stacktrail_reader import digest as d
from stacktrail_reader.sources import MissingObject, Source

_DATA_STAMP = re.compile(r"_(\d{8}T\d{4})Z_")
# How long after its period ends a digest may still be on its way: stacktrail writes it
# within a minute or so; this leaves room for a busy or failed-over scheduler.
WRITE_DELAY = timedelta(minutes=15)


class Problem(StrEnum):
    MISSING_OBJECT = "missing object"
    CHANGED_OBJECT = "changed object"
    FOREIGN_OBJECT = "object not in any digest"
    BROKEN_CHAIN = "broken chain"
    BAD_SIGNATURE = "bad signature"


@dataclass(frozen=True, slots=True)
class Finding:
    problem: Problem
    key: str
    detail: str


@dataclass(slots=True)
class PeriodReport:
    start: datetime
    end: datetime | None
    digest_key: str | None
    objects: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.findings


@dataclass(slots=True)
class Report:
    periods: list[PeriodReport] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # newer than the newest digest
    expired: int = 0  # listed objects past their delete_at (gone on purpose)
    # The newest digest's end when digests that should exist by now are missing after it
    # (digests stopped, or the newest ones were deleted: nothing after them can tell
    # which); the report then has a broken-chain period for them.
    silent_since: datetime | None = None

    @property
    def valid(self) -> bool:
        return bool(self.periods) and all(p.valid for p in self.periods)

    @property
    def findings(self) -> list[Finding]:
        return [f for p in self.periods for f in p.findings]


Progress = Callable[[int, int], None]


def load_keys(source: Source, prefix: str = "") -> dict[str, Ed25519PublicKey]:
    """Public keys published in the container (`digests/keys/<fingerprint>.pub`)."""
    keys: dict[str, Ed25519PublicKey] = {}
    base = d.public_key_key("", prefix).removesuffix(".pub")
    for key in source.list(base):
        try:
            public = d.load_public_key(source.get(key))
        except (ValueError, MissingObject):
            continue
        fp = d.fingerprint(public)
        if key.endswith(f"/{fp}.pub"):  # a file must hold the key it is named after
            keys[fp] = public
    return keys


def _loads(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def validate(
    source: Source,
    project_id: str,
    region: str,
    public_keys: dict[str, Ed25519PublicKey],
    *,
    prefix: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
    write_delay: timedelta = WRITE_DELAY,
    on_progress: Progress | None = None,
) -> Report:
    """Check every digest whose period overlaps [start, end) and the objects they list.

    Digests missing after the newest one are a broken chain once their period ended
    more than `write_delay` before `now` (and starts before `end`).
    """
    now = now or datetime.now(UTC)
    base = d.base_prefix(project_id, region, prefix)
    digest_keys = [k for k in source.list(f"{base}{d.DIGESTS}/") if d.stamp_of(k)]
    data_keys = [k for k in source.list(base) if not k.startswith(f"{base}{d.DIGESTS}/")]
    report = Report()
    covered: set[str] = set()
    previous: tuple[str, bytes, dict[str, Any]] | None = None
    last_end: datetime | None = None
    interval: timedelta | None = None
    selected: list[str] = []
    for key in digest_keys:
        stamp = d.stamp_of(key)
        assert stamp is not None
        if (end is None or stamp < end) and (start is None or stamp + _slack(interval) > start):
            selected.append(key)
    total = len(selected)
    done = 0
    for key in digest_keys:
        stamp = d.stamp_of(key)
        assert stamp is not None
        data = source.get(key)
        document = _loads(data) or {}
        entries = [d.DigestEntry.from_json(o) for o in document.get("objects", []) if o]
        covered.update(e.key for e in entries)
        in_range = key in selected
        if in_range:
            if previous is not None:
                report.periods.extend(_gap(previous[0], document, key))
            report.periods.append(
                _check_digest(source, key, stamp, data, document, entries, previous, public_keys)
            )
            period = report.periods[-1]
            for entry in entries:
                if entry.delete_at is not None and entry.delete_at <= now.timestamp():
                    report.expired += 1
                    continue
                _check_object(source, entry, period)
            done += 1
            if on_progress is not None:
                on_progress(done, total)
        try:
            period_end = d.parse_time(str(document["period_end"]))
            interval = period_end - d.parse_time(str(document["period_start"]))
            last_end = max(last_end, period_end) if last_end else period_end
        except (KeyError, ValueError):
            pass
        previous = (key, data, document)
    _foreign(report, data_keys, covered, last_end, interval, start, end)
    if last_end is not None and interval is not None:
        missing = _missing_at_end(last_end, interval, start, end, now - write_delay)
        if missing is not None:
            first, count = missing
            report.silent_since = last_end
            period = PeriodReport(start=first, end=first + count * interval, digest_key=None)
            period.findings.append(
                Finding(
                    Problem.BROKEN_CHAIN,
                    d.digest_key(project_id, region, first, prefix),
                    f"{count} digest(s) missing at the end of the chain, up to "
                    f"{d.iso(first + count * interval)}: none after {d.iso(last_end)}, though "
                    f"their periods ended more than {_words(write_delay)} ago (digests were turned "
                    "off, or the newest ones were deleted)",
                )
            )
            report.periods.append(period)
    return report


def _words(delay: timedelta) -> str:
    seconds = int(delay.total_seconds())
    for size, unit in ((3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}{'s' if seconds != size else ''}"
    return f"{seconds} seconds"


def _missing_at_end(
    last_end: datetime,
    step: timedelta,
    start: datetime | None,
    end: datetime | None,
    due_by: datetime,
) -> tuple[datetime, int] | None:
    """(first start, count) of the periods after `last_end` that overlap [start, end) and
    ended by `due_by`: their digests should exist."""
    if step <= timedelta(0):
        return None
    first = 0
    if start is not None and start > last_end:
        first = (start - last_end) // step  # the period `start` falls in
    ended = (due_by - last_end) // step  # periods [last_end + k*step, ...) ended by due_by
    if end is not None:
        ended = min(ended, -((last_end - end) // step))  # those starting before `end`
    if ended <= first:
        return None
    return last_end + first * step, ended - first


def _gap(before: str, after: dict[str, Any], key: str) -> list[PeriodReport]:
    """A period for each digest missing between two (deleted: the chain is broken there)."""
    first, end = d.stamp_of(before), d.stamp_of(key)
    try:
        step = d.parse_time(str(after["period_end"])) - d.parse_time(str(after["period_start"]))
    except (KeyError, ValueError):
        return []
    if first is None or end is None:
        return []
    start = first + step
    gaps: list[PeriodReport] = []
    link = after.get("previous_digest") or {}
    while start < end and step > timedelta(0) and len(gaps) < 100_000:
        missing = PeriodReport(start=start, end=min(start + step, end), digest_key=None)
        missing.findings.append(
            Finding(
                Problem.BROKEN_CHAIN,
                str(link.get("key")) if start + step >= end else "",
                f"no digest for this period (the next one, {key}, links to it)",
            )
        )
        gaps.append(missing)
        start += step
    return gaps


def _slack(interval: timedelta | None) -> timedelta:
    return interval or timedelta(hours=1)


def _check_digest(
    source: Source,
    key: str,
    stamp: datetime,
    data: bytes,
    document: dict[str, Any],
    entries: list[d.DigestEntry],
    previous: tuple[str, bytes, dict[str, Any]] | None,
    public_keys: dict[str, Ed25519PublicKey],
) -> PeriodReport:
    period = PeriodReport(start=stamp, end=None, digest_key=key, objects=len(entries))
    add = period.findings.append
    if not document:
        add(Finding(Problem.BAD_SIGNATURE, key, "the digest is not a JSON object"))
        return period
    try:
        period.end = d.parse_time(str(document["period_end"]))
        claimed = d.parse_time(str(document["period_start"]))
    except (KeyError, ValueError):
        add(Finding(Problem.BROKEN_CHAIN, key, "the digest has no valid period"))
        return period
    fp = str(document.get("key_fingerprint", ""))
    public = public_keys.get(fp)
    if public is None:
        add(Finding(Problem.BAD_SIGNATURE, key, f"no public key with fingerprint {fp!r}"))
    elif not d.verify(document, public):
        add(Finding(Problem.BAD_SIGNATURE, key, f"the signature does not verify with key {fp}"))
    if claimed != stamp:
        add(Finding(Problem.BROKEN_CHAIN, key, f"the digest is of the period {d.iso(claimed)}"))
    link = document.get("previous_digest")
    if previous is None:
        if link:
            # The digest before the first one listed: gone (deleted, or expired).
            add(Finding(Problem.BROKEN_CHAIN, key, f"previous digest {link.get('key')} is missing"))
        return period
    prev_key, prev_data, prev_doc = previous
    if not link:
        add(Finding(Problem.BROKEN_CHAIN, key, f"starts a new chain after {prev_key}"))
        return period
    prev_stamp = d.stamp_of(prev_key)
    if prev_stamp is not None and prev_stamp + (period.end - claimed) < stamp:
        return period  # digests are missing in between: the caller reports the gap
    if link.get("key") != prev_key:
        add(
            Finding(
                Problem.BROKEN_CHAIN,
                key,
                f"previous digest {link.get('key')} is missing (found {prev_key} before it)",
            )
        )
    elif link.get("sha256") != d.sha256_hex(prev_data):
        add(Finding(Problem.BROKEN_CHAIN, key, f"previous digest {prev_key} was changed"))
    elif link.get("signature") != prev_doc.get("signature"):
        add(Finding(Problem.BROKEN_CHAIN, key, f"previous digest {prev_key} has another signature"))
    elif str(prev_doc.get("period_end")) != str(document.get("period_start")):
        add(Finding(Problem.BROKEN_CHAIN, key, f"does not follow the period of {prev_key}"))
    return period


def _check_object(source: Source, entry: d.DigestEntry, period: PeriodReport) -> None:
    try:
        data = source.get(entry.key)
    except MissingObject:
        period.findings.append(Finding(Problem.MISSING_OBJECT, entry.key, "listed, not found"))
        return
    if len(data) != entry.size or d.sha256_hex(data) != entry.sha256:
        period.findings.append(
            Finding(
                Problem.CHANGED_OBJECT,
                entry.key,
                f"{len(data)} bytes, SHA-256 {d.sha256_hex(data)}; the digest says "
                f"{entry.size} bytes, {entry.sha256}",
            )
        )


def _foreign(
    report: Report,
    data_keys: Iterable[str],
    covered: set[str],
    last_end: datetime | None,
    interval: timedelta | None,
    start: datetime | None,
    end: datetime | None,
) -> None:
    """Objects in the data tree that no digest lists, charged to the period of their name."""
    for key in data_keys:
        if key in covered:
            continue
        match = _DATA_STAMP.search(key.rsplit("/", 1)[-1])
        stamp = (
            datetime.strptime(match.group(1), "%Y%m%dT%H%M").replace(tzinfo=UTC) if match else None
        )
        # Sealed shortly before the newest digest's end: delivered after it, not yet digested.
        if stamp is not None and (last_end is None or stamp >= last_end - _slack(interval)):
            report.pending.append(key)
            continue
        if stamp is not None and (
            (start is not None and stamp < start) or (end is not None and stamp >= end)
        ):
            continue
        period = _period_of(report, stamp)
        period.findings.append(Finding(Problem.FOREIGN_OBJECT, key, "no digest lists it"))


def _period_of(report: Report, stamp: datetime | None) -> PeriodReport:
    """The period a stamp falls in, else the last one before it, else the first."""
    if not report.periods:
        report.periods.append(
            PeriodReport(start=stamp or datetime.now(UTC), end=None, digest_key=None)
        )
    chosen = report.periods[0]
    for period in report.periods:
        if stamp is not None and period.start <= stamp:
            chosen = period
    return chosen
