"""change notifications: PostgreSQL triggers that NOTIFY tass_changes when a job, one of its
transitions or an API key changes (the API's read cache listens: core/change_feed.py)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 15:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# the payload names what changed; NOTIFY folds identical payloads of one transaction into one
NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION tass_notify_change() RETURNS trigger AS $$
DECLARE
    changed record;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := OLD;
    ELSE
        changed := NEW;
    END IF;
    IF TG_TABLE_NAME = 'jobs' THEN
        PERFORM pg_notify('tass_changes', 'job:' || changed.id);
    ELSIF TG_TABLE_NAME = 'job_transitions' THEN
        PERFORM pg_notify('tass_changes', 'job:' || changed.job_id);
    ELSE
        PERFORM pg_notify('tass_changes', 'keys');
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
TABLES = ("jobs", "job_transitions", "api_keys")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite needs no trigger: readers watch PRAGMA data_version
    op.execute(NOTIFY_FUNCTION)
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER tass_notify_{table} AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION tass_notify_change()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS tass_notify_{table} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS tass_notify_change()")
