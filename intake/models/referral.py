"""A case: a physician referral (later also second opinions and family messages)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from intake.models.base import Base, utcnow


class Referral(Base):
    __tablename__ = "referral"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(16), unique=True)
    submission_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    payload_hash: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(32), default="physician_referral")
    status: Mapped[str] = mapped_column(sa.String(32), default="received")
    status_reason: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # Identity and routing fields kept as columns for the queue, search and duplicate linking;
    # every answer of the form is also kept verbatim in `answers`.
    patient_given_name: Mapped[str] = mapped_column(sa.String(100))
    patient_family_name: Mapped[str] = mapped_column(sa.String(100))
    patient_dob: Mapped[date] = mapped_column(sa.Date)
    person_key: Mapped[str] = mapped_column(sa.String(300), index=True)
    disease: Mapped[str] = mapped_column(sa.String(32))
    referrer_name: Mapped[str] = mapped_column(sa.String(200))
    referrer_email: Mapped[str] = mapped_column(sa.String(254))
    referrer_npi: Mapped[str | None] = mapped_column(sa.String(10))
    preferred_language: Mapped[str] = mapped_column(sa.String(8), default="en")
    answers: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)

    # Triage result (decision 5: triage stores these and moves the case to under_review)
    triage_category: Mapped[str | None] = mapped_column(sa.String(40))
    triage_priority: Mapped[str | None] = mapped_column(sa.String(2))
    triage_rules_version: Mapped[str | None] = mapped_column(sa.String(32))
    triage_reasons: Mapped[list[dict[str, str]]] = mapped_column(sa.JSON, default=list)
    missing_items: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    hard_flags: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    triaged_at: Mapped[datetime | None]
    triage_attempts: Mapped[int] = mapped_column(default=0)
    ack_due_at: Mapped[datetime | None]
    review_due_at: Mapped[datetime | None]

    documents: Mapped[list[Document]] = relationship(
        back_populates="referral", order_by="Document.created_at"
    )
    events: Mapped[list[TimelineEvent]] = relationship(
        back_populates="referral", order_by="TimelineEvent.id"
    )

    __table_args__ = (sa.Index("ix_referral_queue", "status", "triage_priority", "review_due_at"),)


class Document(Base):
    """An uploaded file; the blob lives encrypted under a random key outside any served folder."""

    __tablename__ = "document"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    referral_id: Mapped[int] = mapped_column(sa.ForeignKey("referral.id"), index=True)
    slot: Mapped[str] = mapped_column(sa.String(32))
    display_name: Mapped[str] = mapped_column(sa.String(160))
    mime_type: Mapped[str] = mapped_column(sa.String(64))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(sa.String(64))
    storage_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    key_id: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    referral: Mapped[Referral] = relationship(back_populates="documents")


class TimelineEvent(Base):
    """The case's history: status changes, triage, emails. Details hold codes, never PHI."""

    __tablename__ = "timeline_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(sa.ForeignKey("referral.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(64), default="system")
    action: Mapped[str] = mapped_column(sa.String(40))
    from_status: Mapped[str | None] = mapped_column(sa.String(32))
    to_status: Mapped[str | None] = mapped_column(sa.String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)

    referral: Mapped[Referral] = relationship(back_populates="events")
