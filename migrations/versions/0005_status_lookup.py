"""status lookup attempts and reference locks

Revision ID: 0005_status_lookup
Revises: 0004_reliability
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

import intake.models.base  # noqa: F401  (UTCDateTime)

revision = "0005_status_lookup"
down_revision = "0004_reliability"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "status_lookup_guard",
        sa.Column("reference", sa.String(length=16), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", intake.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("locked_until", intake.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("reference", name=op.f("pk_status_lookup_guard")),
    )


def downgrade():
    op.drop_table("status_lookup_guard")
