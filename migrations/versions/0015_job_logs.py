"""job logs: an index of the chunks of each job attempt's captured output (core/job_logs.py)

Revision ID: 0015
Revises: 0011
Create Date: 2026-12-07 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_log_chunks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("first_line", sa.BigInteger(), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(1024), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "uq_job_log_chunks_line", "job_log_chunks", ["job_id", "first_line"], unique=True
    )
    op.create_index(
        "uq_job_log_chunks_seq", "job_log_chunks", ["job_id", "attempt", "seq"], unique=True
    )


def downgrade() -> None:
    op.drop_table("job_log_chunks")
