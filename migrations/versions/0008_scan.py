"""malware scan status on documents

Decision 18: every upload is scanned and only clean documents are served. Documents stored
before scanning existed were accepted by the same type checks and have been served all
along; they are marked clean (the server default fills them, then goes: new rows always say
what the scan found).

Revision ID: 0008_scan
Revises: 0007_near_match
"""

from alembic import op
import sqlalchemy as sa

import intake.models.base  # noqa: F401  (UTCDateTime)

revision = "0008_scan"
down_revision = "0007_near_match"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("document") as batch_op:
        batch_op.add_column(
            sa.Column("scan_status", sa.String(length=16), nullable=False, server_default="clean")
        )
        batch_op.add_column(
            sa.Column("scanned_at", intake.models.base.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("document") as batch_op:
        batch_op.alter_column("scan_status", server_default=None)


def downgrade():
    with op.batch_alter_table("document") as batch_op:
        batch_op.drop_column("scanned_at")
        batch_op.drop_column("scan_status")
