"""coalesced change notifications: the PostgreSQL triggers of 0011 no longer notify for an
UPDATE that changes nothing, nor for a job's heartbeat alone unless it moves into a new minute
(core/change_feed.py; every heartbeat used to notify, which a wedged listener could pile up
in the server's notification queue)

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-07 16:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# the payload names what changed; NOTIFY folds identical payloads of one transaction into one.
# A heartbeat-only update notifies once a minute per job, so a cached status answer's
# `last_heartbeat_at` lags by at most a minute while its status, progress and metrics do not.
COALESCED_FUNCTION = """
CREATE OR REPLACE FUNCTION tass_notify_change() RETURNS trigger AS $$
DECLARE
    changed record;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF to_jsonb(NEW) = to_jsonb(OLD) THEN
            RETURN NULL;
        END IF;
        IF TG_TABLE_NAME = 'jobs' THEN
            IF to_jsonb(NEW) - 'last_heartbeat_at' = to_jsonb(OLD) - 'last_heartbeat_at'
               AND date_trunc('minute', NEW.last_heartbeat_at)
                   IS NOT DISTINCT FROM date_trunc('minute', OLD.last_heartbeat_at) THEN
                RETURN NULL;
            END IF;
        END IF;
    END IF;
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

# 0011's function, restored on downgrade
EVERY_CHANGE_FUNCTION = """
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


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite needs no trigger: readers watch PRAGMA data_version
    op.execute(COALESCED_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(EVERY_CHANGE_FUNCTION)
