"""audit retention floor: no audit row younger than 6 years can be deleted

security.md H-11 keeps audit rows at least 6 years. Until now any session could switch on
`intake.audit_purge` itself and delete recent rows, and audit_purge() took any cutoff. The
trigger now lets a DELETE through only for rows older than 6 years (and only with the purge
setting on), and audit_purge() refuses a cutoff later than 6 years ago. SQLite gets a second
BEFORE DELETE trigger for rows younger than 6 years that purge() does not drop.

The floor counts from clock_timestamp(), not now(): now() is when the transaction began, so a
cutoff of exactly 6 years computed by the application a moment later would be refused.

The figure matches intake.domain.retention.AUDIT_RETENTION_YEARS_MIN; the SQL here is frozen,
so changing the floor takes a new migration.

Revision ID: 0009_audit_floor
Revises: 0008_scan
"""

from alembic import op

revision = "0009_audit_floor"
down_revision = "0008_scan"
branch_labels = None
depends_on = None

PG_FLOOR = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('intake.audit_purge', true) = 'on' THEN
    IF OLD.at < clock_timestamp() - interval '6 years' THEN
      RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_event is append-only: rows younger than 6 years are kept';
  END IF;
  RAISE EXCEPTION 'audit_event is append-only (% refused)', TG_OP;
END
$$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION audit_purge(cutoff timestamptz, actor_id integer, actor_email text)
RETURNS integer AS $$
DECLARE
  removed integer;
BEGIN
  IF cutoff IS NULL OR cutoff > clock_timestamp() - interval '6 years' THEN
    RAISE EXCEPTION 'audit_purge refused: audit rows are kept at least 6 years (cutoff %)',
      cutoff;
  END IF;
  PERFORM set_config('intake.audit_purge', 'on', true);
  DELETE FROM audit_event WHERE at < cutoff;
  GET DIAGNOSTICS removed = ROW_COUNT;
  PERFORM set_config('intake.audit_purge', 'off', true);
  INSERT INTO audit_event (at, user_id, user_email, role, action, resource_type, outcome, detail)
  VALUES (now(), actor_id, actor_email, 'admin', 'D', 'audit_event', 'success',
          'purged:' || removed);
  RETURN removed;
END
$$ LANGUAGE plpgsql;
"""

# The definitions of 0002_staff (unchanged through 0008_scan).
PG_PREVIOUS = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('intake.audit_purge', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_event is append-only (% refused)', TG_OP;
END
$$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION audit_purge(cutoff timestamptz, actor_id integer, actor_email text)
RETURNS integer AS $$
DECLARE
  removed integer;
BEGIN
  PERFORM set_config('intake.audit_purge', 'on', true);
  DELETE FROM audit_event WHERE at < cutoff;
  GET DIAGNOSTICS removed = ROW_COUNT;
  PERFORM set_config('intake.audit_purge', 'off', true);
  INSERT INTO audit_event (at, user_id, user_email, role, action, resource_type, outcome, detail)
  VALUES (now(), actor_id, actor_email, 'admin', 'D', 'audit_event', 'success',
          'purged:' || removed);
  RETURN removed;
END
$$ LANGUAGE plpgsql;
"""

# SQLite keeps `at` as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC, which compares as text with
# datetime('now', ...). purge() drops and re-creates audit_event_no_delete only; this one stays.
SQLITE_FLOOR = (
    "CREATE TRIGGER audit_event_retention_floor BEFORE DELETE ON audit_event "
    "WHEN OLD.at >= datetime('now', '-6 years') "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: rows younger than 6 years are kept'); "
    "END"
)


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FLOOR)
    else:
        op.execute(SQLITE_FLOOR)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_PREVIOUS)
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_retention_floor")
