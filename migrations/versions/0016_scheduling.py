"""the GPU-pool scheduler: each job's priority, resources, placement and place in the queue;
each worker's pool, devices and drain flag; tenants' scheduling settings and decayed usage; the
lease that makes one scheduler active per deployment (core/scheduler_store.py)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 19:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("resources", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("placement", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("queue_position", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("pending_reason", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("preempt_requested_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("trace_context", sa.JSON(), nullable=True))
    with op.batch_alter_table("workers") as batch_op:
        batch_op.add_column(
            sa.Column("pool", sa.String(64), nullable=False, server_default="default")
        )
        batch_op.add_column(sa.Column("slots", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("busy", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("draining", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "tenants",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("weight", sa.Float(), nullable=False, server_default="1"),
        sa.Column("max_priority", sa.Integer(), nullable=False, server_default="2"),
        sa.Column("gpu_quota", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "tenant_usage",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("pool", sa.String(64), primary_key=True),
        sa.Column("usage", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "scheduler_lease",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scheduler_lease")
    op.drop_table("tenant_usage")
    op.drop_table("tenants")
    with op.batch_alter_table("workers") as batch_op:
        for column in ("draining", "busy", "slots", "pool"):
            batch_op.drop_column(column)
    with op.batch_alter_table("jobs") as batch_op:
        for column in (
            "trace_context",
            "preempt_requested_at",
            "pending_reason",
            "queue_position",
            "queued_at",
            "placement",
            "resources",
            "priority",
        ):
            batch_op.drop_column(column)
