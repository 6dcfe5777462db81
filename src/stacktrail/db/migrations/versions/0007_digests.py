"""What the signed archive digests list for each delivered object.

Revision ID: 0007_digests
Revises: 0005_trail_overrides
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_digests"
down_revision: str | None = "0005_trail_overrides"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(
            sa.Column("object_sha256", sa.String(64), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("first_event_time", sa.String(32), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("last_event_time", sa.String(32), nullable=False, server_default="")
        )
    op.create_index("ix_deliveries_digest", "deliveries", ["project_id", "region", "delivered_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_digest", "deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("last_event_time")
        batch.drop_column("first_event_time")
        batch.drop_column("object_sha256")
