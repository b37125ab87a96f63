"""coordinator workspace: accounts, audit trail, assignments, information requests

Revision ID: 0002_staff
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import intake.models.base

revision = "0002_staff"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC = intake.models.base.UTCDateTime(timezone=True)
OPEN_ONLY = sa.text("status NOT IN ('withdrawn', 'closed_no_response', 'closed')")

# Append-only audit trail: triggers bind superusers too (trust auth connects as one). The only
# way to delete is audit_purge(), which writes its own audit row (decisions: traps).
PG_AUDIT = """
CREATE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('intake.audit_purge', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_event is append-only (% refused)', TG_OP;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_event_no_update_delete BEFORE UPDATE OR DELETE ON audit_event
  FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
  FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();
CREATE FUNCTION audit_purge(cutoff timestamptz, actor_id integer, actor_email text)
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
SQLITE_AUDIT = [
    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
    "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
]


def upgrade():
    op.create_table(
        "staff_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("is_demo", sa.Boolean(), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("totp_enrolled_at", UTC, nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=False),
        sa.Column("recovery_code_hashes", sa.JSON(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("last_login_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_user")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_user_email")),
    )
    op.create_table(
        "staff_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("last_seen_at", UTC, nullable=False),
        sa.Column("ended_at", UTC, nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("notice_sent_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["staff_user.id"], name=op.f("fk_staff_session_user_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_session_token_hash")),
    )
    with op.batch_alter_table("staff_session") as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_session_user_id"), ["user_id"], unique=False)

    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("user_email", sa.String(length=254), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=64), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("request_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event") as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_user_id"), ["user_id"], unique=False)

    op.create_table(
        "case_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["staff_user.id"], name=op.f("fk_case_note_author_id_staff_user")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referral.id"], name=op.f("fk_case_note_referral_id_referral")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_note")),
    )
    with op.batch_alter_table("case_note") as batch_op:
        batch_op.create_index(batch_op.f("ix_case_note_referral_id"), ["referral_id"])

    op.create_table(
        "info_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("spent_at", UTC, nullable=True),
        sa.Column("closed_at", UTC, nullable=True),
        sa.Column("close_reason", sa.String(length=24), nullable=True),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("last_reminder_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referral.id"], name=op.f("fk_info_request_referral_id_referral")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["staff_user.id"],
            name=op.f("fk_info_request_requested_by_staff_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_info_request")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_info_request_token_hash")),
    )
    with op.batch_alter_table("info_request") as batch_op:
        batch_op.create_index(batch_op.f("ix_info_request_referral_id"), ["referral_id"])

    op.create_table(
        "password_reset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("sent_at", UTC, nullable=True),
        sa.Column("used_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["staff_user.id"], name=op.f("fk_password_reset_user_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_reset")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_reset_token_hash")),
    )
    with op.batch_alter_table("password_reset") as batch_op:
        batch_op.create_index(batch_op.f("ix_password_reset_user_id"), ["user_id"])

    op.create_table(
        "break_glass_grant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["staff_user.id"], name=op.f("fk_break_glass_grant_user_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_break_glass_grant")),
    )
    with op.batch_alter_table("break_glass_grant") as batch_op:
        batch_op.create_index(batch_op.f("ix_break_glass_grant_user_id"), ["user_id"])

    op.create_table(
        "escalation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("clock", sa.String(length=8), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referral.id"], name=op.f("fk_escalation_referral_id_referral")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation")),
        sa.UniqueConstraint("referral_id", "clock", "level", name="uq_escalation_case_level"),
    )
    with op.batch_alter_table("escalation") as batch_op:
        batch_op.create_index(batch_op.f("ix_escalation_referral_id"), ["referral_id"])

    with op.batch_alter_table("referral") as batch_op:
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reviewer_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("clock_paused_at", UTC, nullable=True))
        batch_op.add_column(
            sa.Column("clock_paused_seconds", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_index(batch_op.f("ix_referral_assignee_id"), ["assignee_id"])
        batch_op.create_index(batch_op.f("ix_referral_reviewer_id"), ["reviewer_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_referral_assignee_id_staff_user"), "staff_user", ["assignee_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_referral_reviewer_id_staff_user"), "staff_user", ["reviewer_id"], ["id"]
        )
        batch_op.create_index(
            "ix_referral_open_status",
            ["status"],
            postgresql_where=OPEN_ONLY,
            sqlite_where=OPEN_ONLY,
        )
    with op.batch_alter_table("referral") as batch_op:
        batch_op.alter_column("clock_paused_seconds", server_default=None)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_AUDIT)
    else:
        for statement in SQLITE_AUDIT:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_purge(timestamptz, integer, text)")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update_delete ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
    with op.batch_alter_table("referral") as batch_op:
        batch_op.drop_index("ix_referral_open_status")
        batch_op.drop_constraint(
            batch_op.f("fk_referral_reviewer_id_staff_user"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_referral_assignee_id_staff_user"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_referral_reviewer_id"))
        batch_op.drop_index(batch_op.f("ix_referral_assignee_id"))
        batch_op.drop_column("clock_paused_seconds")
        batch_op.drop_column("clock_paused_at")
        batch_op.drop_column("acknowledged_at")
        batch_op.drop_column("reviewer_id")
        batch_op.drop_column("assignee_id")
    op.drop_table("escalation")
    op.drop_table("break_glass_grant")
    op.drop_table("password_reset")
    op.drop_table("info_request")
    op.drop_table("case_note")
    op.drop_table("audit_event")
    op.drop_table("staff_session")
    op.drop_table("staff_user")
