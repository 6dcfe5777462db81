"""The durable spool: one journal with group commit; segments are ranges of it.

One open segment per (project, UTC event day). `write` appends a whole batch of records,
of every project at once, to the journal (journal.py) as one frame and makes it durable
with one fdatasync before it returns, so a batch's commit costs one write and one
fdatasync whatever the number of projects it touches. Only then may the caller report the
records as delivered. A segment is the list of journal ranges that hold its record
frames; `read` gathers them for delivery.

A segment is sealed when it is older than its trail's interval, when the next record
would make it bigger than `segment_max_bytes`, when its trail's archive configuration
changed, or on request (`seal_all`): one journal frame of S entries (with the seal stamp
that names its objects), fdatasync'ed, however many segments it seals. Once every region
of its header confirmed a segment (`confirm`), a D entry marks it gone. A journal is
deleted once none of its segments is left, oldest first.

A project whose deliveries fail must not keep the journals of everybody: a journal that
only sealed segments hold, sealed longer than `rebuild_after` seconds, has them rebuilt
into files of their own (`<id>.tmp`, fdatasync'ed, renamed to `<id>.<stamp>.sealed`, the
directory synced, then a D entry), after which it is deleted (`rebuild`, which the
archive sink calls with every seal check).

On `open`, the journals are replayed: each is cut at its last whole frame, segments keep
their seal stamp and confirmed regions (`<id>.done`), segments still open are sealed.
Segment files left open by the format before the journal (`<id>.open`) are cut at their
last whole frame and sealed. A process lock (`flock` on `.lock`) keeps a second process
off the same spool.

`fault` (tests) is called with the name of each on-disk step just after it (FAULT_POINTS),
so a test can kill the process or fail the call right there.

The class is synchronous and thread-safe; async callers run its methods in a worker
thread (`asyncio.to_thread`) so fsync never blocks the event loop.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import logging
import os
import threading
import time
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from stacktrail.archive.durable_fs import fsync_dir
from stacktrail.archive.spool.framing import (
    FRAME,
    FRAME_OVERHEAD,
    MAGIC,
    MAX_PAYLOAD,
    frame,
    frame_header,
    scan,
    scan_spans,
)
from stacktrail.archive.spool.journal import (
    ENTRY_OVERHEAD,
    GONE,
    HEADER,
    JOURNAL_MAGIC,
    RECORDS,
    SEALED,
    count_frames,
    entries,
    entry_head,
    journal_name,
    parse_journal,
    split_frames,
)
from stacktrail.archive.spool.segment import (
    CORRUPT_SUFFIX,
    DONE_SUFFIX,
    STAMP_FORMAT,
    TMP_SUFFIX,
    Segment,
    SegmentSpec,
    done_name,
    format_id,
    open_name,
    parse_open,
    parse_sealed,
    sealed_name,
    tmp_name,
)

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
# fdatasyncs in flight when many segments are sealed at once (a full spool, shutdown).
SYNC_THREADS = 64
# A new journal is started past this size; the old one goes once its segments are sealed.
JOURNAL_MAX_BYTES = 64 << 20
# A journal that only sealed segments hold is rebuilt away after this many seconds: a
# healthy delivery takes far less, so this only copies the backlog of failing projects.
REBUILD_AFTER = 60.0
FAULT_POINTS = (
    "journal-created",  # a new journal file exists (magic written, directory synced)
    "journal-written",  # a batch (or S or D entries) written, not yet fdatasync'ed
    "journal-synced",  # ... and fdatasync'ed
    "rebuild-built",  # segment files built as <id>.tmp from the journal, fdatasync'ed
    "rebuild-renamed",  # ... renamed to <id>.<stamp>.sealed, directory synced
    "journal-removed",  # dead journals unlinked, directory not yet synced
)
Fault = Callable[[str], None]


class SpoolLockedError(RuntimeError):
    """Another process holds the spool directory."""


def lock_holder(directory: Path) -> int | None:
    """The pid recorded by the process holding the spool, if any."""
    try:
        text = (directory / LOCK_NAME).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@dataclass(slots=True)
class RecoveryReport:
    """What `Spool.open` found in the directory."""

    recovered: int = 0  # segments left open (in a journal or a file), rebuilt and sealed
    sealed: int = 0  # segments already sealed, waiting for delivery
    removed_empty: int = 0  # open segments with no whole record
    truncated: list[tuple[str, int, str]] = field(default_factory=list)  # file, bytes cut, why
    corrupt: list[str] = field(default_factory=list)  # files set aside as .corrupt


_IOV_MAX = 1024


def _write_all(fd: int, chunks: Sequence[bytes | bytearray], offset: int | None = None) -> None:
    """Write `chunks` in as few system calls as possible (writev, or pwritev at `offset`),
    resuming short writes."""
    pending = [memoryview(c) for c in chunks if c]
    first = 0
    while first < len(pending):
        window = pending[first : first + _IOV_MAX]
        if offset is None:
            written = os.writev(fd, window)
        else:
            written = os.pwritev(fd, window, offset)
            offset += written
        while written:
            if written >= len(pending[first]):
                written -= len(pending[first])
                first += 1
            else:
                pending[first] = pending[first][written:]
                written = 0


def _copy_range(src: int, dst: int, offset: int, length: int) -> None:
    """Append `length` bytes of `src` from `offset` to `dst` (in the kernel when it can)."""
    while length:
        try:
            copied = os.copy_file_range(src, dst, length, offset)
        except OSError:
            copied = 0
        if not copied:  # not supported here (or a short file): copy through user space
            data = os.pread(src, length, offset)
            if not data:
                raise OSError(f"journal range {offset}+{length} is beyond the file's end")
            _write_all(dst, [data])
            copied = len(data)
        offset += copied
        length -= copied


@dataclass(eq=False, slots=True)
class _Journal:
    id: int
    path: Path
    fd: int  # open read-write while the journal exists
    size: int  # bytes of whole, durable frames (and the magic)
    live: set[int] = field(default_factory=set)  # segments with entries here, not sealed


def _read_header(path: Path) -> SegmentSpec:
    with path.open("rb") as fh:
        head = fh.read(len(MAGIC) + FRAME_OVERHEAD)
        length = int.from_bytes(head[len(MAGIC) : len(MAGIC) + 4], "little")
        data = head + fh.read(length)
    result = scan(data)
    if not result.payloads:
        raise ValueError(result.problem or "no header")
    return SegmentSpec.from_header(result.payloads[0])


def _header_bytes(spec: SegmentSpec) -> bytes:
    """What a segment's file starts with."""
    return MAGIC + frame(spec.to_header())


