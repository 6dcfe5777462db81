"""The head of each archive digest chain, as `scheduler_state` keeps it.

One row per (project, region), named `digest:<project>:<region>`: where the next digest
starts and what it links to, and what the last one written was (its period, key,
signing key and when it was delivered), which the status pages show. The digest writer
(archive/digests.py) moves the head; the API only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from stacktrail.db import job_tables as jt
from stacktrail_reader import digest as d

PREFIX = "digest:"


def state_name(project_id: str, region: str) -> str:
    return f"{PREFIX}{project_id}:{region}"


def _time(value: Any) -> datetime | None:
    return d.parse_time(value) if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class ChainHead:
    end: datetime  # the next digest covers [end, end + interval)
    key: str | None  # the last digest written (None: the chain has not started)
    sha256: str | None
    signature: str | None
    start: datetime | None = None  # the last digest's period start
    fingerprint: str | None = None  # the key that signed the last digest
    delivered_at: datetime | None = None  # when the last digest was stored

    def to_json(self) -> dict[str, Any]:
        return {
            "end": d.iso(self.end),
            "key": self.key,
            "sha256": self.sha256,
            "signature": self.signature,
            "start": d.iso(self.start) if self.start else None,
            "fingerprint": self.fingerprint,
            "delivered_at": d.iso(self.delivered_at) if self.delivered_at else None,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any], updated_at: datetime | None = None) -> ChainHead:
        """`updated_at`: the row's; heads written before the delivery time was kept were
        last moved when their last digest was stored."""
        key = value.get("key")
        start = _time(value.get("start")) or (d.stamp_of(key) if key else None)
        delivered = _time(value.get("delivered_at")) or (updated_at if key else None)
        return cls(
            d.parse_time(value["end"]),
            key,
            value.get("sha256"),
            value.get("signature"),
            start,
            value.get("fingerprint"),
            delivered,
        )


async def chain_head(engine: AsyncEngine, project_id: str, region: str) -> ChainHead | None:
    s = jt.scheduler_state.c
    query = select(s.value, s.updated_at).where(s.name == state_name(project_id, region))
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None or not isinstance(row.value, dict):
        return None
    return ChainHead.from_json(row.value, row.updated_at)


async def chain_heads(engine: AsyncEngine, project_id: str) -> dict[str, ChainHead]:
    """Region -> the head of the project's chain there (regions without a chain: absent)."""
    s = jt.scheduler_state.c
    prefix = state_name(project_id, "")
    # autoescape: project ids may hold `_`, a LIKE wildcard
    query = select(s.name, s.value, s.updated_at).where(s.name.startswith(prefix, autoescape=True))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {
        row.name.removeprefix(prefix): ChainHead.from_json(row.value, row.updated_at)
        for row in rows
        if isinstance(row.value, dict)
    }
