"""reliability: dead-letter and escalation bookkeeping

Revision ID: 0004_reliability
Revises: 0003_families
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

import intake.models.base  # noqa: F401  (UTCDateTime)

revision = "0004_reliability"
down_revision = "0003_families"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "task_failure",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("task_name", sa.String(length=64), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("updated_at", intake.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "dead_lettered_at", intake.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_task_failure")),
    )


def downgrade():
    op.drop_table("task_failure")
