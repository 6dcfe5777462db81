"""Event types per project, so a project sees only the types of its own events.

The cloud-wide catalogue (`event_types`) stays for cloud admins; this table starts empty
and fills as events arrive.

Revision ID: 0004_project_event_types
Revises: 0003_ingest_daily
Create Date: 2025-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_project_event_types"
down_revision: str | None = "0003_ingest_daily"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "project_event_types",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("event_type", sa.String(255), primary_key=True),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("project_event_types")
