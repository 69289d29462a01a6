"""dataset validations run under the jobs' protection: attempts (capped), a lease renewed by
the validating worker, and the time the first attempt started (the validation deadline)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "datasets",
        sa.Column("validation_attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "datasets", sa.Column("validation_started_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "datasets", sa.Column("validation_heartbeat_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("validation_heartbeat_at")
        batch.drop_column("validation_started_at")
        batch.drop_column("validation_attempts")
