"""The scheduler's tables: export jobs, search-delivery checkpoints, retention updates,
and small named state (the leader, scan positions). Same MetaData as the config store,
so one Alembic history covers both."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Table, Text

from stacktrail.db.tables import UtcDateTime, metadata

# Exports asked for through the API; the scheduler's leader runs them. `checkpoint` is the
# export's resumable state (jobs/export.py ExportCheckpoint), saved after every object.
export_jobs = Table(
    "export_jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # queued, running, done, failed
    Column("format", String(16), nullable=False),
    Column("time_from", UtcDateTime, nullable=False),
    Column("time_to", UtcDateTime, nullable=False),
    Column("container", String(256), nullable=False),
    Column("prefix", String(256), nullable=False),
    Column("regions", JSON, nullable=False),
    Column("write_mode", String(16), nullable=False),
    Column("retention_days", Integer, nullable=False),
    Column("requested_by_id", String(255), nullable=False),
    Column("requested_by_name", String(255), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("events_total", BigInteger, nullable=True),
    Column("events_done", BigInteger, nullable=False),
    Column("bytes_done", BigInteger, nullable=False),
    Column("files_done", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("checkpoint", JSON(none_as_null=True), nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_export_jobs_status", "status", "created_at"),
    Index("ix_export_jobs_project", "project_id", "created_at"),
)

# Search-sourced delivery of a trail: every event ingested before `ingested_until` was
# delivered. `window` holds the export checkpoint of a window being delivered.
search_delivery = Table(
    "search_delivery",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("ingested_until", UtcDateTime, nullable=False),
    Column("windows", BigInteger, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("window", JSON(none_as_null=True), nullable=True),
    Column("last_run_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Bringing existing archive objects' X-Delete-At to a project's (changed) retention.
# `cursor` is the last (region, key) handled, so a restarted sweep goes on from there.
retention_updates = Table(
    "retention_updates",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("retention_days", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # pending, running, done, failed
    Column("objects_seen", BigInteger, nullable=False),
    Column("objects_updated", BigInteger, nullable=False),
    Column("objects_deleted", BigInteger, nullable=False),
    Column("cursor", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Named values of the scheduler: `leader` (who acts), `retention_scan` (trail changes seen).
scheduler_state = Table(
    "scheduler_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
