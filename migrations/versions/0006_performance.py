"""indexes for the work queue at scale

The queue's order is one row value (priority key, due key, id); these indexes store exactly
those expressions, so the first page and any keyset page are one index range scan, and the
per-status counts are read from an index alone. The constants must be written exactly as in
intake/models/referral.py (QUEUE_ORDER) for the planner to match them.

Revision ID: 0006_performance
Revises: 0005_status_lookup
"""

from alembic import op
import sqlalchemy as sa

import intake.models.base  # noqa: F401  (UTCDateTime)

revision = "0006_performance"
down_revision = "0005_status_lookup"
branch_labels = None
depends_on = None

OPEN_ONLY = sa.text("status NOT IN ('withdrawn', 'closed_no_response', 'closed')")


def _order_keys():
    if op.get_bind().dialect.name == "postgresql":
        far_future = "'9999-01-01 00:00:00+00'::timestamptz"
    else:
        far_future = "'9999-01-01 00:00:00.000000'"
    return [
        sa.text("coalesce(triage_priority, 'P9')"),
        sa.text(f"coalesce(review_due_at, {far_future})"),
        sa.text("id"),
    ]


def upgrade():
    op.drop_index("ix_referral_queue", table_name="referral")
    op.drop_index("ix_referral_open_status", table_name="referral")
    op.create_index(
        "ix_referral_open_queue",
        "referral",
        _order_keys(),
        postgresql_where=OPEN_ONLY,
        sqlite_where=OPEN_ONLY,
    )
    op.create_index(
        "ix_referral_status_queue", "referral", [sa.text("status"), *_order_keys()]
    )
    op.create_index(
        "ix_referral_open_counts",
        "referral",
        ["status", "kind"],
        postgresql_where=OPEN_ONLY,
        sqlite_where=OPEN_ONLY,
    )
    # The per-referrer daily acknowledgement cap looks this up on every submission.
    op.create_index("ix_referral_referrer_email", "referral", ["referrer_email"])


def downgrade():
    op.drop_index("ix_referral_referrer_email", table_name="referral")
    op.drop_index("ix_referral_open_counts", table_name="referral")
    op.drop_index("ix_referral_status_queue", table_name="referral")
    op.drop_index("ix_referral_open_queue", table_name="referral")
    op.create_index(
        "ix_referral_open_status",
        "referral",
        ["status"],
        postgresql_where=OPEN_ONLY,
        sqlite_where=OPEN_ONLY,
    )
    op.create_index(
        "ix_referral_queue", "referral", ["status", "triage_priority", "review_due_at"]
    )
