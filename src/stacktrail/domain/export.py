"""Where an export from search stands, as JSON-safe plain data (stored by the API's jobs,
the command's checkpoint file and the search-sourced delivery windows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SortValues = list[Any]  # a search hit's sort values, the cursor of `search_after`


@dataclass(slots=True)
class ExportCheckpoint:
    """Where an export stands; JSON-safe through `to_json` / `from_json`."""

    export_id: str
    after: SortValues | None = None
    parts: dict[str, int] = field(default_factory=dict)  # day -> parts written
    day_counts: dict[str, int] = field(default_factory=dict)  # day -> events written
    files: list[str] = field(default_factory=list)  # keys written (first region's)
    events: int = 0
    bytes: int = 0  # compressed bytes written (all regions)
    total: int | None = None  # events in the frame when the export started
    done: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "after": list(self.after) if self.after is not None else None,
            "parts": dict(self.parts),
            "day_counts": dict(self.day_counts),
            "files": list(self.files),
            "events": self.events,
            "bytes": self.bytes,
            "total": self.total,
            "done": self.done,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportCheckpoint:
        return cls(
            export_id=str(data["export_id"]),
            after=list(data["after"]) if data.get("after") is not None else None,
            parts={str(k): int(v) for k, v in (data.get("parts") or {}).items()},
            day_counts={str(k): int(v) for k, v in (data.get("day_counts") or {}).items()},
            files=[str(f) for f in data.get("files") or []],
            events=int(data.get("events") or 0),
            bytes=int(data.get("bytes") or 0),
            total=int(data["total"]) if data.get("total") is not None else None,
            done=bool(data.get("done")),
        )
