"""families: second opinions, authorizations, messages, status lookup

Revision ID: 0003_families
Revises: 0002_staff
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

import intake.models.base  # noqa: F401  (UTCDateTime)

revision = "0003_families"
down_revision = "0002_staff"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
