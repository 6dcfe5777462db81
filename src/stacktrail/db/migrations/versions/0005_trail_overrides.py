"""Trails store only their overrides; the rest follows the operator defaults.

Turns every complete stored trail document into the members the project chose, using the
change history to recover the defaults in force when each member was written (the rules,
and what happens where the history cannot tell, are in `stacktrail.db.override_recovery`).
Versions and the history stay as they are (the history keeps the complete documents it
recorded); the config version counter moves so running processes reload.

Downgrade writes complete documents again, from the current defaults.

Revision ID: 0005_trail_overrides
Revises: 0004_project_event_types
Create Date: 2026-12-01
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from stacktrail.config import Settings
from stacktrail.db.override_recovery import SETTINGS_MEMBERS, Change, recover
from stacktrail.domain.defaults import OperatorDefaults
from stacktrail.domain.document import resolve
from stacktrail.domain.durations import format_duration
from stacktrail.domain.trail import ArchiveFormat, TrailSettings

revision: str = "0005_trail_overrides"
down_revision: str | None = "0004_project_event_types"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("stacktrail.db.migrations")

trails = sa.table(
    "trails",
    sa.column("project_id", sa.String),
    sa.column("config", sa.JSON(none_as_null=True)),
    sa.column("seq", sa.BigInteger),
)
trail_changes = sa.table(
    "trail_changes",
    sa.column("id", sa.Integer),
    sa.column("project_id", sa.String),
    sa.column("action", sa.String),
    sa.column("old", sa.JSON(none_as_null=True)),
    sa.column("new", sa.JSON(none_as_null=True)),
)
defaults = sa.table(
    "defaults",
    sa.column("id", sa.Integer),
    sa.column("default_retention_days", sa.Integer),
    sa.column("max_retention_days", sa.Integer),
    sa.column("default_interval_seconds", sa.Integer),
    sa.column("min_interval_seconds", sa.Integer),
    sa.column("default_container", sa.String),
    sa.column("default_format", sa.String),
)
config_version = sa.table("config_version", sa.column("id", sa.Integer), sa.column("version"))


def _settings() -> TrailSettings | None:
    settings: TrailSettings | None = context.config.attributes.get("trail_settings")
    return settings


def _current_defaults(conn: sa.Connection, settings: TrailSettings | None) -> dict[str, Any] | None:
    row = conn.execute(sa.select(defaults).where(defaults.c.id == 1)).first()
    if row is not None:
        return {
            "default_retention_days": row.default_retention_days,
            "max_retention_days": row.max_retention_days,
            "default_interval": format_duration(timedelta(seconds=row.default_interval_seconds)),
            "default_container": row.default_container,
            "default_format": row.default_format,
        }
    if settings is None:
        return None
    found = OperatorDefaults.from_settings(settings)
    return {
        "default_retention_days": found.default_retention_days,
        "max_retention_days": found.max_retention_days,
        "default_interval": format_duration(found.default_interval),
        "default_container": found.default_container,
        "default_format": found.default_format.value,
    }


def _settings_values(settings: TrailSettings | None) -> dict[str, Any] | None:
    if settings is None:
        return None
    values = {
        "archive.enabled": settings.archive_enabled,
        "archive.prefix": settings.archive_prefix.strip("/"),
        "archive.regions": list(settings.archive_regions),
    }
    assert set(values) == set(SETTINGS_MEMBERS)
    return values


def _changes(rows: Sequence[sa.Row[Any]]) -> list[Change]:
    def doc(value: Any) -> Mapping[str, Any] | None:
        return value if isinstance(value, Mapping) else None

    return [Change(row.id, doc(row.old), doc(row.new)) for row in rows]


def _bump(conn: sa.Connection) -> int:
    conn.execute(
        sa.update(config_version)
        .where(config_version.c.id == 1)
        .values(version=config_version.c.version + 1)
    )
    return int(
        conn.scalar(sa.select(config_version.c.version).where(config_version.c.id == 1)) or 0
    )


def upgrade() -> None:
    conn = op.get_bind()
    settings = _settings()
    current = _current_defaults(conn, settings)
    c = trail_changes.c
    defaults_changes = _changes(
        conn.execute(sa.select(trail_changes).where(c.project_id.is_(None)).order_by(c.id)).all()
    )
    rows = conn.execute(
        sa.select(trails.c.project_id, trails.c.config).where(trails.c.config.is_not(None))
    ).all()
    seq: int | None = None
    for row in rows:
        if not isinstance(row.config, Mapping):
            continue  # not a document: the store already reads it as the defaults
        history = _changes(
            conn.execute(
                sa.select(trail_changes).where(c.project_id == row.project_id).order_by(c.id)
            ).all()
        )
        found = recover(row.config, history, defaults_changes, current, _settings_values(settings))
        if found.guessed:
            log.info(
                "trail of project %s: %s decided without a recorded default "
                "(kept unless equal to today's)",
                row.project_id,
                ", ".join(found.guessed),
            )
        if found.overrides != row.config:
            seq = seq if seq is not None else _bump(conn)
            conn.execute(
                sa.update(trails)
                .where(trails.c.project_id == row.project_id)
                .values(config=found.overrides, seq=seq)
            )


def downgrade() -> None:
    conn = op.get_bind()
    settings: TrailSettings = _settings() or Settings()
    row = conn.execute(sa.select(defaults).where(defaults.c.id == 1)).first()
    if row is None:
        current = OperatorDefaults.from_settings(settings)
    else:
        current = OperatorDefaults(
            default_retention_days=row.default_retention_days,
            max_retention_days=row.max_retention_days,
            default_interval=timedelta(seconds=row.default_interval_seconds),
            min_interval=timedelta(seconds=row.min_interval_seconds),
            default_container=row.default_container,
            default_format=ArchiveFormat(row.default_format),
        )
    rows = conn.execute(
        sa.select(trails.c.project_id, trails.c.config).where(trails.c.config.is_not(None))
    ).all()
    seq: int | None = None
    for found in rows:
        if not isinstance(found.config, Mapping):
            continue
        spec = resolve(found.config, current, settings).spec
        seq = seq if seq is not None else _bump(conn)
        conn.execute(
            sa.update(trails)
            .where(trails.c.project_id == found.project_id)
            .values(config=spec.model_dump(mode="json"), seq=seq)
        )
