"""login notifications: dashboard logins and logouts notify `tass_changes` (payload `keys`, as
API keys do), so every API process's live event streams notice a logout made elsewhere (event
streams ride the change feed since this revision: api/streams.py)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08 00:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite needs no trigger: readers watch PRAGMA data_version
    # tass_notify_change (0011, 0013) sends `keys` for any table but jobs and job_transitions
    op.execute(
        "CREATE TRIGGER tass_notify_dashboard_sessions AFTER INSERT OR UPDATE OR DELETE "
        "ON dashboard_sessions FOR EACH ROW EXECUTE FUNCTION tass_notify_change()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS tass_notify_dashboard_sessions ON dashboard_sessions")
