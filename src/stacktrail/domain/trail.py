"""A project's effective trail configuration as plain data (what the pipeline reads)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Protocol

from stacktrail.domain.event_rules import EventSelection


class ArchiveStore(StrEnum):
    FILE = "file"
    SWIFT = "swift"
    S3 = "s3"


class ArchiveFormat(StrEnum):
    JSON = "json"
    NDJSON = "ndjson"
    CSV = "csv"


class TrailSettings(Protocol):
    """The operator settings a trail's defaults come from (the config satisfies it)."""

    @property
    def retention_days(self) -> int: ...
    @property
    def retention_max_days(self) -> int: ...
    @property
    def archive_enabled(self) -> bool: ...
    @property
    def archive_store(self) -> ArchiveStore: ...
    @property
    def archive_container(self) -> str: ...
    @property
    def archive_prefix(self) -> str: ...
    @property
    def archive_format(self) -> ArchiveFormat: ...
    @property
    def archive_interval(self) -> timedelta: ...
    @property
    def archive_regions(self) -> Sequence[str]: ...
    @property
    def search_enabled(self) -> bool: ...


UNSCOPED = "unscoped"  # the operator's trail for events with no project or domain


class WriteMode(StrEnum):
    RESELLER = "reseller"  # service user with ResellerAdmin writes into AUTH_<project>
    ACL = "acl"  # customer grants the service user write on its own container


class ArchiveSource(StrEnum):
    INGEST = "ingest"  # from the local spool, as events arrive
    SEARCH = "search"  # exported from search on a schedule


EventFilter = EventSelection  # a trail's event selection (event_rules); the older name


@dataclass(frozen=True, slots=True)
class ArchiveConfig:
    enabled: bool
    container: str
    prefix: str
    format: ArchiveFormat
    interval: timedelta
    regions: tuple[str, ...]
    write_mode: WriteMode = WriteMode.RESELLER
    source: ArchiveSource = ArchiveSource.INGEST


@dataclass(frozen=True, slots=True)
class Trail:
    project_id: str
    enabled: bool
    retention_days: int
    archive: ArchiveConfig
    search_enabled: bool = True
    events: EventFilter = field(default_factory=EventFilter)
    version: int = 0  # 0: never stored, the operator defaults apply


def default_trail(project_id: str, settings: TrailSettings) -> Trail:
    """The trail a project has until somebody configures it (no config store: the
    settings' defaults), resolved like every other trail."""
    # imported here: both modules import this one
    from stacktrail.domain.defaults import OperatorDefaults
    from stacktrail.domain.document import resolve

    return resolve(None, OperatorDefaults.from_settings(settings), settings).to_trail(project_id)
