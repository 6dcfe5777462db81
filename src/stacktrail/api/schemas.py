"""Response bodies of the API (plain types: what stored data reads as, never re-validated)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from stacktrail.api.problems import Problem
from stacktrail.config import Settings
from stacktrail.db.ledger import EventTypeEntry
from stacktrail.db.trail_store import OutOfBounds, StoredTrail, TrailChange
from stacktrail.domain.defaults import (
    MAX_INTERVAL,
    RETENTION_LIMIT_DAYS,
    Editor,
    OperatorDefaults,
)
from stacktrail.domain.document import EventRuleSpec
from stacktrail.domain.durations import format_duration
from stacktrail.domain.trail import ArchiveFormat, ArchiveSource, WriteMode

EVENTS_PER_DAY = 30  # days in a trail status's `events_per_day`


ErrorBody = Problem  # every error answer (RFC 9457)


class EditorView(BaseModel):
    user_id: str = Field(description="The Keystone user id.")
    user_name: str = Field(description="The Keystone user name.")

    @classmethod
    def of(cls, editor: Editor | None) -> EditorView | None:
        return None if editor is None else cls(user_id=editor.user_id, user_name=editor.user_name)


class EventsView(BaseModel):
    """Which events the trail records (see `EventRuleSpec` for the rules' meaning)."""

    include: list[str] = Field(
        description="Globs on event type, CADF action or target typeURI: with any include "
        "(pattern or rule), only the events an include matches are recorded."
    )
    exclude: list[str] = Field(
        description="Globs on event type, CADF action or target typeURI: events they match "
        "are never recorded (exclusion wins)."
    )
    rules: list[EventRuleSpec] = Field(
        description="Rules on service, action, outcome, target type and event type."
    )


class ArchiveView(BaseModel):
    enabled: bool = Field(description="Whether events are delivered to the container at all.")
    container: str = Field(description="The Swift container (or S3 bucket) the files go to.")
    prefix: str = Field(description="Folder (key prefix) inside the container; empty: the top.")
    format: ArchiveFormat = Field(
        description="File format: `json`, `ndjson` or `csv`, each gzip-compressed.",
    )
    interval: str = Field(description="How often new events are delivered, e.g. `15m`.")
    regions: list[str] = Field(description="The regions that each receive a copy of every file.")
    write_mode: WriteMode = Field(
        description="`reseller`: stacktrail writes into the project's account; `acl`: into "
        "a container the project created and granted stacktrail's writer.",
    )
    source: ArchiveSource = Field(
        description="`ingest`: delivered as events arrive; `search`: exported from search "
        "on a schedule.",
    )


class SearchView(BaseModel):
    enabled: bool = Field(description="Whether events are indexed into the audit search.")


class BoundNoteView(BaseModel):
    field: str = Field(description="The overridden member, dotted (`archive.interval`).")
    stored: Any = Field(description="The project's override as stored.")
    effective: Any = Field(description="What applies instead (null: the cloud default).")
    message: str = Field(description="What the bound is and what applies, in words.")


class TrailView(BaseModel):
    """The effective trail: the project's overrides over the operator's current defaults.

    The top-level members are what applies now. `overrides` holds only what the project (or
    an operator for it) set; every member in `inherited` follows the operator defaults, also
    when they change later. A merge patch member set to null clears that override.
    """

    project_id: str = Field(description="The Keystone project id (or `unscoped`).")
    enabled: bool = Field(description="Whether the trail records events at all.")
    retention_days: int = Field(description="Days events are kept in search and the container.")
    events: EventsView = Field(description="Which events are recorded.")
    archive: ArchiveView = Field(description="Delivery to object storage.")
    search: SearchView = Field(description="Indexing into the audit search.")
    version: int = Field(description="Bumped by every change; the ETag. 0: never configured.")
    configured: bool = Field(description="False: the operator defaults apply.")
    updated_at: datetime | None = Field(description="When the trail was last changed; null: never.")
    updated_by: EditorView | None = Field(description="Who last changed it; null: nobody.")
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
            events=EventsView(
                include=list(spec.events.include),
                exclude=list(spec.events.exclude),
                rules=list(spec.events.rules),
            ),
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
    trails: list[TrailListEntry] = Field(description="The trails of this page.")
    next_marker: str | None = Field(description="Pass as `marker` for the next page.")


class TrailChangeView(BaseModel):
    id: int = Field(description="The change's id, increasing.")
    action: str = Field(description="`update/trail` or `delete/trail` (a reset to the defaults).")
    version: int = Field(description="The trail's version after the change.")
    changed_at: datetime = Field(description="When the change was made.")
    user_id: str = Field(description="The Keystone user id of who made it.")
    user_name: str = Field(description="The Keystone user name of who made it.")
    user_project_id: str | None = Field(
        description="The project the user's token was scoped to; null: none.",
    )
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
    changes: list[TrailChangeView] = Field(description="The changes, newest first.")


class LastDelivery(BaseModel):
    container: str | None = Field(description="The container the file went to; null: not recorded.")
    key: str = Field(description="The object key of the file delivered.")
    day: str | None = Field(
        description="The UTC event day of the file (YYYY-MM-DD); null: not recorded.",
    )
    at: datetime = Field(description="When it was delivered.")


class LastError(BaseModel):
    message: str = Field(description="The store's answer, as recorded.")
    at: datetime = Field(description="When the delivery last failed.")
    consecutive: int = Field(description="Failed attempts in a row.")


class LastDigest(BaseModel):
    """The newest signed digest of the project in a region (see `GET /v1/digest-keys`)."""

    key: str = Field(description="The digest object's key in the container.")
    period_start: datetime | None = Field(description="Start of the period it covers (UTC).")
    period_end: datetime = Field(description="End of the period it covers (exclusive).")
    key_fingerprint: str | None = Field(description="The signing key's fingerprint.")
    delivered_at: datetime | None = Field(description="When it was stored.")


class RegionStatusView(BaseModel):
    region: str = Field(description="The region.")
    last_delivery: LastDelivery | None = Field(
        description="The latest successful delivery; null: none yet.",
    )
    last_error: LastError | None = Field(description="The latest failed delivery; null: none.")
    in_error: bool = Field(description="The last delivery attempt in this region failed.")
    last_digest: LastDigest | None = Field(
        None, description="The newest digest written for the region; null: none yet."
    )
    pending_spool_bytes: int | None = Field(
        description="Bytes of the project's events waiting in this server's local spools. The "
        "spool holds one copy per project and delivers it to each region, so every region "
        "shows the same figure. null: unknown to this process."
    )


class EventCountsView(BaseModel):
    last_hour: int = Field(description="Events ingested in this and the previous clock hour.")
    last_day: int = Field(description="Events ingested in this and the previous 24 clock hours.")
    since_hour: datetime = Field(
        description="Start of the previous clock hour (what `last_hour` counts from).",
    )
    since_day: datetime = Field(description="Start of the 24 clock hours `last_day` counts.")


class DayCountView(BaseModel):
    day: date = Field(description="A UTC day, YYYY-MM-DD.")
    count: int = Field(description="Events ingested for the project on that day (today: so far).")


class RetentionUpdateView(BaseModel):
    """Progress of re-dating the project's archived objects after a retention change."""

    retention_days: int = Field(description="The retention the objects are being re-dated to.")
    status: str = Field(description="pending, running, done or failed")
    objects_seen: int = Field(description="Objects looked at so far.")
    objects_updated: int = Field(description="Objects given the new expiry date.")
    objects_deleted: int = Field(description="objects already past the new retention")
    error: str | None = Field(description="Why the update failed; null: it did not.")
    requested_at: datetime = Field(description="When the retention change asked for it.")
    finished_at: datetime | None = Field(
        description="When it finished; null: still pending or running.",
    )


class TrailStatusView(BaseModel):
    project_id: str = Field(description="The Keystone project id (or `unscoped`).")
    enabled: bool = Field(description="Whether the trail records events at all.")
    version: int = Field(description="The trail's version.")
    regions: list[RegionStatusView] = Field(description="Delivery per region.")
    events: EventCountsView = Field(description="Events ingested recently.")
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
    event_type: str = Field(description="The oslo event type.")
    first_seen: datetime = Field(description="When it was first seen in this cloud.")
    last_seen: datetime = Field(description="When it was last seen.")
    count: int = Field(description="Events of this type seen in the whole cloud.")

    @classmethod
    def of(cls, entry: EventTypeEntry) -> EventTypeView:
        return cls(
            event_type=entry.event_type,
            first_seen=entry.first_seen,
            last_seen=entry.last_seen,
            count=entry.count,
        )


class EventTypeList(BaseModel):
    event_types: list[EventTypeView] = Field(description="The event types seen in this cloud.")


class OutOfBoundsEntry(BoundNoteView):
    project_id: str = Field(description="The project whose override is clamped.")


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
    default_retention_days: int = Field(description="Retention of a trail that sets none, in days.")
    max_retention_days: int = Field(description="The longest retention a trail may set, in days.")
    default_interval: str = Field(description="Delivery interval of a trail that sets none.")
    min_interval: str = Field(description="The shortest delivery interval a trail may set.")
    max_interval: str = Field(description="Read-only: the longest interval anybody may set.")
    retention_limit_days: int = Field(
        description="Read-only: the most days `max_retention_days` may be."
    )
    default_container: str = Field(description="Container of a trail that sets none.")
    default_format: ArchiveFormat = Field(description="File format of a trail that sets none.")
    regions: list[str] = Field(description="Read-only: the regions trails may archive into.")
    version: int = Field(description="0: never stored, taken from the settings.")
    updated_at: datetime | None = Field(
        description="When the defaults were last changed; null: never.",
    )
    updated_by: EditorView | None = Field(description="Who last changed them; null: nobody.")
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
            retention_limit_days=RETENTION_LIMIT_DAYS,
            default_container=defaults.default_container,
            default_format=defaults.default_format,
            regions=list(settings.archive_regions),
            version=defaults.version,
            updated_at=defaults.updated_at,
            updated_by=EditorView.of(defaults.updated_by),
            event_types=[EventTypeView.of(entry) for entry in event_types],
        )


class Health(BaseModel):
    status: str = Field(description="`ok` while the process runs.")


class Readiness(BaseModel):
    status: str = Field(description="`ready` or `unavailable`.")
    checks: dict[str, str] = Field(description="Each check: `ok` or why it failed.")
