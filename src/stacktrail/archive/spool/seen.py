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

In memory each key is a 16-byte digest (about 50 bytes a key instead of about 220 for
the two strings and their tuple): a false match is as likely as a collision of a 128-bit
hash, which no spool reaches.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from hashlib import blake2b
from pathlib import Path

import orjson

log = logging.getLogger(__name__)

CURRENT = ".seen.0"
PREVIOUS = ".seen.1"

Key = tuple[str, str]  # (project id, event id)


def _digest(project: str, event_id: str) -> bytes:
    # the length first: no two keys give the same text
    return blake2b(f"{len(project)}:{project}{event_id}".encode(), digest_size=16).digest()


class SeenIds:
    def __init__(self, directory: Path, capacity: int) -> None:
        self._directory = Path(directory)
        self._half = max(capacity // 2, 1)
        self._current: set[bytes] = set()
        self._previous: set[bytes] = set()
        self._fd: int | None = None

    def __contains__(self, key: Key) -> bool:
        digest = _digest(*key)
        return digest in self._current or digest in self._previous

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
        current, previous = self._current, self._previous
        fresh: dict[bytes, Key] = {}
        for key in keys:
            digest = _digest(*key)
            if digest not in current and digest not in previous:
                fresh[digest] = key
        if not fresh:
            return
        os.write(self._fd, b"".join(orjson.dumps(k) + b"\n" for k in fresh.values()))
        current.update(fresh)
        if len(self._current) >= self._half:
            self._rotate()

    def _rotate(self) -> None:
        self.close()
        os.replace(self._directory / CURRENT, self._directory / PREVIOUS)
        self._previous, self._current = self._current, set()
        self._fd = os.open(
            self._directory / CURRENT, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644
        )


def _load(path: Path) -> set[bytes]:
    keys: set[bytes] = set()
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_bytes().splitlines():
            try:
                project, event_id = orjson.loads(line)
            except (orjson.JSONDecodeError, ValueError, TypeError):
                continue  # a line cut by a crash: that record may be archived twice
            if isinstance(project, str) and isinstance(event_id, str):
                keys.add(_digest(project, event_id))
    return keys
