"""The ids of records the spool made durable lately, kept across restarts.

A message whose records are durable in the spool may still go back to the queue: search
was down at a SIGTERM (its record resolved RETRY), the broker connection dropped before
the ack, or the process was killed between the fsync and the ack. Its redelivery must not
be archived a second time, so every durable record's (project, event id) is noted here,
and the archive sink skips a *redelivered* record it finds.

Two generations of at most `capacity / 2` entries each (`.seen.0` current, `.seen.1` the
previous): the window a redelivery can come from is a few prefetch windows, far below
the capacity. Lines are appended after the spool's fsync and are not synced themselves:
a killed process keeps what it wrote (the page cache survives it), and a power loss that
drops the tail only means a duplicate object, never a lost record.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import orjson

log = logging.getLogger(__name__)

CURRENT = ".seen.0"
PREVIOUS = ".seen.1"

Key = tuple[str, str]  # (project id, event id)


class SeenIds:
    def __init__(self, directory: Path, capacity: int) -> None:
        self._directory = Path(directory)
        self._half = max(capacity // 2, 1)
        self._current: set[Key] = set()
        self._previous: set[Key] = set()
        self._fd: int | None = None

    def __contains__(self, key: Key) -> bool:
        return key in self._current or key in self._previous

    def __len__(self) -> int:
        return len(self._current | self._previous)

    def open(self) -> None:
        self._previous = _load(self._directory / PREVIOUS)
        self._current = _load(self._directory / CURRENT)
        if len(self._current) >= self._half:
            self._rotate()
        else:
            path = self._directory / CURRENT
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            size = path.stat().st_size
            if size:
                with path.open("rb") as fh:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":  # a line cut by a crash: end it first
                        os.write(self._fd, b"\n")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def add(self, keys: Iterable[Key]) -> None:
        """Note durable records; raises OSError (the caller logs: only de-duplication
        suffers, the records themselves are safe)."""
        if self._fd is None:
            return
        fresh = [k for k in keys if k not in self]
        if not fresh:
            return
        os.write(self._fd, b"".join(orjson.dumps(list(k)) + b"\n" for k in fresh))
        self._current.update(fresh)
        if len(self._current) >= self._half:
            self._rotate()

    def _rotate(self) -> None:
        self.close()
        os.replace(self._directory / CURRENT, self._directory / PREVIOUS)
        self._previous, self._current = self._current, set()
        self._fd = os.open(
            self._directory / CURRENT, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644
        )


def _load(path: Path) -> set[Key]:
    keys: set[Key] = set()
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_bytes().splitlines():
            try:
                project, event_id = orjson.loads(line)
            except (orjson.JSONDecodeError, ValueError, TypeError):
                continue  # a line cut by a crash: that record may be archived twice
            if isinstance(project, str) and isinstance(event_id, str):
                keys.add((project, event_id))
    return keys
