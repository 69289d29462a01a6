"""registry mirrors: a model's MLflow run and logged model, and each registered version's
pending or delivered copy in MLflow's model registry (core/registry_mirror.py)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("mlflow_run_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("mlflow_model_id", sa.String(64), nullable=True))
    op.create_table(
        "registry_mirrors",
        sa.Column(
            "registered_model_id",
            sa.Integer(),
            sa.ForeignKey("registered_models.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("model_id", sa.String(32), sa.ForeignKey("models.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mlflow_version", sa.String(32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_registry_mirrors_next_try_at", "registry_mirrors", ["next_try_at"])


def downgrade() -> None:
    op.drop_table("registry_mirrors")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("mlflow_model_id")
        batch.drop_column("mlflow_run_id")
