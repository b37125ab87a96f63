"""families: second opinions, authorizations, messages, duplicate-child links

Revision ID: 0003_families
Revises: 0002_staff
"""

import sqlalchemy as sa
from alembic import op

import intake.models.base

revision = "0003_families"
down_revision = "0002_staff"
branch_labels = None
depends_on = None

UTC = intake.models.base.UTCDateTime(timezone=True)


def upgrade():
    with op.batch_alter_table("referral") as batch_op:
        batch_op.add_column(sa.Column("linked_case_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_referral_linked_case_id_referral"), "referral", ["linked_case_id"], ["id"]
        )
        batch_op.create_index(batch_op.f("ix_referral_linked_case_id"), ["linked_case_id"])
        batch_op.add_column(sa.Column("family_email", sa.String(length=254), nullable=True))
        batch_op.create_index(batch_op.f("ix_referral_family_email"), ["family_email"])

    op.create_table(
        "records_authorization",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("text_version", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("text_sha256", sa.String(length=64), nullable=False),
        sa.Column("signer_name", sa.String(length=200), nullable=False),
        sa.Column("signer_relationship", sa.String(length=32), nullable=False),
        sa.Column("signer_ip", sa.String(length=45), nullable=True),
        sa.Column("signed_at", UTC, nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("revoked_at", UTC, nullable=True),
        sa.Column("revoked_by", sa.Integer(), nullable=True),
        sa.Column("revocation_received_on", sa.Date(), nullable=True),
        sa.Column("revocation_method", sa.String(length=16), nullable=True),
        sa.Column("document_id", sa.String(length=36), nullable=True),
        sa.Column("pdf_queued_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referral.id"], name=op.f("fk_records_authorization_referral_id_referral")
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by"], ["staff_user.id"], name=op.f("fk_records_authorization_revoked_by_staff_user")
        ),
        sa.ForeignKeyConstraint(
            ["document_id"], ["document.id"], name=op.f("fk_records_authorization_document_id_document")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_records_authorization")),
        sa.UniqueConstraint("referral_id", name=op.f("uq_records_authorization_referral_id")),
        sa.UniqueConstraint("document_id", name=op.f("uq_records_authorization_document_id")),
    )

    op.create_table(
        "family_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("match_method", sa.String(length=16), nullable=False),
        sa.Column("matched_case_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referral.id"], name=op.f("fk_family_message_referral_id_referral")
        ),
        sa.ForeignKeyConstraint(
            ["matched_case_id"],
            ["referral.id"],
            name=op.f("fk_family_message_matched_case_id_referral"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_message")),
        sa.UniqueConstraint("referral_id", name=op.f("uq_family_message_referral_id")),
    )
    with op.batch_alter_table("family_message") as batch_op:
        batch_op.create_index(batch_op.f("ix_family_message_state"), ["state"])


def downgrade():
    with op.batch_alter_table("family_message") as batch_op:
        batch_op.drop_index(batch_op.f("ix_family_message_state"))
    op.drop_table("family_message")
    op.drop_table("records_authorization")
    with op.batch_alter_table("referral") as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_family_email"))
        batch_op.drop_column("family_email")
        batch_op.drop_index(batch_op.f("ix_referral_linked_case_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_referral_linked_case_id_referral"), type_="foreignkey"
        )
        batch_op.drop_column("linked_case_id")
