"""The config store's tables (SQLAlchemy Core), shared by the store, the ledger and migrations.

Times are stored as naive UTC (SQLite keeps no offset) and read back as aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

metadata = MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # pragma: no cover - defensive, SQLite returns datetime
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# One row per project that was ever configured. `config` is NULL once the trail was
# deleted (reset to the operator defaults); the row stays so the version keeps growing.
trails = Table(
    "trails",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("config", JSON(none_as_null=True), nullable=True),
    Column("enabled", Boolean, nullable=True),
    Column("version", Integer, nullable=False),
    Column("seq", BigInteger, nullable=False),  # config_version value of the last change
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by_id", String(255), nullable=False),
    Column("updated_by_name", String(255), nullable=False),
    Index("ix_trails_seq", "seq"),
)

trail_changes = Table(
    "trail_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", String(64), nullable=True),  # NULL: a change of the defaults
    Column("action", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("user_name", String(255), nullable=False),
    Column("user_project_id", String(64), nullable=True),
    Column("old", JSON(none_as_null=True), nullable=True),
    Column("new", JSON(none_as_null=True), nullable=True),
    Index("ix_trail_changes_project", "project_id", "id"),
)

# At most one row (id = 1); no row: the settings' defaults apply.
defaults = Table(
    "defaults",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("default_retention_days", Integer, nullable=False),
    Column("max_retention_days", Integer, nullable=False),
    Column("default_interval_seconds", Integer, nullable=False),
    Column("min_interval_seconds", Integer, nullable=False),
    Column("default_container", String(256), nullable=False),
    Column("default_format", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by_id", String(255), nullable=False),
    Column("updated_by_name", String(255), nullable=False),
)

event_types = Table(
    "event_types",
    metadata,
    Column("event_type", String(255), primary_key=True),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("count", BigInteger, nullable=False),
)

project_event_types = Table(
    "project_event_types",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("event_type", String(255), primary_key=True),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("count", BigInteger, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", String(64), nullable=False),
    Column("region", String(255), nullable=False),
    Column("container", String(256), nullable=False),
    Column("key", Text, nullable=False),
    Column("day", String(10), nullable=False),
    Column("records", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("delivered_at", UtcDateTime, nullable=False),
    Column("object_sha256", String(64), nullable=False, server_default=""),
    Column("first_event_time", String(32), nullable=False, server_default=""),
    Column("last_event_time", String(32), nullable=False, server_default=""),
    UniqueConstraint("project_id", "region", "container", "key", name="uq_deliveries_object"),
    Index("ix_deliveries_project_day", "project_id", "day"),
    Index("ix_deliveries_digest", "project_id", "region", "delivered_at"),
)

delivery_status = Table(
    "delivery_status",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("region", String(255), primary_key=True),
    Column("last_container", String(256), nullable=True),
    Column("last_key", Text, nullable=True),
    Column("last_day", String(10), nullable=True),
    Column("last_success_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", UtcDateTime, nullable=True),
    Column("consecutive_errors", Integer, nullable=False),
)

ingest_counts = Table(
    "ingest_counts",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("hour", UtcDateTime, primary_key=True),
    Column("count", BigInteger, nullable=False),
    Index("ix_ingest_counts_hour", "hour"),
)

# Events ingested per project and UTC day, kept longer than the hourly counters (the
# project page charts the last 30 days); written with `ingest_counts` in one transaction.
ingest_daily = Table(
    "ingest_daily",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("count", BigInteger, nullable=False),
    Index("ix_ingest_daily_day", "day"),
)

# Exactly one row (id = 1): bumped in the same transaction as every trail or defaults
# change, polled by every process that follows the configuration.
config_version = Table(
    "config_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)


def upsert(dialect_name: str, table: Table) -> Any:
    """An INSERT that supports `.on_conflict_do_update` on SQLite and PostgreSQL."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    if dialect_name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    raise ValueError(f"unsupported database dialect {dialect_name!r}")
