"""Scheduler: export jobs, search-delivery checkpoints, retention updates, named state.

Revision ID: 0002_jobs
Revises: 0001
Create Date: 2025-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_jobs"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "export_jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("time_from", sa.DateTime(), nullable=False),
        sa.Column("time_to", sa.DateTime(), nullable=False),
        sa.Column("container", sa.String(256), nullable=False),
        sa.Column("prefix", sa.String(256), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("write_mode", sa.String(16), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.String(255), nullable=False),
        sa.Column("requested_by_name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("events_total", sa.BigInteger(), nullable=True),
        sa.Column("events_done", sa.BigInteger(), nullable=False),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False),
        sa.Column("files_done", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("checkpoint", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_export_jobs_status", "export_jobs", ["status", "created_at"])
    op.create_index("ix_export_jobs_project", "export_jobs", ["project_id", "created_at"])

    op.create_table(
        "search_delivery",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("ingested_until", sa.DateTime(), nullable=False),
        sa.Column("windows", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("window", sa.JSON(), nullable=True),
        sa.Column("last_run_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )

    op.create_table(
        "retention_updates",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("objects_seen", sa.BigInteger(), nullable=False),
        sa.Column("objects_updated", sa.BigInteger(), nullable=False),
        sa.Column("objects_deleted", sa.BigInteger(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )

    op.create_table(
        "scheduler_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_export_jobs_project", table_name="export_jobs")
    op.drop_index("ix_export_jobs_status", table_name="export_jobs")
    for table in ("scheduler_state", "retention_updates", "search_delivery", "export_jobs"):
        op.drop_table(table)
