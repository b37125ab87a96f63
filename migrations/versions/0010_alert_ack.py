"""who acknowledged an alert, and an index for the admin banner

Decision 7: admins see unacknowledged alerts in a banner on every staff page and acknowledge
them on the Alerts page. The acknowledging account is kept beside the time it was done. The
banner's one query reads only unacknowledged alerts: a partial index holds just those rows, so
it stays small however many acknowledged alerts pile up.

Revision ID: 0010_alert_ack
Revises: 0009_audit_floor
"""

from alembic import op
import sqlalchemy as sa

revision = "0010_alert_ack"
down_revision = "0009_audit_floor"
branch_labels = None
depends_on = None

UNACKNOWLEDGED = sa.text("acknowledged_at IS NULL")


def upgrade():
    with op.batch_alter_table("alert") as batch_op:
        batch_op.add_column(sa.Column("acknowledged_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_alert_acknowledged_by_id_staff_user", "staff_user", ["acknowledged_by_id"], ["id"]
        )
    op.create_index(
        "ix_alert_unacknowledged",
        "alert",
        ["id"],
        postgresql_where=UNACKNOWLEDGED,
        sqlite_where=UNACKNOWLEDGED,
    )


def downgrade():
    op.drop_index("ix_alert_unacknowledged", table_name="alert")
    with op.batch_alter_table("alert") as batch_op:
        batch_op.drop_constraint("fk_alert_acknowledged_by_id_staff_user", type_="foreignkey")
        batch_op.drop_column("acknowledged_by_id")
