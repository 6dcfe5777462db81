"""How an export shows its progress: a rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from stacktrail.archive.export import ExportProgress


class _RateColumn(ProgressColumn):
    """Events per second and MB/s."""

    def __init__(self, nbytes: Callable[[], int]) -> None:
        super().__init__()
        self._bytes = nbytes

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if elapsed <= 0:
            return Text("-- ev/s", style="progress.data.speed")
        done = task.completed - float(task.fields.get("already", 0))
        rate = done / elapsed
        mbps = self._bytes() / elapsed / 1e6
        return Text(f"{rate:,.0f} ev/s {mbps:.1f} MB/s", style="progress.data.speed")


class RichProgress:
    """A live bar: events done of total, rate, elapsed, ETA, files written."""

    def __init__(self, description: str, console: Console | None = None) -> None:
        self._bytes = 0
        self._files = 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TextColumn("events"),
            _RateColumn(lambda: self._bytes),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[files]} files"),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task(description, total=None, files=0, already=0)

    def started(self, total: int | None, already: int) -> None:
        self._progress.start()
        self._progress.update(self._task, total=total, completed=already, already=already)

    def advanced(self, events: int, nbytes: int) -> None:
        self._bytes += nbytes
        self._progress.advance(self._task, events)

    def file_written(self, key: str, records: int) -> None:
        self._files += 1
        self._progress.update(self._task, files=self._files)

    def finished(self) -> None:
        self._progress.stop()

    def close(self) -> None:
        self._progress.stop()


class PlainProgress:
    """A line at most every `every` seconds (and at the end), for logs and pipes."""

    def __init__(
        self,
        description: str,
        stream: TextIO | None = None,
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._description = description
        self._stream = stream or sys.stderr
        self._every = every
        self._clock = clock
        self._total: int | None = None
        self._done = 0
        self._already = 0
        self._bytes = 0
        self._files = 0
        self._start = clock()
        self._last = self._start

    def started(self, total: int | None, already: int) -> None:
        self._total = total
        self._done = self._already = already
        self._start = self._last = self._clock()
        resumed = f", resuming after {already:,}" if already else ""
        count = f"{total:,}" if total is not None else "an unknown number of"
        self._line(f"{count} events to export{resumed}")

    def advanced(self, events: int, nbytes: int) -> None:
        self._done += events
        self._bytes += nbytes
        now = self._clock()
        if now - self._last >= self._every:
            self._last = now
            self._line(self._status(now))

    def file_written(self, key: str, records: int) -> None:
        self._files += 1

    def finished(self) -> None:
        self._line(self._status(self._clock()) + " done")

    def close(self) -> None:
        return None

    def _status(self, now: float) -> str:
        elapsed = max(now - self._start, 1e-9)
        rate = (self._done - self._already) / elapsed
        text = f"{self._done:,}"
        if self._total:
            text += f"/{self._total:,} events ({100 * self._done / self._total:.0f}%)"
        else:
            text += " events"
        text += f", {rate:,.0f} ev/s, {self._bytes / elapsed / 1e6:.1f} MB/s, {self._files} files"
        if self._total and rate > 0 and self._done < self._total:
            text += f", ETA {(self._total - self._done) / rate:.0f} s"
        return text

    def _line(self, text: str) -> None:
        print(f"{self._description}: {text}", file=self._stream, flush=True)


def terminal_progress(description: str, stream: TextIO | None = None) -> ExportProgress:
    """A rich bar when `stream` (default stderr) is a terminal, plain lines otherwise."""
    out = stream or sys.stderr
    if out.isatty():
        return RichProgress(description, Console(file=out))
    return PlainProgress(description, out)
