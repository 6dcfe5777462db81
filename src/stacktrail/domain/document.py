"""A trail's configuration as a JSON document: what the API accepts and the store keeps.

`TrailInput` is what a client sends (missing or null members take the operator
defaults); `resolve` turns it into a complete `TrailSpec`; `check_bounds` applies the
operator's bounds and the deployment's facts (known regions, search on or off);
`to_trail` gives the plain `Trail` the pipeline reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from stacktrail.domain.defaults import MAX_INTERVAL, RETENTION_LIMIT_DAYS, OperatorDefaults
from stacktrail.domain.durations import format_duration, parse_duration
from stacktrail.domain.store_names import s3_owner_problem
from stacktrail.domain.trail import (
    ArchiveConfig,
    ArchiveFormat,
    ArchiveSource,
    ArchiveStore,
    EventFilter,
    Trail,
    TrailSettings,
    WriteMode,
)
from stacktrail.domain.validation import (
    MAX_CONTAINER_BYTES,
    MAX_PATTERN_LENGTH,
    MAX_PATTERNS,
    MAX_PREFIX_LENGTH,
    REGION_PATTERN,
    check_container,
    check_interval,
    check_pattern,
    check_prefix,
    s3_bucket_problem,
)

Pattern = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_PATTERN_LENGTH),
    AfterValidator(check_pattern),
    Field(
        description="Glob on event type, CADF action or target typeURI, e.g. `identity.*`.",
        examples=["identity.*", "read/*"],
    ),
]
ContainerName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_CONTAINER_BYTES),
    AfterValidator(check_container),
    Field(description="Swift container (S3 bucket): 1-256 bytes, no `/`."),
]
Prefix = Annotated[
    str,
    StringConstraints(max_length=MAX_PREFIX_LENGTH),
    AfterValidator(check_prefix),
    Field(description="Key prefix inside the container: relative, no `..`."),
]
Interval = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32),
    AfterValidator(check_interval),
    Field(description="Delivery interval, e.g. `15m`, `1h`.", examples=["15m"]),
]
Region = Annotated[str, StringConstraints(pattern=REGION_PATTERN)]
RetentionDays = Annotated[StrictInt, Field(ge=1, le=RETENTION_LIMIT_DAYS)]

_FORBID = ConfigDict(extra="forbid")


# --- complete documents (stored, returned)


class EventsSpec(BaseModel):
    model_config = _FORBID
    include: list[Pattern] = Field(default_factory=list, max_length=MAX_PATTERNS)
    exclude: list[Pattern] = Field(default_factory=list, max_length=MAX_PATTERNS)


class ArchiveSpec(BaseModel):
    model_config = _FORBID
    enabled: StrictBool
    container: ContainerName
    prefix: Prefix
    format: ArchiveFormat
    interval: Interval
    regions: list[Region] = Field(min_length=1, max_length=64)
    write_mode: WriteMode
    source: ArchiveSource


class SearchSpec(BaseModel):
    model_config = _FORBID
    enabled: StrictBool


class TrailSpec(BaseModel):
    """A complete trail configuration."""

    model_config = _FORBID
    enabled: StrictBool
    retention_days: RetentionDays
    events: EventsSpec
    archive: ArchiveSpec
    search: SearchSpec


# --- what a client sends: every member optional, null means "the operator default"

READ_ONLY_FIELDS = ("project_id", "version", "configured", "updated_at", "updated_by")


class EventsInput(BaseModel):
    model_config = _FORBID
    include: list[Pattern] | None = Field(None, max_length=MAX_PATTERNS)
    exclude: list[Pattern] | None = Field(None, max_length=MAX_PATTERNS)


class ArchiveInput(BaseModel):
    model_config = _FORBID
    enabled: StrictBool | None = None
    container: ContainerName | None = None
    prefix: Prefix | None = None
    format: ArchiveFormat | None = None
    interval: Interval | None = None
    regions: list[Region] | None = Field(None, min_length=1, max_length=64)
    write_mode: WriteMode | None = None
    source: ArchiveSource | None = None


class SearchInput(BaseModel):
    model_config = _FORBID
    enabled: StrictBool | None = None


class TrailInput(BaseModel):
    """A trail configuration as sent by a client; omitted members take the defaults.

    The read-only members of a trail (`version`, `updated_at`, ...) are accepted so that
    a document read with GET can be sent back, and ignored.
    """

    model_config = _FORBID
    enabled: StrictBool | None = None
    retention_days: RetentionDays | None = None
    events: EventsInput | None = None
    archive: ArchiveInput | None = None
    search: SearchInput | None = None
    project_id: str | None = Field(None, description="Read-only; must match the path if sent.")
    version: int | None = Field(None, description="Read-only, ignored (use If-Match).")
    configured: bool | None = Field(None, description="Read-only, ignored.")
    updated_at: str | None = Field(None, description="Read-only, ignored.")
    updated_by: dict[str, Any] | None = Field(None, description="Read-only, ignored.")


def default_spec(defaults: OperatorDefaults, settings: TrailSettings) -> TrailSpec:
    """The configuration of a project nobody configured."""
    return TrailSpec.model_construct(
        enabled=True,
        retention_days=defaults.default_retention_days,
        events=EventsSpec.model_construct(include=[], exclude=[]),
        archive=ArchiveSpec.model_construct(
            enabled=settings.archive_enabled,
            container=defaults.default_container,
            prefix=settings.archive_prefix.strip("/"),
            format=defaults.default_format,
            interval=format_duration(defaults.default_interval),
            regions=list(settings.archive_regions),
            write_mode=WriteMode.RESELLER,
            source=ArchiveSource.INGEST,
        ),
        search=SearchSpec.model_construct(enabled=True),
    )


def resolve(data: TrailInput, defaults: OperatorDefaults, settings: TrailSettings) -> TrailSpec:
    """Fill what the client left out with the operator defaults."""
    base = default_spec(defaults, settings)
    archive = data.archive.model_dump(exclude_none=True) if data.archive else {}
    search = data.search.model_dump(exclude_none=True) if data.search else {}
    return TrailSpec.model_construct(
        enabled=base.enabled if data.enabled is None else data.enabled,
        retention_days=(
            base.retention_days if data.retention_days is None else data.retention_days
        ),
        events=EventsSpec.model_construct(
            include=(data.events.include if data.events else None) or [],
            exclude=(data.events.exclude if data.events else None) or [],
        ),
        archive=base.archive.model_copy(update=archive),
        search=base.search.model_copy(update=search),
    )


@dataclass(frozen=True, slots=True)
class BoundsError:
    loc: tuple[str | int, ...]
    msg: str
    input: Any


def check_bounds(
    spec: TrailSpec, defaults: OperatorDefaults, settings: TrailSettings, *, project_id: str = ""
) -> list[BoundsError]:
    """What in `spec` the operator's bounds or this deployment do not allow; with
    `project_id`, also an S3 bucket that is neither shared nor that project's own."""
    errors: list[BoundsError] = []
    if spec.retention_days > defaults.max_retention_days:
        errors.append(
            BoundsError(
                ("retention_days",),
                f"retention_days {spec.retention_days} is above the operator's maximum "
                f"of {defaults.max_retention_days} days",
                spec.retention_days,
            )
        )
    interval = parse_duration(spec.archive.interval)
    if interval < defaults.min_interval:
        errors.append(
            BoundsError(
                ("archive", "interval"),
                f"interval {spec.archive.interval} is below the operator's minimum of "
                f"{format_duration(defaults.min_interval)} (at most "
                f"{format_duration(MAX_INTERVAL)})",
                spec.archive.interval,
            )
        )
    known = set(settings.archive_regions)
    seen: set[str] = set()
    for index, region in enumerate(spec.archive.regions):
        if region not in known:
            errors.append(
                BoundsError(
                    ("archive", "regions", index),
                    f"unknown region {region!r}; known regions: "
                    + ", ".join(settings.archive_regions),
                    region,
                )
            )
        elif region in seen:
            errors.append(
                BoundsError(
                    ("archive", "regions", index), f"region {region!r} is listed twice", region
                )
            )
        seen.add(region)
    if settings.archive_store == ArchiveStore.S3:
        problem = s3_bucket_problem(spec.archive.container)
        if not problem and project_id:
            problem = s3_owner_problem(
                spec.archive.container, project_id, {settings.archive_container}
            )
        if problem:
            errors.append(
                BoundsError(
                    ("archive", "container"),
                    f"this cloud archives into S3: {problem}",
                    spec.archive.container,
                )
            )
    if spec.archive.source == ArchiveSource.SEARCH:
        if not spec.search.enabled:
            errors.append(
                BoundsError(
                    ("archive", "source"),
                    "archive.source `search` needs search.enabled",
                    spec.archive.source.value,
                )
            )
        elif not settings.search_enabled:
            errors.append(
                BoundsError(
                    ("archive", "source"),
                    "archive.source `search` needs a search server, and this cloud has none",
                    spec.archive.source.value,
                )
            )
    return errors


