"""Events ingested per project and UTC day, kept for the 30-day chart of the status.

The new table starts from the hourly counters still kept (up to 8 days), so the chart
shows that much history right after the upgrade.

Revision ID: 0003_ingest_daily
Revises: 0002_jobs
Create Date: 2025-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_ingest_daily"
down_revision: str | None = "0002_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ingest_daily",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_ingest_daily_day", "ingest_daily", ["day"])

    # `hour` holds naive UTC times: its date is the UTC day. SQLite keeps both columns as
    # text, and its date() gives the YYYY-MM-DD text SQLAlchemy's Date reads back.
    day = "date(hour)" if op.get_bind().dialect.name == "sqlite" else "CAST(hour AS DATE)"
    op.execute(
        "INSERT INTO ingest_daily (project_id, day, count) "
        f"SELECT project_id, {day}, SUM(count) FROM ingest_counts "
        f"GROUP BY project_id, {day}"
    )


def downgrade() -> None:
    op.drop_index("ix_ingest_daily_day", table_name="ingest_daily")
    op.drop_table("ingest_daily")
