"""Family paths: the signed records-release authorization and existing-patient messages.

The case itself is a :class:`~intake.models.referral.Referral` of kind ``second_opinion`` or
``existing_patient_message``; these rows hold what only those kinds have.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from intake.models.base import Base, utcnow


class Authorization(Base):
    """A 45 CFR 164.508 authorization as signed (decision 16).

    ``sections`` is the exact text shown at signing, in the signer's language, and
    ``text_sha256`` its hash; the PDF a worker builds from it becomes a case document.
    Kept at least 6 years (164.530(j)); revocation is recorded, never a delete.
    """

    __tablename__ = "records_authorization"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(sa.ForeignKey("referral.id"), unique=True)
    text_version: Mapped[str] = mapped_column(sa.String(32))
    language: Mapped[str] = mapped_column(sa.String(8))
    sections: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    text_sha256: Mapped[str] = mapped_column(sa.String(64))
    signer_name: Mapped[str] = mapped_column(sa.String(200))
    signer_relationship: Mapped[str] = mapped_column(sa.String(32))
    signer_ip: Mapped[str | None] = mapped_column(sa.String(45))
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_on: Mapped[date] = mapped_column(sa.Date)
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"))
    # When the revocation reached the program, and how (domain.messages.REVOCATION_METHODS).
    revocation_received_on: Mapped[date | None] = mapped_column(sa.Date)
    revocation_method: Mapped[str | None] = mapped_column(sa.String(16))
    # The generated PDF (a Document of the case); set once by the worker, so reruns do nothing.
    document_id: Mapped[str | None] = mapped_column(sa.ForeignKey("document.id"), unique=True)
    # When the PDF task was last queued: the reconcile sweep re-queues it if still missing.
    pdf_queued_at: Mapped[datetime] = mapped_column(default=utcnow)


MESSAGE_STATES = ("new", "in_progress", "answered", "closed")


class FamilyMessage(Base):
    """An existing patient's family writing to the care team (decision 11).

    Matched to a case by reference + date of birth when the family gives them, else by the
    same child (normalized name + DOB); otherwise flagged unmatched for a coordinator.
    """

    __tablename__ = "family_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(sa.ForeignKey("referral.id"), unique=True)
    topic: Mapped[str] = mapped_column(sa.String(32))
    state: Mapped[str] = mapped_column(sa.String(16), default="new")
    # reference | same_child | unmatched | by_hand (a coordinator matched it later)
    match_method: Mapped[str] = mapped_column(sa.String(16))
    matched_case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("referral.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (sa.Index("ix_family_message_state", "state"),)
