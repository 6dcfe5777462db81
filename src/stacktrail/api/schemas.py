"""Response bodies of the API (plain types: what stored data reads as, never re-validated)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from stacktrail.config import Settings
from stacktrail.db.ledger import EventTypeEntry
from stacktrail.db.trail_store import OutOfBounds, StoredTrail, TrailChange
from stacktrail.domain.defaults import MAX_INTERVAL, Editor, OperatorDefaults
from stacktrail.domain.durations import format_duration
from stacktrail.domain.trail import ArchiveFormat, ArchiveSource, WriteMode

EVENTS_PER_DAY = 30  # days in a trail status's `events_per_day`


class ErrorBody(BaseModel):
    detail: str


class EditorView(BaseModel):
    user_id: str
    user_name: str

    @classmethod
    def of(cls, editor: Editor | None) -> EditorView | None:
        return None if editor is None else cls(user_id=editor.user_id, user_name=editor.user_name)


class EventsView(BaseModel):
    include: list[str]
    exclude: list[str]


class ArchiveView(BaseModel):
    enabled: bool
    container: str
    prefix: str
    format: ArchiveFormat
    interval: str
    regions: list[str]
    write_mode: WriteMode
    source: ArchiveSource


class SearchView(BaseModel):
    enabled: bool


class BoundNoteView(BaseModel):
    field: str = Field(description="The overridden member, dotted (`archive.interval`).")
    stored: Any = Field(description="The project's override as stored.")
    effective: Any = Field(description="What applies instead (null: the cloud default).")
    message: str


class TrailView(BaseModel):
    """The effective trail: the project's overrides over the operator's current defaults.

    The top-level members are what applies now. `overrides` holds only what the project (or
    an operator for it) set; every member in `inherited` follows the operator defaults, also
    when they change later. A merge patch member set to null clears that override.
    """

    project_id: str
    enabled: bool
    retention_days: int
    events: EventsView
    archive: ArchiveView
    search: SearchView
    version: int = Field(description="Bumped by every change; the ETag. 0: never configured.")
    configured: bool = Field(description="False: the operator defaults apply.")
    updated_at: datetime | None
    updated_by: EditorView | None
    overrides: dict[str, Any] = Field(
        description="The members the project set, in the shape of the trail (e.g. "
        '`{"retention_days": 30, "archive": {"interval": "1h"}}`); all others follow the '
        "operator defaults.",
        examples=[{"retention_days": 30}],
    )
    inherited: list[str] = Field(
        description="The members that follow the operator defaults (the cloud default), "
        "dotted: `enabled`, `retention_days`, `events.include`, `events.exclude`, "
        "`archive.<member>`, `search.enabled`.",
        examples=[["enabled", "archive.interval"]],
    )
    bound_notes: list[BoundNoteView] = Field(
        description="Overrides the operator's current bounds no longer allow (e.g. a "
        "retention above a lowered maximum), each with the value that applies instead. "
        "They stay stored until changed."
    )

    @classmethod
    def of(cls, stored: StoredTrail) -> TrailView:
        spec = stored.spec
        return cls(
            project_id=stored.project_id,
            enabled=spec.enabled,
            retention_days=spec.retention_days,
            events=EventsView(include=list(spec.events.include), exclude=list(spec.events.exclude)),
            archive=ArchiveView(**spec.archive.model_dump()),
            search=SearchView(enabled=spec.search.enabled),
            version=stored.version,
            configured=stored.configured,
            updated_at=stored.updated_at,
            updated_by=EditorView.of(stored.updated_by),
            overrides=stored.document() or {},
            inherited=stored.effective.inherited(),
            bound_notes=[
                BoundNoteView(
                    field=note.field,
                    stored=note.stored,
                    effective=note.effective,
                    message=note.message,
                )
                for note in stored.effective.notes
            ],
        )


class TrailListEntry(TrailView):
    in_error: bool = Field(description="The last delivery attempt in some region failed.")


class TrailList(BaseModel):
    trails: list[TrailListEntry]
    next_marker: str | None = Field(description="Pass as `marker` for the next page.")


class TrailChangeView(BaseModel):
    id: int
    action: str
    version: int
    changed_at: datetime
    user_id: str
    user_name: str
    user_project_id: str | None
    old: dict[str, Any] | None = Field(
        description="The overrides before (null: nothing stored, the operator defaults "
        "applied). Changes recorded before overrides were stored hold complete documents."
    )
    new: dict[str, Any] | None = Field(
        description="The overrides after (null: reset, the operator defaults apply)."
    )

    @classmethod
    def of(cls, change: TrailChange) -> TrailChangeView:
        return cls(
            id=change.id,
            action=change.action,
            version=change.version,
            changed_at=change.changed_at,
            user_id=change.user_id,
            user_name=change.user_name,
            user_project_id=change.user_project_id,
            old=change.old,
            new=change.new,
        )


class TrailChangeList(BaseModel):
    changes: list[TrailChangeView]


class LastDelivery(BaseModel):
    container: str | None
    key: str
    day: str | None
    at: datetime


class LastError(BaseModel):
    message: str
    at: datetime
    consecutive: int


class LastDigest(BaseModel):
    """The newest signed digest of the project in a region (see `GET /v1/digest-keys`)."""

    key: str = Field(description="The digest object's key in the container.")
    period_start: datetime | None = Field(description="Start of the period it covers (UTC).")
    period_end: datetime = Field(description="End of the period it covers (exclusive).")
    key_fingerprint: str | None = Field(description="The signing key's fingerprint.")
    delivered_at: datetime | None = Field(description="When it was stored.")


class RegionStatusView(BaseModel):
    region: str
    last_delivery: LastDelivery | None
    last_error: LastError | None
    in_error: bool
    last_digest: LastDigest | None = Field(
        None, description="The newest digest written for the region; null: none yet."
    )
    pending_spool_bytes: int | None = Field(
        description="Bytes of the project's events waiting in this server's local spool. The "
        "spool holds one copy per project and delivers it to each region, so every region "
        "shows the same figure. null: unknown to this process."
    )


class EventCountsView(BaseModel):
    last_hour: int = Field(description="Events ingested in this and the previous clock hour.")
    last_day: int = Field(description="Events ingested in this and the previous 24 clock hours.")
    since_hour: datetime
    since_day: datetime


class DayCountView(BaseModel):
    day: date = Field(description="A UTC day, YYYY-MM-DD.")
    count: int = Field(description="Events ingested for the project on that day (today: so far).")


class RetentionUpdateView(BaseModel):
    """Progress of re-dating the project's archived objects after a retention change."""

    retention_days: int
    status: str = Field(description="pending, running, done or failed")
    objects_seen: int
    objects_updated: int
    objects_deleted: int = Field(description="objects already past the new retention")
    error: str | None
    requested_at: datetime
    finished_at: datetime | None


