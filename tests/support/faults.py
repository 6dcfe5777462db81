"""Helpers of the fault tests and bench/faults.py: count what every sink holds."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import orjson


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
