"""A trail's configuration as a JSON document: what the API accepts and the store keeps.

A project's trail is stored as its overrides only (`TrailOverrides`: the members a project
or an operator set); every other member follows the operator's defaults of the moment.
`resolve` is the one place that turns stored overrides and the current defaults into the
effective trail (`EffectiveTrail`: the complete `TrailSpec`, which members are overridden,
and notes on overrides a tightened bound clamps); `check_bounds` applies the operator's
bounds and the deployment's facts (known regions, search on or off) to what a write asks
for; `EffectiveTrail.to_trail` gives the plain `Trail` the pipeline reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from stacktrail.domain.defaults import MAX_INTERVAL, RETENTION_LIMIT_DAYS, OperatorDefaults
from stacktrail.domain.durations import format_duration, parse_duration
from stacktrail.domain.event_rules import OUTCOMES, READ_ONLY_ACTIONS, Effect, EventRule
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
    MAX_RULES,
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
# A trail's retention has one upper bound, the operator's maximum (check_bounds, clamped in
# resolve), so a person never sees two different maximums; the operator's bounds themselves
# are at most RETENTION_LIMIT_DAYS.
RetentionDays = Annotated[StrictInt, Field(ge=1)]
BoundDays = Annotated[StrictInt, Field(ge=1, le=RETENTION_LIMIT_DAYS)]
Glob = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_PATTERN_LENGTH),
    AfterValidator(check_pattern),
]
Outcome = Literal["success", "failure", "pending", "unknown"]
assert set(OUTCOMES) == set(Outcome.__args__)  # type: ignore[attr-defined]

_FORBID = ConfigDict(extra="forbid")
_INCLUDE_DOC = (
    "Globs on the event type, the CADF action or the target typeURI (any of them), e.g. "
    "`identity.*`. With no include pattern and no include rule, every event is included."
)
_EXCLUDE_DOC = (
    "Globs on the event type, the CADF action or the target typeURI (any of them); an "
    "event an exclude pattern or rule matches is never recorded (exclusion wins)."
)


def _conditions(description: str, example: list[str]) -> Any:
    return Field(
        default_factory=list, max_length=MAX_PATTERNS, description=description, examples=[example]
    )


class EventRuleSpec(BaseModel):
    """A rule on named fields of an event, like CloudTrail's advanced event selectors:
    every condition given must hold, and a condition holds when one of its globs matches.
    stacktrail's own change events (`stacktrail.trail.updated`, ...) are always recorded."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"effect": "exclude", "service": ["compute"], "action": list(READ_ONLY_ACTIONS)},
                {"effect": "include", "outcome": ["failure"]},
            ]
        },
    )
    effect: Effect = Field(
        description="`include`: record the events the rule matches (and, once anything "
        "includes, only those); `exclude`: never record them. Exclusion wins."
    )
    event_type: list[Glob] = _conditions(
        "Globs on the oslo event type (`audit.http.response` for API calls).",
        ["identity.project.*"],
    )
    service: list[Glob] = _conditions(
        "Globs on the reporting service, the observer typeURI; `compute` also matches "
        "`service/compute`.",
        ["compute", "service/network"],
    )
    action: list[Glob] = _conditions(
        "Globs on the CADF action; the read-only actions are "
        + ", ".join(f"`{a}`" for a in READ_ONLY_ACTIONS)
        + ".",
        list(READ_ONLY_ACTIONS),
    )
    outcome: list[Outcome] = Field(
        default_factory=list,
        max_length=len(OUTCOMES),
        description="CADF outcomes, any of " + ", ".join(f"`{o}`" for o in OUTCOMES) + ".",
        examples=[["failure"]],
    )
    target_type: list[Glob] = _conditions(
        "Globs on the target typeURI.", ["compute/server", "data/security/*"]
    )

    @model_validator(mode="after")
    def _some_condition(self) -> EventRuleSpec:
        if not (self.event_type or self.service or self.action or self.outcome or self.target_type):
            raise ValueError(
                "a rule needs at least one condition: event_type, service, action, outcome "
                "or target_type"
            )
        return self

    def to_rule(self) -> EventRule:
        return EventRule(
            effect=self.effect,
            event_type=tuple(self.event_type),
            service=tuple(self.service),
            action=tuple(self.action),
            outcome=tuple(self.outcome),
            target_type=tuple(self.target_type),
        )


# --- complete documents (stored, returned)


