"""Initial config store: trails, changes, defaults, catalogue, ledger, version counter.

Revision ID: 0001
Revises:
Create Date: 2025-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trails",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by_id", sa.String(255), nullable=False),
        sa.Column("updated_by_name", sa.String(255), nullable=False),
    )
    op.create_index("ix_trails_seq", "trails", ["seq"])

    op.create_table(
        "trail_changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.String(64), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("user_project_id", sa.String(64), nullable=True),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.Column("new", sa.JSON(), nullable=True),
    )
    op.create_index("ix_trail_changes_project", "trail_changes", ["project_id", "id"])

    op.create_table(
        "defaults",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("default_retention_days", sa.Integer(), nullable=False),
        sa.Column("max_retention_days", sa.Integer(), nullable=False),
        sa.Column("default_interval_seconds", sa.Integer(), nullable=False),
        sa.Column("min_interval_seconds", sa.Integer(), nullable=False),
        sa.Column("default_container", sa.String(256), nullable=False),
        sa.Column("default_format", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by_id", sa.String(255), nullable=False),
        sa.Column("updated_by_name", sa.String(255), nullable=False),
    )

    op.create_table(
        "event_types",
        sa.Column("event_type", sa.String(255), primary_key=True),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("region", sa.String(255), nullable=False),
        sa.Column("container", sa.String(256), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint(
            "project_id", "region", "container", "key", name="uq_deliveries_object"
        ),
    )
    op.create_index("ix_deliveries_project_day", "deliveries", ["project_id", "day"])

    op.create_table(
        "delivery_status",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("region", sa.String(255), primary_key=True),
        sa.Column("last_container", sa.String(256), nullable=True),
        sa.Column("last_key", sa.Text(), nullable=True),
        sa.Column("last_day", sa.String(10), nullable=True),
        sa.Column("last_success_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(), nullable=True),
        sa.Column("consecutive_errors", sa.Integer(), nullable=False),
    )

    op.create_table(
        "ingest_counts",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("hour", sa.DateTime(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_ingest_counts_hour", "ingest_counts", ["hour"])

    version_table = op.create_table(
        "config_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(version_table, [{"id": 1, "version": 0}])


def downgrade() -> None:
    for index, table in (
        ("ix_ingest_counts_hour", "ingest_counts"),
        ("ix_deliveries_project_day", "deliveries"),
        ("ix_trail_changes_project", "trail_changes"),
        ("ix_trails_seq", "trails"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "config_version",
        "ingest_counts",
        "delivery_status",
        "deliveries",
        "event_types",
        "defaults",
        "trail_changes",
        "trails",
    ):
        op.drop_table(table)
