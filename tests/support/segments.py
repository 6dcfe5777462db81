"""Segment specs for tests that write a spool directly."""

from __future__ import annotations

from dataclasses import replace

from stacktrail.archive.spool import SegmentSpec
from stacktrail.domain.trail import ArchiveFormat, WriteMode


def segment_spec(project: str = "p1", day: str = "2024-05-17", **changes: object) -> SegmentSpec:
    """A JSON segment of `project` and `day` for container `audit` in RegionOne."""
    base = SegmentSpec(
        project_id=project,
        day=day,
        container="audit",
        prefix="",
        format=ArchiveFormat.JSON,
        regions=("RegionOne",),
        write_mode=WriteMode.RESELLER,
        retention_days=30,
        interval=900.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]
