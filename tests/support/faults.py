"""Helpers of the fault tests and bench/faults.py: count what every sink holds."""

from __future__ import annotations

import gzip
import os
import re
from collections import Counter
from pathlib import Path

import orjson

from tests.support.paths import REPO_ROOT


def archived_ids(archive_dir: Path) -> Counter[str]:
    """Event id -> how many copies the file store's objects hold (JSON or NDJSON)."""
    found: Counter[str] = Counter()
    for path in Path(archive_dir).rglob("*.gz"):
        raw = gzip.decompress(path.read_bytes())
        if raw.startswith(b"{"):
            try:
                records = orjson.loads(raw)["Records"]
            except (orjson.JSONDecodeError, KeyError):
                records = [orjson.loads(line) for line in raw.splitlines() if line.strip()]
        else:
            records = [orjson.loads(line) for line in raw.splitlines() if line.strip()]
        found.update(r["id"] for r in records)
    return found


def duplicates(copies: Counter[str]) -> tuple[int, int]:
    """(ids held more than once, extra copies)."""
    extra = [n - 1 for n in copies.values() if n > 1]
    return len(extra), sum(extra)


# an archive object's key ends with its seal stamp, the worker that wrote it and a nonce
KEY_WORKER = re.compile(r"_\d{8}T\d{4}Z_(?P<worker>[a-z0-9-]+)_[^_/]+\.json\.gz$")


def key_workers(archive_dir: Path) -> set[str]:
    """The worker names in the keys of the file store's event objects (not digests);
    raises AssertionError on a key without one."""
    keys = [p for p in Path(archive_dir).rglob("*.json.gz") if "/digests/" not in str(p)]
    found = [KEY_WORKER.search(p.name) for p in keys]
    assert all(found), [p.name for p, m in zip(keys, found, strict=True) if m is None]
    return {m["worker"] for m in found if m}


def pipeline_env(amqp_url: str, queue: str, database_url: str, archive_dir: Path) -> dict[str, str]:
    """The environment of a `stacktrail run` subprocess on a queue of its own (bound to
    nova's notifications), archiving to the file store at `archive_dir` every 2 s; none
    of the caller's STACKTRAIL_ or OS_ variables leak in."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STACKTRAIL_", "OS_"))}
    return base | {
        "PYTHONPATH": str(REPO_ROOT / "src"),
        "STACKTRAIL_AMQP_URL": amqp_url,
        "STACKTRAIL_AMQP_QUEUE": queue,
        "STACKTRAIL_AMQP_DEAD_LETTER_EXCHANGE": f"{queue}.dead",
        "STACKTRAIL_AMQP_BINDINGS": "nova:notifications.#",
        "STACKTRAIL_AMQP_PREFETCH": "100",
        "STACKTRAIL_DATABASE_URL": database_url,
        "STACKTRAIL_ARCHIVE_STORE": "file",
        "STACKTRAIL_ARCHIVE_DIR": str(archive_dir),
        "STACKTRAIL_ARCHIVE_INTERVAL": "2s",
        "STACKTRAIL_LOG_LEVEL": "INFO",
    }
