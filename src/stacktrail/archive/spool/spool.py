"""The durable spool: append-only segment files, group commit, sealing and recovery.

One open segment per (project, UTC event day). `write` appends a whole batch of records
and makes it durable before it returns: one fdatasync per touched segment, issued in
parallel so the file system commits them together, plus one fsync of the directory when
the batch created files. Only then may the caller report the records as delivered.
A segment is sealed when it is older than its trail's interval, when the next record
would make it bigger than `segment_max_bytes`, when its trail's archive configuration
changed, or on request (`seal_all`). Sealing renames it to `<id>.<seal stamp>.sealed` and
fsyncs the directory. A sealed segment is deleted once
every region of its header confirmed it (`confirm`).

On `open`, segments left open by a previous process are recovered: the file is cut at its
last whole frame (length and CRC checked), then sealed. A process lock (`flock` on
`.lock`) keeps a second process off the same spool.

The class is synchronous and thread-safe; async callers run its methods in a worker
thread (`asyncio.to_thread`) so fsync never blocks the event loop.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from stacktrail.archive.durable_fs import fsync_dir
from stacktrail.archive.spool.framing import FRAME_OVERHEAD, MAGIC, frame, scan
from stacktrail.archive.spool.segment import (
    CORRUPT_SUFFIX,
    DONE_SUFFIX,
    Segment,
    SegmentSpec,
    done_name,
    format_id,
    open_name,
    parse_open,
    parse_sealed,
    sealed_name,
)

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
# fdatasyncs in flight per batch: a batch syncs every active (project, day) segment, and
# with 500 active projects 64 gave 10-15% more events/s than 16 (alternating runs of the
# both-sinks pipeline, as in `bench/ingest.py --archive --projects 500`).
SYNC_THREADS = 64


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

    recovered: int = 0  # segments left open, cut if needed, and sealed
    sealed: int = 0  # segments already sealed, waiting for delivery
    removed_empty: int = 0  # open segments with no whole record
    truncated: list[tuple[str, int, str]] = field(default_factory=list)  # file, bytes cut, why
    corrupt: list[str] = field(default_factory=list)  # files set aside as .corrupt


_IOV_MAX = 1024


def _write_all(fd: int, chunks: Sequence[bytes]) -> None:
    """Write `chunks` in as few system calls as possible (writev), resuming short writes."""
    pending = [memoryview(c) for c in chunks if c]
    while pending:
        written = os.writev(fd, pending[:_IOV_MAX])
        while written:
            if written >= len(pending[0]):
                written -= len(pending.pop(0))
            else:
                pending[0] = pending[0][written:]
                written = 0


def _read_header(path: Path) -> SegmentSpec:
    with path.open("rb") as fh:
        head = fh.read(len(MAGIC) + FRAME_OVERHEAD)
        length = int.from_bytes(head[len(MAGIC) : len(MAGIC) + 4], "little")
        data = head + fh.read(length)
    result = scan(data)
    if not result.payloads:
        raise ValueError(result.problem or "no header")
    return SegmentSpec.from_header(result.payloads[0])


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        segment_max_bytes: int,
        max_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self.segment_max_bytes = segment_max_bytes
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.RLock()
        self._segments: dict[int, Segment] = {}
        self._open: dict[tuple[str, str], Segment] = {}  # (project, day) -> appendable
        self._project_bytes: dict[str, int] = {}
        self._used = 0
        self._last_id = 0
        self._lock_fd: int | None = None
        self._sync_pool: ThreadPoolExecutor | None = None

    # --- state

    @property
    def used_bytes(self) -> int:
        return self._used

    def pending_bytes(self, project_id: str) -> int:
        return self._project_bytes.get(project_id, 0)

    def segments(self) -> list[Segment]:
        """A snapshot, oldest first. Lock-free on purpose: the event loop calls this while a
        worker thread may hold the lock through an fsync; `list()` of a dict view runs
        without releasing the GIL, so the copy is consistent."""
        return sorted(list(self._segments.values()), key=lambda s: s.id)

    def sealed_segments(self) -> list[Segment]:
        return [s for s in self.segments() if s.sealed]

    def _account(self, seg: Segment, delta: int) -> None:
        self._used += delta
        project = seg.spec.project_id
        remaining = self._project_bytes.get(project, 0) + delta
        if remaining:
            self._project_bytes[project] = remaining
        else:
            self._project_bytes.pop(project, None)

    def _next_id(self) -> int:
        self._last_id = max(int(self._clock() * 1_000_000), self._last_id + 1)
        return self._last_id

    def _forget(self, seg: Segment) -> None:
        self._segments.pop(seg.id, None)
        key = (seg.spec.project_id, seg.spec.day)
        if self._open.get(key) is seg:
            del self._open[key]
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
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None
            if self._sync_pool is not None:
                self._sync_pool.shutdown()
                self._sync_pool = None

    def _recover(self) -> RecoveryReport:
        report = RecoveryReport()
        open_ids: list[int] = []
        done_files: dict[int, Path] = {}
        for entry in sorted(os.listdir(self.directory)):
            path = self.directory / entry
            if (segment_id := parse_open(entry)) is not None:
                open_ids.append(segment_id)
            elif (parsed := parse_sealed(entry)) is not None:
                segment_id, sealed_at = parsed
                self._last_id = max(self._last_id, segment_id)
                try:
                    spec = _read_header(path)
                except (OSError, ValueError, KeyError) as exc:
                    self._set_aside(path, segment_id, str(exc), report)
                    continue
                size = path.stat().st_size
                seg = Segment(
                    segment_id, spec, path, size, created=sealed_at.timestamp(), records=-1
                )
                seg.sealed_at = sealed_at
                seg.durable_size = size
                self._segments[segment_id] = seg
                self._account(seg, size)
                report.sealed += 1
            elif entry.endswith(DONE_SUFFIX) and entry[: -len(DONE_SUFFIX)].isdigit():
                done_files[int(entry[: -len(DONE_SUFFIX)])] = path
        for segment_id in open_ids:
            self._last_id = max(self._last_id, segment_id)
            self._recover_open(segment_id, report)
        for segment_id, path in done_files.items():
            found = self._segments.get(segment_id)
            if found is None:
                path.unlink(missing_ok=True)
                continue
            regions = set(path.read_text(errors="replace").splitlines())
            found.delivered = regions & set(found.spec.regions)
        for done in [s for s in self._segments.values() if s.sealed and not s.pending_regions]:
            self._delete(done)
        fsync_dir(self.directory)
        return report

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
        seg = Segment(segment_id, spec, path, result.good_end, created=self._clock())
        seg.records = records
        seg.durable_size = result.good_end
        self._segments[segment_id] = seg
        self._account(seg, seg.size)
        self._seal([seg], sync_dir=False)
        report.recovered += 1

    # --- writing

    def write(self, items: Sequence[tuple[SegmentSpec, bytes]]) -> list[Segment]:
        """Append records and make them durable; on error nothing of the batch remains.

        Each item is (segment spec, record payload). When this returns, every record is
        on disk (fdatasync'ed); segments that filled up are sealed afterwards and
        returned.
        """
        if not items:
            return []
        with self._lock:
            if self._lock_fd is None:
                raise RuntimeError("spool is not open")
            buffers: dict[Segment, list[bytes]] = {}
            before: dict[Segment, tuple[int, int]] = {}
            created: list[Segment] = []
            filled: list[Segment] = []
            accounted = False
            try:
                for spec, payload in items:
                    data = frame(payload)
                    seg = self._target(spec, len(data), buffers, created, filled)
                    chunks = buffers.get(seg)
                    if chunks is None:
                        before[seg] = (seg.size, seg.records)
                        chunks = buffers[seg] = []
                    chunks.append(data)
                    seg.size += len(data)
                    seg.records += 1
                for seg, (size, _records) in before.items():
                    self._account(seg, seg.size - size)
                for seg in created:
                    self._account(seg, seg.size)
                accounted = True
                new = set(created)
                fds: list[int] = []
                try:
                    for seg, chunks in buffers.items():
                        flags = os.O_WRONLY | os.O_APPEND
                        if seg in new:
                            flags |= os.O_CREAT | os.O_EXCL
                        fds.append(os.open(seg.path, flags, 0o644))
                        _write_all(fds[-1], chunks)
                    self._sync(fds)
                finally:
                    for fd in fds:
                        os.close(fd)
                if new:
                    fsync_dir(self.directory)
            except BaseException:
                self._rollback(before, created, accounted)
                raise
            for seg in buffers:
                seg.durable_size = seg.size
            try:
                return self._seal(filled)
            except OSError:  # the records are durable; seal_due retries
                log.exception("spool: sealing full segments failed")
                return []

    def _sync(self, fds: list[int]) -> None:
        """fdatasync every file; in parallel, so a batch over many segments costs about one."""
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
        buffers: dict[Segment, list[bytes]],
        created: list[Segment],
        filled: list[Segment],
    ) -> Segment:
        key = (spec.project_id, spec.day)
        seg = self._open.get(key)
        if seg is not None and (
            (seg.spec is not spec and seg.spec != spec)
            or (seg.records > 0 and seg.size + size > self.segment_max_bytes)
        ):
            seg.full = True
            filled.append(seg)
            del self._open[key]
        seg = self._open.get(key)
        if seg is None:
            segment_id = self._next_id()
            header = MAGIC + frame(spec.to_header())
            seg = Segment(
                segment_id,
                spec,
                self.directory / open_name(segment_id),
                size=len(header),
                created=self._clock(),
            )
            self._segments[segment_id] = seg
            self._open[key] = seg
            buffers[seg] = [header]
            created.append(seg)
        return seg

    def _rollback(
        self, before: dict[Segment, tuple[int, int]], created: list[Segment], accounted: bool
    ) -> None:
        for seg in created:
            seg.path.unlink(missing_ok=True)
            if not accounted:
                seg.size = 0
            self._forget(seg)
        for seg, (size, records) in before.items():
            try:
                os.truncate(seg.path, seg.durable_size)
            except OSError:
                log.exception("spool: could not cut %s back after a failed write", seg.path)
            if accounted:
                self._account(seg, size - seg.size)
            seg.size, seg.records = size, records

    # --- sealing

    def seal_due(self, now: float | None = None) -> list[Segment]:
        """Seal segments past their interval (and full ones); return those sealed now."""
        now = self._clock() if now is None else now
        with self._lock:
            due = [
                s
                for s in self._segments.values()
                if not s.sealed and (s.full or now - s.created >= s.spec.interval)
            ]
            return self._seal(due)

    def seal_all(self) -> list[Segment]:
        with self._lock:
            return self._seal([s for s in self._segments.values() if not s.sealed])

    def _seal(self, segments: list[Segment], *, sync_dir: bool = True) -> list[Segment]:
        if not segments:
            return []
        stamp = datetime.fromtimestamp(self._clock(), UTC).replace(second=0, microsecond=0)
        sealed = []
        for seg in sorted(segments, key=lambda s: s.id):
            target = self.directory / sealed_name(seg.id, stamp)
            os.rename(seg.path, target)
            seg.path = target
            seg.sealed_at = stamp
            seg.full = True
            key = (seg.spec.project_id, seg.spec.day)
            if self._open.get(key) is seg:
                del self._open[key]
            sealed.append(seg)
        if sync_dir:
            fsync_dir(self.directory)
        return sealed

    # --- delivery

    def read(self, seg: Segment) -> list[bytes]:
        """The records of a sealed segment (whole frames only)."""
        result = scan(seg.path.read_bytes())
        if not result.clean:
            log.error(
                "spool: sealed segment %s is damaged (%s); delivering its %d whole records",
                seg.path.name,
                result.problem,
                max(len(result.payloads) - 1, 0),
            )
        records = result.payloads[1:]
        seg.records = len(records)
        return records

    def confirm(self, seg: Segment, region: str) -> bool:
        """Record that `region` holds the segment; delete it when every region does.

        Returns True when the segment was deleted.
        """
        with self._lock:
            if seg.id not in self._segments:
                return True
            seg.delivered.add(region)
            if not seg.pending_regions:
                self._delete(seg)
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
        seg.path.unlink(missing_ok=True)
        (self.directory / done_name(seg.id)).unlink(missing_ok=True)
        self._forget(seg)