class EventsSpec(BaseModel):
    """Which events the trail records: patterns and rules, each `include` or `exclude`."""

    model_config = _FORBID
    include: list[Pattern] = Field(
        default_factory=list, max_length=MAX_PATTERNS, description=_INCLUDE_DOC
    )
    exclude: list[Pattern] = Field(
        default_factory=list, max_length=MAX_PATTERNS, description=_EXCLUDE_DOC
    )
    rules: list[EventRuleSpec] = Field(
        default_factory=list,
        max_length=MAX_RULES,
        description="Rules on named fields (service, action, outcome, target type, event "
        "type), each `include` or `exclude`, together with the patterns.",
    )

    def selection(self) -> EventFilter:
        """The compiled selection the pipeline (and the UI's preview) applies."""
        return EventFilter(
            include=tuple(self.include),
            exclude=tuple(self.exclude),
            rules=tuple(rule.to_rule() for rule in self.rules),
        )


def event_selection(events: Mapping[str, Any]) -> EventFilter:
    """The selection of an `events` document as the API returns it (ValidationError if it
    is not a valid one)."""
    return EventsSpec.model_validate(
        {name: events.get(name) or [] for name in ("include", "exclude", "rules")}
    ).selection()


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
    """Which events the trail records; a member left out (or null) follows the default."""

    model_config = _FORBID
    include: list[Pattern] | None = Field(None, max_length=MAX_PATTERNS, description=_INCLUDE_DOC)
    exclude: list[Pattern] | None = Field(None, max_length=MAX_PATTERNS, description=_EXCLUDE_DOC)
    rules: list[EventRuleSpec] | None = Field(
        None,
        max_length=MAX_RULES,
        description="Rules on named fields (service, action, outcome, target type, event "
        "type), each `include` or `exclude`, together with the patterns.",
    )


class ArchiveInput(BaseModel):
    model_config = _FORBID
    enabled: StrictBool | None = Field(
        None,
        description="Whether events are delivered to the container at all. Null or left "
        "out: the cloud default.",
    )
    container: ContainerName | None = Field(
        None,
        description="The Swift container (or S3 bucket) the files go to. Null or left out: "
        "the cloud default.",
    )
    prefix: Prefix | None = Field(
        None,
        description="Folder (key prefix) inside the container; empty: the top. Null or left"
        " out: the cloud default.",
    )
    format: ArchiveFormat | None = Field(
        None,
        description="File format: `json`, `ndjson` or `csv`, each gzip-compressed. Null or "
        "left out: the cloud default.",
    )
    interval: Interval | None = Field(
        None,
        description="How often new events are delivered, e.g. `15m`. Null or left out: the "
        "cloud default.",
    )
    regions: list[Region] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="The regions that each receive a copy of every file. Null or left out: "
        "the cloud default.",
    )
    write_mode: WriteMode | None = Field(
        None,
        description="`reseller`: stacktrail writes into the project's account; `acl`: into "
        "a container the project created and granted stacktrail's writer. Null "
        "or left out: the cloud default.",
    )
    source: ArchiveSource | None = Field(
        None,
        description="`ingest`: delivered as events arrive; `search`: exported from search "
        "on a schedule. Null or left out: the cloud default.",
    )


class SearchInput(BaseModel):
    model_config = _FORBID
    enabled: StrictBool | None = Field(
        None,
        description="Whether events are indexed into the audit search. Null or left out: "
        "the cloud default.",
    )


class TrailOverrides(BaseModel):
    """The members of a trail that a project (or an operator for it) set; every member left
    out follows the operator's defaults, now and after they change."""

    model_config = _FORBID
    enabled: StrictBool | None = Field(
        None,
        description="Whether the trail records events at all. Null or left out: the cloud default.",
    )
    retention_days: RetentionDays | None = Field(
        None,
        description="Days events are kept in search and the container, at most the "
        "operator's maximum. Null or left out: the cloud default.",
    )
    events: EventsInput | None = Field(
        None,
        description="Which events are recorded. Null or left out: the cloud default.",
    )
    archive: ArchiveInput | None = Field(
        None,
        description="Delivery to object storage. Null or left out: the cloud default.",
    )
    search: SearchInput | None = Field(
        None,
        description="Indexing into the audit search. Null or left out: the cloud default.",
    )

    def document(self) -> dict[str, Any]:
        """As stored: only the members set, no empty sections."""
        doc = self.model_dump(mode="json", exclude_none=True)
        for rule in (doc.get("events") or {}).get("rules") or ():
            for name in [name for name, value in rule.items() if value == []]:
                del rule[name]  # a condition not given is stored as absent
        return {name: value for name, value in doc.items() if value != {}}

    def fields(self) -> frozenset[str]:
        """The overridden members as dotted paths (`archive.interval`)."""
        return frozenset(path for path, _ in _leaves(self.document()))