def to_trail(
    project_id: str, spec: TrailSpec, defaults: OperatorDefaults, version: int = 0
) -> Trail:
    """The plain trail the pipeline reads; bounds lowered later are applied here."""
    return Trail(
        project_id=project_id,
        enabled=spec.enabled,
        retention_days=defaults.clamp_retention(spec.retention_days),
        search_enabled=spec.search.enabled,
        events=EventFilter(include=tuple(spec.events.include), exclude=tuple(spec.events.exclude)),
        archive=ArchiveConfig(
            enabled=spec.archive.enabled,
            container=spec.archive.container,
            prefix=spec.archive.prefix,
            format=spec.archive.format,
            interval=defaults.clamp_interval(parse_duration(spec.archive.interval)),
            regions=tuple(spec.archive.regions),
            write_mode=spec.archive.write_mode,
            source=spec.archive.source,
        ),
        version=version,
    )


# --- the operator's defaults as a document


class DefaultsInput(BaseModel):
    """The operator's defaults and bounds; read-only members are accepted and ignored."""

    model_config = _FORBID
    default_retention_days: RetentionDays
    max_retention_days: RetentionDays
    default_interval: Interval
    min_interval: Interval
    default_container: ContainerName
    default_format: ArchiveFormat
    max_interval: str | None = Field(None, description="Read-only, ignored.")
    regions: list[str] | None = Field(None, description="Read-only, ignored.")
    version: int | None = Field(None, description="Read-only, ignored (use If-Match).")
    updated_at: str | None = Field(None, description="Read-only, ignored.")
    updated_by: dict[str, Any] | None = Field(None, description="Read-only, ignored.")
    event_types: list[dict[str, Any]] | None = Field(None, description="Read-only, ignored.")

    def bounds_errors(self, settings: TrailSettings) -> list[BoundsError]:
        errors: list[BoundsError] = []
        if self.default_retention_days > self.max_retention_days:
            errors.append(
                BoundsError(
                    ("default_retention_days",),
                    f"default_retention_days {self.default_retention_days} is above "
                    f"max_retention_days {self.max_retention_days}",
                    self.default_retention_days,
                )
            )
        if parse_duration(self.default_interval) < parse_duration(self.min_interval):
            errors.append(
                BoundsError(
                    ("default_interval",),
                    f"default_interval {self.default_interval} is below "
                    f"min_interval {self.min_interval}",
                    self.default_interval,
                )
            )
        if settings.archive_store == ArchiveStore.S3:
            problem = s3_bucket_problem(self.default_container)
            if not problem and self.default_container != settings.archive_container:
                # the S3 adapter lets projects share only this bucket (store_names)
                problem = (
                    "the bucket all projects share is STACKTRAIL_ARCHIVE_CONTAINER "
                    f"({settings.archive_container!r}); the default container must be it"
                )
            if problem:
                errors.append(
                    BoundsError(
                        ("default_container",),
                        f"this cloud archives into S3: {problem}",
                        self.default_container,
                    )
                )
        return errors

    def to_defaults(self) -> OperatorDefaults:
        return OperatorDefaults(
            default_retention_days=self.default_retention_days,
            max_retention_days=self.max_retention_days,
            default_interval=parse_duration(self.default_interval),
            min_interval=parse_duration(self.min_interval),
            default_container=self.default_container,
            default_format=self.default_format,
        )
