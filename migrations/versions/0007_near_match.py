"""index open cases by date of birth for near-match suggestions

The case page looks for possible same-child cases with the same date of birth (decision 12);
without this index that is a sequential scan on every case view. Partial on open cases, with
the predicate written exactly as intake/models/referral.py OPEN_ONLY so the planner matches it.

Revision ID: 0007_near_match
Revises: 0006_performance
"""

from alembic import op
import sqlalchemy as sa

revision = "0007_near_match"
down_revision = "0006_performance"
branch_labels = None
depends_on = None

OPEN_ONLY = sa.text("status NOT IN ('withdrawn', 'closed_no_response', 'closed')")


def upgrade():
    op.create_index(
        "ix_referral_open_dob",
        "referral",
        ["patient_dob"],
        postgresql_where=OPEN_ONLY,
        sqlite_where=OPEN_ONLY,
    )


def downgrade():
    op.drop_index("ix_referral_open_dob", table_name="referral")