OVERRIDE_MEMBERS = frozenset(TrailOverrides.model_fields)
FIELDS = (
    "enabled",
    "retention_days",
    "events.include",
    "events.exclude",
    "events.rules",
    *(f"archive.{name}" for name in ArchiveInput.model_fields),
    "search.enabled",
)


def _leaves(doc: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    leaves: list[tuple[str, Any]] = []
    for name, value in doc.items():
        if isinstance(value, Mapping):
            leaves.extend(_leaves(value, f"{prefix}{name}."))
        else:
            leaves.append((f"{prefix}{name}", value))
    return leaves


class TrailInput(TrailOverrides):
    """A trail configuration as sent by a client: the members it sends become the trail's
    overrides, the members it omits (or sends as null) follow the operator defaults.

    The read-only members of a trail (`version`, `updated_at`, `overrides`, ...) are accepted
    so that a document read with GET can be sent back, and ignored.
    """

    project_id: str | None = Field(None, description="Read-only; must match the path if sent.")
    version: int | None = Field(None, description="Read-only, ignored (use If-Match).")
    configured: bool | None = Field(None, description="Read-only, ignored.")
    updated_at: str | None = Field(None, description="Read-only, ignored.")
    updated_by: dict[str, Any] | None = Field(None, description="Read-only, ignored.")
    overrides: dict[str, Any] | None = Field(None, description="Read-only, ignored.")
    inherited: list[str] | None = Field(None, description="Read-only, ignored.")
    bound_notes: list[dict[str, Any]] | None = Field(None, description="Read-only, ignored.")

    def requested(self) -> TrailOverrides:
        """The overrides this document asks for (read-only members dropped)."""
        return TrailOverrides.model_validate(
            self.model_dump(include=set(OVERRIDE_MEMBERS), exclude_none=True)
        )


def default_spec(defaults: OperatorDefaults, settings: TrailSettings) -> TrailSpec:
    """The configuration of a project nobody configured."""
    return TrailSpec.model_construct(
        enabled=True,
        retention_days=defaults.default_retention_days,
        events=EventsSpec.model_construct(include=[], exclude=[], rules=[]),
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


def requested_spec(
    overrides: TrailOverrides, defaults: OperatorDefaults, settings: TrailSettings
) -> TrailSpec:
    """The overrides over the operator defaults, as asked (no bound applied: for
    `check_bounds` on a write; what the pipeline reads comes from `resolve`)."""
    base = default_spec(defaults, settings)
    events = {k: v for k, v in overrides.events if v is not None} if overrides.events else {}
    archive = overrides.archive.model_dump(exclude_none=True) if overrides.archive else {}
    search = overrides.search.model_dump(exclude_none=True) if overrides.search else {}
    return TrailSpec.model_construct(
        enabled=base.enabled if overrides.enabled is None else overrides.enabled,
        retention_days=(
            base.retention_days if overrides.retention_days is None else overrides.retention_days
        ),
        events=base.events.model_copy(update=events),
        archive=base.archive.model_copy(update=archive),
        search=base.search.model_copy(update=search),
    )


@dataclass(frozen=True, slots=True)
class BoundNote:
    """An override the operator's bounds no longer allow, and what applies instead."""

    field: str
    stored: Any
    effective: Any
    message: str


@dataclass(frozen=True, slots=True)
class EffectiveTrail:
    """What a project's trail is right now: its overrides over the current defaults."""

    spec: TrailSpec  # complete, within the current bounds
    overrides: TrailOverrides
    notes: tuple[BoundNote, ...] = ()

    @property
    def overridden(self) -> frozenset[str]:
        return self.overrides.fields()

    def inherited(self) -> list[str]:
        """The members that follow the operator defaults, in document order."""
        overridden = self.overridden
        return [name for name in FIELDS if name not in overridden]

    def to_trail(self, project_id: str, version: int = 0) -> Trail:
        """The plain trail the pipeline reads."""
        spec = self.spec
        return Trail(
            project_id=project_id,
            enabled=spec.enabled,
            retention_days=spec.retention_days,
            search_enabled=spec.search.enabled,
            events=spec.events.selection(),
            archive=ArchiveConfig(
                enabled=spec.archive.enabled,
                container=spec.archive.container,
                prefix=spec.archive.prefix,
                format=spec.archive.format,
                interval=parse_duration(spec.archive.interval),
                regions=tuple(spec.archive.regions),
                write_mode=spec.archive.write_mode,
                source=spec.archive.source,
            ),
            version=version,
        )


def parse_overrides(document: Mapping[str, Any]) -> tuple[TrailOverrides, list[BoundNote]]:
    """A stored overrides document; a member today's rules refuse is dropped (it then
    follows the default) with a note, so one bad value never discards the others."""
    try:
        return TrailOverrides.model_validate(document), []
    except ValidationError:
        pass
    kept: dict[str, Any] = {}
    notes: list[BoundNote] = []
    for path, value in _leaves(document):
        leaf: dict[str, Any] = {}
        target = leaf
        *sections, name = path.split(".")
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = value
        try:
            TrailOverrides.model_validate(leaf)
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"] if exc.errors() else str(exc)
            notes.append(
                BoundNote(
                    path,
                    value,
                    None,
                    f"the stored {path} {value!r} is no longer accepted ({reason}); "
                    "the cloud default applies",
                )
            )
            continue
        merged = kept
        for section in sections:
            merged = merged.setdefault(section, {})
        merged[name] = value
    return TrailOverrides.model_validate(kept), notes


def resolve(
    stored: TrailOverrides | Mapping[str, Any] | None,
    defaults: OperatorDefaults,
    settings: TrailSettings,
) -> EffectiveTrail:
    """The effective trail of a project: its stored overrides (None: none) over the current
    operator defaults, overrides outside a tightened bound clamped with a note.

    Every reader of a trail (pipeline, scheduler, API, UI, exports) goes through here.
    """
    notes: list[BoundNote] = []
    if stored is None:
        overrides = TrailOverrides()
    elif isinstance(stored, TrailOverrides):
        overrides = stored
    else:
        overrides, notes = parse_overrides(stored)
    spec = requested_spec(overrides, defaults, settings)
    days = defaults.clamp_retention(spec.retention_days)
    if days != spec.retention_days:
        notes.append(
            BoundNote(
                "retention_days",
                spec.retention_days,
                days,
                f"retention_days {spec.retention_days} is above the operator's maximum of "
                f"{defaults.max_retention_days} days: {days} days apply until it is changed",
            )
        )
    interval = parse_duration(spec.archive.interval)
    clamped = defaults.clamp_interval(interval)
    archive = spec.archive
    if clamped != interval:
        archive = archive.model_copy(update={"interval": format_duration(clamped)})
        notes.append(
            BoundNote(
                "archive.interval",
                spec.archive.interval,
                archive.interval,
                f"interval {spec.archive.interval} is below the operator's minimum of "
                f"{format_duration(defaults.min_interval)}: {archive.interval} applies "
                "until it is changed",
            )
        )
    if days != spec.retention_days or archive is not spec.archive:
        spec = spec.model_copy(update={"retention_days": days, "archive": archive})
    return EffectiveTrail(spec, overrides, tuple(notes))


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


# --- the operator's defaults as a document


class DefaultsInput(BaseModel):
    """The operator's defaults and bounds; read-only members are accepted and ignored."""

    model_config = _FORBID
    default_retention_days: BoundDays = Field(
        description="Retention of a trail that sets none, in days (at most max_retention_days).",
    )
    max_retention_days: BoundDays = Field(
        description="The longest retention a trail may set, in days.",
    )
    default_interval: Interval
    min_interval: Interval
    default_container: ContainerName
    default_format: ArchiveFormat = Field(description="File format of a trail that sets none.")
    max_interval: str | None = Field(None, description="Read-only, ignored.")
    retention_limit_days: int | None = Field(None, description="Read-only, ignored.")
    regions: list[str] | None = Field(None, description="Read-only, ignored.")
    version: int | None = Field(None, description="Read-only, ignored (use If-Match).")
    updated_at: str | None = Field(None, description="Read-only, ignored.")
    updated_by: dict[str, Any] | None = Field(None, description="Read-only, ignored.")
    event_types: list[dict[str, Any]] | None = Field(None, description="Read-only, ignored.")
    out_of_bounds: dict[str, Any] | None = Field(None, description="Read-only, ignored.")

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