def _file_size_of_header(header: bytes) -> int:
    """The bytes `_header_bytes` takes for this encoded header (without building them)."""
    return len(MAGIC) + FRAME_OVERHEAD + len(header)


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        segment_max_bytes: int,
        max_bytes: int,
        clock: Callable[[], float] = time.time,
        journal_max_bytes: int | None = None,
        rebuild_after: float = REBUILD_AFTER,
        fault: Fault | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.segment_max_bytes = segment_max_bytes
        self.max_bytes = max_bytes
        # a small spool gets small journals, so a pinned one holds little of it
        self.journal_max_bytes = journal_max_bytes or min(
            JOURNAL_MAX_BYTES, max(max_bytes // 16, 4096)
        )
        self.rebuild_after = rebuild_after
        self._clock = clock
        self._fault = fault
        self._lock = threading.RLock()
        self._segments: dict[int, Segment] = {}
        self._open: dict[tuple[str, str], Segment] = {}  # (project, day) -> appendable
        # (created + interval, id) of every segment opened, earliest first: `seal_due`
        # looks only at those due, not at every segment (tens of thousands at scale);
        # entries of segments sealed meanwhile are skipped when they come up
        self._due: list[tuple[float, int]] = []
        self._full: set[int] = set()  # ids of segments that take no more, not yet sealed
        self._sealed: dict[int, Segment] = {}  # the sealed ones, in the order they sealed
        self._waiting_in: Counter[str] = Counter()  # region -> sealed segments it lacks
        # region -> project -> that project's sealed segments the region lacks, in seal
        # order: the uploader looks at projects, not at every waiting segment, so the
        # backlog of a project whose deliveries fail costs it no walk per job
        self._lacking: dict[str, dict[str, dict[int, Segment]]] = {}
        self._project_bytes: dict[str, int] = {}
        self._used = 0  # bytes on disk: journals and segment files
        self._last_id = 0
        self._last_journal_id = 0
        self._journals: dict[int, _Journal] = {}
        self._current: _Journal | None = None  # the journal batches go to
        self._unsynced = False  # D entries written to the current journal, not synced
        self._lock_fd: int | None = None
        self._sync_pool: ThreadPoolExecutor | None = None

    # --- state

    @property
    def used_bytes(self) -> int:
        """Bytes the spool holds on disk (journals and segment files)."""
        return self._used

    def pending_bytes(self, project_id: str) -> int:
        """Bytes of the project's undelivered segments (as a segment file holds them)."""
        return self._project_bytes.get(project_id, 0)

    def backlog(self, project_id: str) -> tuple[int, int, float | None]:
        """(bytes, records, creation time of the oldest) of the project's segments; the
        records of segments found at start in files of their own count once read."""
        records = 0
        oldest: float | None = None
        for seg in list(self._segments.values()):
            if seg.spec.project_id == project_id:
                records += max(seg.records, 0)
                oldest = seg.created if oldest is None else min(oldest, seg.created)
        return self.pending_bytes(project_id), records, oldest

    def segments(self) -> list[Segment]:
        """A snapshot, oldest first. Lock-free on purpose: the event loop calls this while a
        worker thread may hold the lock through an fsync; `list()` of a dict view runs
        without releasing the GIL, so the copy is consistent."""
        return sorted(list(self._segments.values()), key=lambda s: s.id)

    def oldest_created(self) -> float | None:
        """When the oldest segment was created (None: the spool is empty); lock-free as
        `segments`, and without sorting: a metrics scrape reads it."""
        return min((s.created for s in list(self._segments.values())), default=None)

    def waiting_regions(self) -> dict[str, int]:
        """Region -> sealed segments not yet confirmed there (regions with any)."""
        return {r: n for r, n in list(self._waiting_in.items()) if n > 0}

    def lacking_projects(self, region: str) -> list[str]:
        """The projects with sealed segments `region` lacks, in the order their first such
        segment sealed; lock-free as `segments` (the uploader asks after every job)."""
        return list(self._lacking.get(region, ()))

    def lacking(self, region: str, project_id: str) -> list[Segment]:
        """The project's sealed segments `region` lacks, in seal order; lock-free."""
        return list(self._lacking.get(region, {}).get(project_id, {}).values())

    def _add_sealed(self, seg: Segment) -> None:
        if seg.id not in self._sealed:
            self._sealed[seg.id] = seg
            self._lack(seg)

    def _lack(self, seg: Segment) -> None:
        """Count a sealed segment as waiting in each region it is not confirmed in."""
        project = seg.spec.project_id
        for region in seg.pending_regions:
            self._lacking.setdefault(region, {}).setdefault(project, {})[seg.id] = seg
            self._waiting_in[region] += 1

    def _unlack(self, seg: Segment, regions: Iterable[str]) -> None:
        """`regions` have the segment now (or it is gone): it waits there no more."""
        project = seg.spec.project_id
        for region in regions:
            projects = self._lacking.get(region)
            if projects is None:
                continue
            waiting = projects.get(project)
            if waiting is None or waiting.pop(seg.id, None) is None:
                continue
            self._waiting_in[region] -= 1
            if not waiting:
                del projects[project]
                if not projects:
                    del self._lacking[region]

    def sealed_segments(self) -> list[Segment]:
        """The sealed segments in the order they were sealed (found at start: by id). A
        copy without sorting, lock-free as `segments` (a flush asks once)."""
        return list(self._sealed.values())

    def journal_files(self) -> list[tuple[Path, int]]:
        """Each journal and the bytes of it that are whole frames (tests, diagnostics)."""
        return [(j.path, j.size) for j in sorted(list(self._journals.values()), key=lambda j: j.id)]

    def _hit(self, point: str) -> None:
        if self._fault is not None:
            self._fault(point)

    def _account_project(self, seg: Segment, delta: int) -> None:
        project = seg.spec.project_id
        remaining = self._project_bytes.get(project, 0) + delta
        if remaining:
            self._project_bytes[project] = remaining
        else:
            self._project_bytes.pop(project, None)

    def _account(self, seg: Segment, delta: int) -> None:
        """A segment file grew or went: on disk and in its project's share."""
        self._used += delta
        self._account_project(seg, delta)

    def _next_id(self) -> int:
        self._last_id = max(int(self._clock() * 1_000_000), self._last_id + 1)
        return self._last_id

    def _forget(self, seg: Segment) -> None:
        self._segments.pop(seg.id, None)
        if self._sealed.pop(seg.id, None) is not None:
            self._unlack(seg, seg.pending_regions)
        self._full.discard(seg.id)
        key = (seg.spec.project_id, seg.spec.day)
        if self._open.get(key) is seg:
            del self._open[key]
        if seg.in_journal:  # its bytes on disk go with its journals
            self._account_project(seg, -seg.size)
            for journal_id in seg.journals:
                self._journals[journal_id].live.discard(seg.id)
            seg.journals = ()
            seg.extents = array("q")
        else:
            self._account(seg, -seg.size)

    # --- open / close

    def open(self) -> RecoveryReport:
        """Lock the directory and take over what a previous process left."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolLockedError(
                f"spool {self.directory} is in use by another stacktrail process"
            ) from None
        # The holder's pid, so `stacktrail archive flush` can ask a running service to flush.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd
        with self._lock:
            return self._recover()

    def close(self) -> None:
        with self._lock:
            if self._unsynced and self._current is not None:
                with contextlib.suppress(OSError):
                    os.fdatasync(self._current.fd)
            for journal in self._journals.values():
                os.close(journal.fd)
            self._journals.clear()
            self._current = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None
            if self._sync_pool is not None:
                self._sync_pool.shutdown()
                self._sync_pool = None

    def _recover(self) -> RecoveryReport:
        report = RecoveryReport()
        open_ids: list[int] = []
        journal_ids: list[int] = []
        done_files: dict[int, Path] = {}
        taken: set[int] = set()  # segment ids that have a file of their own
        for entry in sorted(os.listdir(self.directory)):
            path = self.directory / entry
            if (segment_id := parse_open(entry)) is not None:
                open_ids.append(segment_id)
            elif (journal_id := parse_journal(entry)) is not None:
                journal_ids.append(journal_id)
            elif entry.endswith(TMP_SUFFIX):
                path.unlink()  # a rebuild a crash cut short: the journal still holds it
            elif (parsed := parse_sealed(entry)) is not None:
                segment_id, sealed_at = parsed
                self._last_id = max(self._last_id, segment_id)
                taken.add(segment_id)
                try:
                    spec = _read_header(path)
                except (OSError, ValueError, KeyError) as exc:
                    self._set_aside(path, segment_id, str(exc), report)
                    continue
                size = path.stat().st_size
                seg = Segment(
                    segment_id,
                    spec,
                    self.directory,
                    size,
                    created=sealed_at.timestamp(),
                    records=-1,
                )
                seg.sealed_at = sealed_at
                seg.sealed_time = self._clock()
                seg.durable_size = size
                self._segments[segment_id] = seg
                self._sealed[segment_id] = seg
                self._account(seg, size)
                report.sealed += 1
            elif entry.endswith(DONE_SUFFIX) and entry[: -len(DONE_SUFFIX)].isdigit():
                done_files[int(entry[: -len(DONE_SUFFIX)])] = path
            elif (
                entry == format_id(int(entry[:16])) + CORRUPT_SUFFIX
                if entry[:16].isdigit()
                else False
            ):
                taken.add(int(entry[:16]))
        for segment_id in open_ids:
            self._last_id = max(self._last_id, segment_id)
            taken.add(segment_id)
            self._recover_open(segment_id, report)
        self._replay(journal_ids, taken, report)
        for segment_id, path in done_files.items():
            found = self._segments.get(segment_id)
            if found is None:
                path.unlink(missing_ok=True)
                continue
            regions = set(path.read_text(errors="replace").splitlines())
            found.delivered = frozenset(regions & set(found.spec.regions))
        self._waiting_in, self._lacking = Counter(), {}
        for seg in self._sealed.values():
            self._lack(seg)
        for done in [s for s in self._segments.values() if s.sealed and not s.pending_regions]:
            self._delete(done)
        self._drop_dead_journals()
        fsync_dir(self.directory)
        return report

    def _replay(self, journal_ids: list[int], taken: set[int], report: RecoveryReport) -> None:
        """Take over the segments the journals hold; seal those still open."""
        found: dict[int, Segment] = {}
        gone: set[int] = set()
        for journal_id in sorted(journal_ids):
            self._last_journal_id = max(self._last_journal_id, journal_id)
            path = self.directory / journal_name(journal_id)
            fd = os.open(path, os.O_RDWR)
            journal = _Journal(journal_id, path, fd, os.fstat(fd).st_size)
            self._journals[journal_id] = journal
            try:
                self._replay_one(journal, found, gone, report)
            except ValueError as exc:  # whole frames this version cannot read: keep them
                target = path.with_name(path.name + CORRUPT_SUFFIX)
                log.error(
                    "spool: journal %s is unreadable (%s); kept as %s", path.name, exc, target.name
                )
                os.replace(path, target)
                report.corrupt.append(target.name)
                journal.path = target
            self._used += journal.size
        still_open: list[Segment] = []
        for segment_id, seg in sorted(found.items()):
            self._last_id = max(self._last_id, segment_id)
            if segment_id in gone or segment_id in taken or not seg.extents:
                continue  # delivered, or rebuilt into its own file, before the crash
            seg.durable_size = seg.size
            for journal_id in seg.journals:
                self._journals[journal_id].live.add(segment_id)
            self._segments[segment_id] = seg
            self._account_project(seg, seg.size)
            if seg.sealed_at is not None:
                self._sealed[segment_id] = seg
                seg.created = seg.sealed_at.timestamp()  # as for a sealed file found
                seg.sealed_time = self._clock()
                report.sealed += 1
            else:
                still_open.append(seg)
        if still_open:
            self._seal(still_open)
            report.recovered += len(still_open)

    def _replay_one(
        self, journal: _Journal, found: dict[int, Segment], gone: set[int], report: RecoveryReport
    ) -> None:
        data = os.pread(journal.fd, journal.size, 0)
        view = memoryview(data)
        spans, good_end, clean, problem = scan_spans(view, JOURNAL_MAGIC)
        if not clean:
            if good_end == 0 and len(data) > len(JOURNAL_MAGIC):
                raise ValueError(problem)
            cut = len(data) - good_end
            log.warning(
                "spool: %s: %s; cut %d bytes after the last whole batch",
                journal.path.name,
                problem,
                cut,
            )
            os.ftruncate(journal.fd, good_end)
            os.fsync(journal.fd)
            journal.size = good_end
            report.truncated.append((journal.path.name, cut, problem))
        for start, length in spans:
            for entry in entries(data[start : start + length], start):
                seg = found.get(entry.segment_id)
                body = data[entry.offset : entry.offset + entry.length]
                if entry.kind == HEADER:
                    try:
                        spec = SegmentSpec.from_header(body)
                    except (ValueError, KeyError, TypeError) as exc:
                        raise ValueError(f"bad segment header: {exc}") from exc
                    seg = Segment(
                        entry.segment_id,
                        spec,
                        self.directory,
                        size=len(_header_bytes(spec)),  # as a rebuild writes it
                        created=self._clock(),
                    )
                    seg.in_journals(journal.id)
                    found[entry.segment_id] = seg
                elif entry.kind == GONE:
                    gone.add(entry.segment_id)
                elif seg is None:
                    # Its H entry was in a journal already removed, which only happens
                    # once the segment is gone (delivered or rebuilt into its own file).
                    continue
                elif entry.kind == RECORDS:
                    seg.records += count_frames(body)
                    seg.size += entry.length
                    seg.extents.extend((journal.id, entry.offset, entry.length))
                    seg.in_journals(journal.id)
                else:  # SEALED
                    try:
                        stamp = datetime.strptime(body.decode(), STAMP_FORMAT)
                    except ValueError as exc:
                        raise ValueError(f"bad seal stamp: {exc}") from exc
                    seg.sealed_at = stamp.replace(tzinfo=UTC)
                    seg.full = True
                    seg.in_journals(journal.id)

    def _set_aside(self, path: Path, segment_id: int, problem: str, report: RecoveryReport) -> None:
        target = self.directory / (format_id(segment_id) + CORRUPT_SUFFIX)
        log.error("spool: %s is unreadable (%s); kept as %s", path.name, problem, target.name)
        os.replace(path, target)
        report.corrupt.append(target.name)

    def _recover_open(self, segment_id: int, report: RecoveryReport) -> None:
        path = self.directory / open_name(segment_id)
        data = path.read_bytes()
        result = scan(data)
        spec: SegmentSpec | None = None
        if result.payloads:
            try:
                spec = SegmentSpec.from_header(result.payloads[0])
            except (ValueError, KeyError) as exc:
                self._set_aside(path, segment_id, f"bad header: {exc}", report)
                return
        records = max(len(result.payloads) - 1, 0)
        if spec is None or records == 0:
            if data and spec is None and result.good_end == 0 and len(data) > len(MAGIC):
                self._set_aside(path, segment_id, result.problem, report)
                return
            path.unlink()
            report.removed_empty += 1
            return
        if not result.clean:
            cut = len(data) - result.good_end
            log.warning(
                "spool: %s: %s; cut %d bytes after the last whole record",
                path.name,
                result.problem,
                cut,
            )
            with path.open("r+b") as fh:
                fh.truncate(result.good_end)
                fh.flush()
                os.fsync(fh.fileno())
            report.truncated.append((path.name, cut, result.problem))
        seg = Segment(segment_id, spec, self.directory, result.good_end, created=self._clock())
        seg.records = records
        seg.durable_size = result.good_end
        self._segments[segment_id] = seg
        self._account(seg, seg.size)
        self._seal([seg], sync_dir=False)
        report.recovered += 1

    # --- the journal

    def _next_journal_id(self) -> int:
        self._last_journal_id = max(int(self._clock() * 1_000_000), self._last_journal_id + 1)
        return self._last_journal_id

    def _journal_for_write(self, *, rotate: bool = True) -> _Journal:
        """The current journal; a new one if there is none or (`rotate`) it is full."""
        current = self._current
        if current is not None and (current.size < self.journal_max_bytes or not rotate):
            return current
        journal_id = self._next_journal_id()
        path = self.directory / journal_name(journal_id)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _write_all(fd, [JOURNAL_MAGIC], 0)
            fsync_dir(self.directory)  # its first frame's fdatasync covers the magic
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        if current is not None and self._unsynced:
            os.fdatasync(current.fd)  # the D entries there stay the newest word
            self._unsynced = False
        journal = _Journal(journal_id, path, fd, len(JOURNAL_MAGIC))
        self._journals[journal_id] = journal
        self._current = journal
        self._used += journal.size
        self._hit("journal-created")
        return journal

    def _append(
        self,
        parts: Sequence[bytes | bytearray],
        length: int,
        *,
        sync: bool = True,
        note: bool = False,
    ) -> tuple[_Journal, int]:
        """Append one frame of `parts` (`length` bytes) to the current journal, durably
        unless `sync` is False; returns the journal and the file offset of the payload. On
        error the journal is cut back to its last whole frame. A `note` (S or D entries,
        a few bytes) never starts a journal of its own while there is one: on a full disk
        sealing and deliveries go on."""
        journal = self._journal_for_write(rotate=not note)
        crc = 0
        for part in parts:
            crc = zlib.crc32(part, crc)
        offset = journal.size
        try:
            _write_all(journal.fd, [frame_header(length, crc), *parts], offset)
            self._hit("journal-written")
            if sync:
                os.fdatasync(journal.fd)
        except BaseException:
            try:
                os.ftruncate(journal.fd, offset)
            except OSError:
                log.exception("spool: could not cut %s back after a failed write", journal.path)
            raise
        journal.size = offset + FRAME_OVERHEAD + length
        self._used += FRAME_OVERHEAD + length
        if sync:
            self._unsynced = False
            self._hit("journal-synced")
        else:
            self._unsynced = True
        return journal, offset + FRAME_OVERHEAD

    def _drop_dead_journals(self) -> None:
        """Delete the oldest journals while none of their segments is left (oldest first,
        so the D entries that end a journal's segments outlive it)."""
        dead = []
        for journal_id in sorted(self._journals):
            journal = self._journals[journal_id]
            if journal.live:
                break
            dead.append(journal)
        if not dead:
            return
        current = self._current
        if self._unsynced and current is not None and current not in dead:
            os.fdatasync(current.fd)  # the D entries that end them, before they go
            self._unsynced = False
        for journal in dead:
            os.close(journal.fd)
            del self._journals[journal.id]
            if self._current is journal:
                self._current = None
                self._unsynced = False
            if not journal.path.name.endswith(CORRUPT_SUFFIX):  # kept for a look
                journal.path.unlink(missing_ok=True)
            self._used -= journal.size
        self._hit("journal-removed")
        fsync_dir(self.directory)

    # --- writing

    def write(self, items: Sequence[tuple[SegmentSpec, bytes]]) -> list[Segment]:
        """Append records and make them durable; on error nothing of the batch remains.

        Each item is (segment spec, record payload). When this returns, every record is
        on disk (one journal frame, fdatasync'ed); segments that filled up are sealed
        afterwards and returned.
        """
        if not items:
            return []
        with self._lock:
            if self._lock_fd is None:
                raise RuntimeError("spool is not open")
            groups: dict[Segment, bytearray] = {}  # record frames, per segment
            headers: dict[Segment, bytes] = {}  # of the segments this batch opens
            created: list[Segment] = []
            filled: list[Segment] = []
            open_segments = self._open
            limit = self.segment_max_bytes
            pack, crc32 = FRAME.pack, zlib.crc32
            try:
                # The per-record loop does only what it must (this is the hot path).
                for spec, payload in items:
                    length = len(payload)
                    if not 0 < length <= MAX_PAYLOAD:
                        frame(payload)  # raises the error that says why
                    size = length + FRAME_OVERHEAD
                    seg = open_segments.get((spec.project_id, spec.day))
                    if (
                        seg is None
                        or (seg.spec is not spec and seg.spec != spec)
                        or (seg.records > 0 and seg.size + size > limit)
                    ):
                        seg = self._target(spec, size, created, filled, headers)
                    buffer = groups.get(seg)
                    if buffer is None:
                        buffer = groups[seg] = bytearray()
                    buffer += pack(length, crc32(payload))
                    buffer += payload
                    seg.size += size
                    seg.records += 1
                out = bytearray()
                placed: list[tuple[Segment, int, int, int]] = []  # offset, length, growth
                for seg, buffer in groups.items():
                    grown = len(buffer)
                    if not seg.extents:  # its first records: the journal learns its header
                        header = headers.get(seg) or seg.spec.to_header()
                        out += entry_head(HEADER, seg.id, len(header))
                        out += header
                        grown = seg.size
                    out += entry_head(RECORDS, seg.id, len(buffer))
                    placed.append((seg, len(out), len(buffer), grown))
                    out += buffer
                journal, base = self._append([out], len(out))
            except BaseException:
                self._rollback(groups, created)
                try:  # a journal created for this batch goes with it
                    self._drop_dead_journals()
                except OSError:
                    log.exception("spool: could not remove an unused journal")
                raise
            journal_id = journal.id
            live = journal.live
            shares = self._project_bytes
            for seg, at, length, grown in placed:
                seg.extents.extend((journal_id, base + at, length))
                seg.in_journals(journal_id)
                live.add(seg.id)
                project = seg.spec.project_id
                shares[project] = shares.get(project, 0) + grown
                seg.durable_size = seg.size
            try:
                return self._seal(filled)
            except OSError:  # the records are durable; seal_due retries
                log.exception("spool: sealing full segments failed")
                return []

    def _sync(self, fds: list[int]) -> None:
        """fdatasync every file; in parallel, so rebuilding many segments costs about one."""
        if len(fds) == 1:
            os.fdatasync(fds[0])
            return
        if self._sync_pool is None:
            self._sync_pool = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="spool-sync")
        for _ in self._sync_pool.map(os.fdatasync, fds):
            pass

    def _target(
        self,
        spec: SegmentSpec,
        size: int,
        created: list[Segment],
        filled: list[Segment],
        headers: dict[Segment, bytes],
    ) -> Segment:
        key = (spec.project_id, spec.day)
        seg = self._open.get(key)
        if seg is not None and (
            (seg.spec is not spec and seg.spec != spec)
            or (seg.records > 0 and seg.size + size > self.segment_max_bytes)
        ):
            seg.full = True
            self._full.add(seg.id)
            filled.append(seg)
            del self._open[key]
        seg = self._open.get(key)
        if seg is None:
            segment_id = self._next_id()
            header = spec.to_header()
            seg = Segment(
                segment_id,
                spec,
                self.directory,
                size=_file_size_of_header(header),
                created=self._clock(),
            )
            headers[seg] = header
            self._segments[segment_id] = seg
            self._open[key] = seg
            heapq.heappush(self._due, (seg.created + spec.interval, segment_id))
            created.append(seg)
        return seg

    def _rollback(self, groups: dict[Segment, bytearray], created: list[Segment]) -> None:
        for seg in created:
            self._segments.pop(seg.id, None)
            key = (seg.spec.project_id, seg.spec.day)
            if self._open.get(key) is seg:
                del self._open[key]
        fresh = set(created)
        for seg, buffer in groups.items():
            if seg not in fresh:
                seg.size -= len(buffer)
                seg.records -= count_frames(buffer)

    # --- sealing

    def seal_due(self, now: float | None = None, projects: Collection[str] = ()) -> list[Segment]:
        """Seal segments past their interval (and full ones, and every one of `projects`);
        return those sealed now."""
        now = self._clock() if now is None else now
        with self._lock:
            segments, heap = self._segments, self._due
            popped: list[tuple[float, int]] = []
            due: dict[int, Segment] = {}
            while heap and heap[0][0] <= now:
                entry = heapq.heappop(heap)
                popped.append(entry)
                if (seg := segments.get(entry[1])) is not None:
                    due[seg.id] = seg
            due.update((i, segments[i]) for i in self._full if i in segments)
            if projects:
                due.update((s.id, s) for s in self._open.values() if s.spec.project_id in projects)
            try:
                sealed = self._seal(list(due.values()))
            except BaseException:
                for entry in popped:  # still due at the next call
                    heapq.heappush(heap, entry)
                raise
            if len(heap) > 2 * len(self._open) + 1024:  # mostly segments sealed early
                self._due = [(s.created + s.spec.interval, s.id) for s in self._open.values()]
                heapq.heapify(self._due)
            return sealed

    def seal_all(self) -> list[Segment]:
        with self._lock:
            return self._seal([s for s in self._segments.values() if not s.sealed])

    def _seal(self, segments: list[Segment], *, sync_dir: bool = True) -> list[Segment]:
        """Seal: one durable S entry per segment held by the journal; a segment file of
        the format before the journal is renamed."""
        todo = sorted((s for s in segments if not s.sealed), key=lambda s: s.id)
        if not todo:
            return []
        stamp = datetime.fromtimestamp(self._clock(), UTC).replace(second=0, microsecond=0)
        text = stamp.strftime(STAMP_FORMAT).encode()
        journaled = [s for s in todo if s.in_journal]
        if journaled:
            # one buffer, not two parts per segment: a shutdown seals tens of thousands
            notes = bytearray()
            for seg in journaled:
                notes += entry_head(SEALED, seg.id, len(text))
                notes += text
            journal, _base = self._append([notes], len(notes), note=True)
            for seg in journaled:
                seg.in_journals(journal.id)
                journal.live.add(seg.id)
        files = [s for s in todo if not s.in_journal]
        for seg in files:
            target = self.directory / sealed_name(seg.id, stamp)
            os.rename(seg.path, target)
            seg.sealed_at = stamp  # its path names the file from now on
            self._add_sealed(seg)
        if files and sync_dir:
            fsync_dir(self.directory)
        now = self._clock()
        for seg in todo:
            seg.sealed_at = stamp
            seg.sealed_time = now
            seg.full = True
            self._full.discard(seg.id)
            self._add_sealed(seg)
            key = (seg.spec.project_id, seg.spec.day)
            if self._open.get(key) is seg:
                del self._open[key]
        return todo

    # --- rebuilding journals away

    def rebuild(self, now: float | None = None) -> list[Segment]:
        """Give the segments that alone hold the oldest journals, sealed longer than
        `rebuild_after` (or at all, once the spool is half full), files of their own, so
        those journals can go; returns them."""
        now = self._clock() if now is None else now
        with self._lock:
            after = 0.0 if self._used * 2 >= self.max_bytes else self.rebuild_after
            moving: dict[int, Segment] = {}
            for journal_id in sorted(self._journals):
                journal = self._journals[journal_id]
                if journal is self._current or not self._may_move(journal, moving, now, after):
                    break
            if not moving:
                return []
            todo = sorted(moving.values(), key=lambda s: s.id)
            self._build(todo)
            try:
                for seg in todo:
                    os.rename(self.directory / tmp_name(seg.id), seg.path)
                fsync_dir(self.directory)
                self._hit("rebuild-renamed")
                # Durable before the files may be delivered and deleted: a replay of the
                # journals must not bring them back.
                notes = b"".join([entry_head(GONE, s.id, 0) for s in todo])
                self._append([notes], len(notes), note=True)
            except BaseException:  # the journal still holds them: take the files back
                for seg in todo:
                    for path in (seg.path, self.directory / tmp_name(seg.id)):
                        try:
                            path.unlink(missing_ok=True)
                        except OSError:
                            log.exception("spool: could not remove %s", path.name)
                raise
            for seg in todo:
                for journal_id in seg.journals:
                    self._journals[journal_id].live.discard(seg.id)
                seg.journals = ()
                seg.extents = array("q")
                self._used += seg.size  # the journals' share goes when they go, below
            log.info(
                "spool: %d sealed segment(s) waiting for delivery moved to files of their own "
                "(%d bytes), so older journals can go",
                len(todo),
                sum(s.size for s in todo),
            )
            self._drop_dead_journals()
            return todo

    def _may_move(
        self, journal: _Journal, moving: dict[int, Segment], now: float, after: float
    ) -> bool:
        """Whether every segment the journal holds was sealed `after` seconds ago; if so
        they join `moving`. Stops at the first that was not: called with every seal check,
        while the journal may hold thousands of open segments."""
        found: list[Segment] = []
        for segment_id in journal.live:
            if segment_id in moving:
                continue
            seg = self._segments[segment_id]
            if not seg.sealed or now - seg.sealed_time < after:
                return False
            found.append(seg)
        moving.update((s.id, s) for s in found)
        return True

    def _build(self, segments: list[Segment]) -> None:
        """Write `<id>.tmp` of each segment from its journal ranges and fdatasync them."""
        fds: list[int] = []
        try:
            for seg in segments:
                fd = os.open(
                    self.directory / tmp_name(seg.id), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644
                )
                fds.append(fd)
                _write_all(fd, [_header_bytes(seg.spec)])
                for journal_id, offset, length in seg.ranges():
                    _copy_range(self._journals[journal_id].fd, fd, offset, length)
            self._sync(fds)
            self._hit("rebuild-built")
        except BaseException:
            for seg in segments:
                (self.directory / tmp_name(seg.id)).unlink(missing_ok=True)
            raise
        finally:
            for fd in fds:
                os.close(fd)

    # --- delivery

    def read(self, seg: Segment) -> list[bytes]:
        """The records of a sealed segment (whole frames only)."""
        with self._lock:
            extents = seg.ranges()
            # Own copies of the descriptors: a rebuild or a delivery may close (and remove)
            # a journal while this reads outside the lock; the data stays readable.
            fds = {j: os.dup(self._journals[j].fd) for j in {j for j, _o, _n in extents}}
        if extents:
            records: list[bytes] = []
            problem = ""
            try:
                for journal_id, offset, length in extents:
                    found, problem = split_frames(os.pread(fds[journal_id], length, offset))
                    records += found
                    if problem:
                        break
            finally:
                for fd in fds.values():
                    os.close(fd)
        else:
            result = scan(seg.path.read_bytes())
            records, problem = result.payloads[1:], result.problem
        if problem:
            log.error(
                "spool: sealed segment %s is damaged (%s); delivering its %d whole records",
                seg.path.name,
                problem,
                len(records),
            )
        seg.records = len(records)
        return records

    def confirm(self, seg: Segment, region: str) -> bool:
        """Record that `region` holds the segment; delete it when every region does.

        Returns True when the segment was deleted.
        """
        with self._lock:
            if seg.id not in self._segments:
                return True
            if region not in seg.delivered and region in seg.spec.regions:
                seg.delivered = seg.delivered | {region}
                self._unlack(seg, (region,))
            if not seg.pending_regions:
                self._delete(seg)
                if not seg.in_journal:
                    fsync_dir(self.directory)
                return True
            path = self.directory / done_name(seg.id)
            existed = path.exists()
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                _write_all(fd, [region.encode() + b"\n"])
                os.fdatasync(fd)
            finally:
                os.close(fd)
            if not existed:
                fsync_dir(self.directory)
            return False

    def _delete(self, seg: Segment) -> None:
        if seg.in_journal:
            # Not synced: a D entry lost with a power cut only means the segment is
            # delivered again, under the same names with the same bytes. Journals are
            # removed only after it is durable (see _drop_dead_journals).
            self._append([entry_head(GONE, seg.id, 0)], ENTRY_OVERHEAD, sync=False, note=True)
            (self.directory / done_name(seg.id)).unlink(missing_ok=True)
            self._forget(seg)
            self._drop_dead_journals()
            return
        seg.path.unlink(missing_ok=True)
        (self.directory / done_name(seg.id)).unlink(missing_ok=True)
        self._forget(seg)