class TrailStatusView(BaseModel):
    project_id: str
    enabled: bool
    version: int
    regions: list[RegionStatusView]
    events: EventCountsView
    events_per_day: list[DayCountView] = Field(
        description=f"Events ingested per UTC day for the last {EVENTS_PER_DAY} days, oldest "
        "first, ending with today; days without events count 0.",
        min_length=EVENTS_PER_DAY,
        max_length=EVENTS_PER_DAY,
    )
    retention_update: RetentionUpdateView | None = Field(
        None,
        description="The latest update of existing objects' X-Delete-At after a retention "
        "change; null when there never was one.",
    )
    bound_notes: list[BoundNoteView] = Field(
        default_factory=list,
        description="Overrides of this trail the operator's current bounds clamp.",
    )


class EventTypeView(BaseModel):
    event_type: str
    first_seen: datetime
    last_seen: datetime
    count: int

    @classmethod
    def of(cls, entry: EventTypeEntry) -> EventTypeView:
        return cls(
            event_type=entry.event_type,
            first_seen=entry.first_seen,
            last_seen=entry.last_seen,
            count=entry.count,
        )


class EventTypeList(BaseModel):
    event_types: list[EventTypeView]


class OutOfBoundsEntry(BoundNoteView):
    project_id: str


class OutOfBoundsView(BaseModel):
    count: int = Field(description="How many overrides the bounds clamp, in every project.")
    overrides: list[OutOfBoundsEntry] = Field(description="The first ones, by project id.")

    @classmethod
    def of(cls, found: OutOfBounds) -> OutOfBoundsView:
        return cls(
            count=found.count,
            overrides=[
                OutOfBoundsEntry(
                    project_id=project_id,
                    field=note.field,
                    stored=note.stored,
                    effective=note.effective,
                    message=note.message,
                )
                for project_id, note in found.notes
            ],
        )


class DefaultsView(BaseModel):
    default_retention_days: int
    max_retention_days: int
    default_interval: str
    min_interval: str
    max_interval: str = Field(description="Read-only: the longest interval anybody may set.")
    default_container: str
    default_format: ArchiveFormat
    regions: list[str] = Field(description="Read-only: the regions trails may archive into.")
    version: int = Field(description="0: never stored, taken from the settings.")
    updated_at: datetime | None
    updated_by: EditorView | None
    event_types: list[EventTypeView] = Field(description="The catalogue of seen event types.")
    out_of_bounds: OutOfBoundsView | None = Field(
        None,
        description="Project overrides these bounds clamp (cloud admins only; null for "
        "others). Each stays stored, and the clamped value applies, until it is changed.",
    )

    @classmethod
    def of(
        cls, defaults: OperatorDefaults, settings: Settings, event_types: list[EventTypeEntry]
    ) -> DefaultsView:
        return cls(
            default_retention_days=defaults.default_retention_days,
            max_retention_days=defaults.max_retention_days,
            default_interval=format_duration(defaults.default_interval),
            min_interval=format_duration(defaults.min_interval),
            max_interval=format_duration(MAX_INTERVAL),
            default_container=defaults.default_container,
            default_format=defaults.default_format,
            regions=list(settings.archive_regions),
            version=defaults.version,
            updated_at=defaults.updated_at,
            updated_by=EditorView.of(defaults.updated_by),
            event_types=[EventTypeView.of(entry) for entry in event_types],
        )


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str = Field(description="`ready` or `unavailable`.")
    checks: dict[str, str] = Field(description="Each check: `ok` or why it failed.")
