"""model lineage: the model a fine-tuned model started from, and that model file's sha256

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-07 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("models", sa.Column("parent_model_id", sa.String(32), nullable=True))
    op.add_column("models", sa.Column("parent_sha256", sa.String(64), nullable=True))
    op.create_index("ix_models_parent_model_id", "models", ["parent_model_id"])


def downgrade() -> None:
    op.drop_index("ix_models_parent_model_id", table_name="models")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("parent_sha256")
        batch.drop_column("parent_model_id")
