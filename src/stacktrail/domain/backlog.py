"""What a project's archive holds back in the delivering process's spool."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class SpoolBacklog:
    """A project's spooled records that wait for delivery.

    `held_back`: its deliveries fail and it holds its whole share, so its new events are
    dead-lettered (with the reason) until deliveries work again; the spool keeps what it
    holds, and the other projects are not held up.
    """

    bytes: int  # spooled and queued, as their segment files hold them
    records: int  # of the spooled segments whose count is known
    oldest: datetime | None  # when the oldest of them was spooled
    share: int  # bytes the project may hold while its deliveries fail
    failing: bool  # a delivery failed and none succeeded since
    held_back: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "bytes": self.bytes,
            "records": self.records,
            "oldest": self.oldest.isoformat() if self.oldest is not None else None,
            "share": self.share,
            "failing": self.failing,
            "held_back": self.held_back,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SpoolBacklog:
        oldest = data["oldest"]
        return cls(
            bytes=int(data["bytes"]),
            records=int(data["records"]),
            oldest=datetime.fromisoformat(oldest) if oldest is not None else None,
            share=int(data["share"]),
            failing=bool(data["failing"]),
            held_back=bool(data["held_back"]),
        )


def combined(parts: Sequence[SpoolBacklog]) -> SpoolBacklog:
    """One project's backlog over several spools (the workers of one `stacktrail run`):
    each spool holds its own share, so the shares add up as the bytes do."""
    oldest = [p.oldest for p in parts if p.oldest is not None]
    return SpoolBacklog(
        bytes=sum(p.bytes for p in parts),
        records=sum(p.records for p in parts),
        oldest=min(oldest) if oldest else None,
        share=sum(p.share for p in parts),
        failing=any(p.failing for p in parts),
        held_back=any(p.held_back for p in parts),
    )
