"""Log setup: readable lines for people, JSON lines for log shippers.

Lines about one event or project pass `extra={"project_id": ..., "event_id": ...}`;
JSON lines carry them as fields, so a log search finds every line of an event.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

# LogRecord attributes set through `extra=` that JSON lines carry as fields
CONTEXT_FIELDS = ("project_id", "event_id", "region", "container")


def describe(exc: BaseException) -> str:
    """An exception for a log line or a reason: its message, or its type when it has none
    (never a Python repr such as `AmqpError('...')`)."""
    text = str(exc).strip()
    return text or type(exc).__name__


class JsonFormatter(logging.Formatter):
    def __init__(self, worker: int = 0) -> None:
        super().__init__()
        self._worker = worker

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self._worker:
            entry["worker"] = self._worker
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is now, not what it was at set-up.

    Embedders and test runners swap `sys.stderr`; a handler holding the old stream
    would write to a closed file.
    """

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def setup_logging(level: str = "INFO", fmt: str = "text", *, worker: int = 0) -> None:
    """`worker` > 0: a child pipeline worker (STACKTRAIL_WORKERS), whose lines share the
    parent's stderr and so say which worker wrote them."""
    handler = StderrHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter(worker))
    else:
        who = f"worker {worker} " if worker else ""
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)-7s {who}%(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "keystoneauth", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # pika warns about expected channel closes (e.g. a passive declare of a missing
    # exchange); the source logs connection problems itself.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
