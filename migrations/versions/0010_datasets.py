"""uploaded datasets: archives stored in the object store, validated by a worker

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 08:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("archive_format", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("num_examples", sa.Integer(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_datasets_tenant"), "datasets", ["tenant"])
    op.create_index("ix_datasets_tenant_created", "datasets", ["tenant", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_datasets_tenant_created", table_name="datasets")
    op.drop_index(op.f("ix_datasets_tenant"), table_name="datasets")
    op.drop_table("datasets")
