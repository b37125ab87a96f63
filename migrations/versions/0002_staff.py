"""coordinator workspace: accounts, audit trail, assignments, information requests

Revision ID: 0002_staff
Revises: 0001
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

import intake.models.base  # noqa: F401  (UTCDateTime)

revision = "0002_staff"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
