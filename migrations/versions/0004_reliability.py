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
    pass


def downgrade():
    pass
