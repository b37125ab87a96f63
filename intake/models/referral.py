"""A case: a physician referral (later also second opinions and family messages)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column, relationship

from intake.domain import statuses
from intake.models.base import Base, UTCDateTime, utcnow


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
    # Decision 12: a new case for a child who already has an open case (from a physician or a
    # family) points at that case, so coordinators see one child, not two unrelated tickets.
    linked_case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("referral.id"), index=True)
    disease: Mapped[str] = mapped_column(sa.String(32))
    referrer_name: Mapped[str] = mapped_column(sa.String(200))
    # Indexed for the per-referrer daily cap on acknowledgements (decision 8), run per submission.
    referrer_email: Mapped[str] = mapped_column(sa.String(254), index=True)
    # The family's own address on family requests (the per-recipient acknowledgement cap).
    family_email: Mapped[str | None] = mapped_column(sa.String(254), index=True)
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

    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"), index=True)
    reviewer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"), index=True)
    # Decision 4: first coordinator contact stops the acknowledgement clock.
    acknowledged_at: Mapped[datetime | None]
    # The review clock pauses while the case waits on the referrer or family.
    clock_paused_at: Mapped[datetime | None]
    clock_paused_seconds: Mapped[int] = mapped_column(default=0)

    documents: Mapped[list[Document]] = relationship(
        back_populates="referral", order_by="Document.created_at"
    )
    events: Mapped[list[TimelineEvent]] = relationship(
        back_populates="referral", order_by="TimelineEvent.id"
    )


class _FarFuture(sa.sql.expression.ColumnElement[datetime]):
    """9999-01-01 UTC, written inline: an index expression never matches a bound parameter."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(_FarFuture)
def _far_future(element: _FarFuture, compiler: Any, **kw: Any) -> str:
    return "'9999-01-01 00:00:00.000000'"  # SQLite keeps UTC datetimes as sortable text


@compiles(_FarFuture, "postgresql")
def _far_future_pg(element: _FarFuture, compiler: Any, **kw: Any) -> str:
    return "'9999-01-01 00:00:00+00'::timestamptz"


# The work queue's order as one row value (priority, due time, id): untriaged cases sort after
# P3, cases without a due time last. The keyset cursor compares against the same row, so both
# the first page and any deep page are one range scan of an index below.
QUEUE_PRIORITY_KEY = sa.func.coalesce(Referral.triage_priority, sa.literal_column("'P9'"))
QUEUE_DUE_KEY = sa.func.coalesce(Referral.review_due_at, _FarFuture())
QUEUE_ORDER = (QUEUE_PRIORITY_KEY, QUEUE_DUE_KEY, Referral.id)
# Open = not terminal, as literal SQL: the partial indexes' predicate, which the planner can then
# match whatever the query's parameters.
_TERMINAL_LIST = ", ".join(f"'{s}'" for s in statuses.ALL_STATUSES if s in statuses.TERMINAL)
OPEN_ONLY = sa.text(f"status NOT IN ({_TERMINAL_LIST})")

# All open cases in queue order (the default view and its deep pages).
sa.Index(
    "ix_referral_open_queue",
    *QUEUE_ORDER,
    postgresql_where=OPEN_ONLY,
    sqlite_where=OPEN_ONLY,
)
# One status in queue order (the status filter, including closed cases).
sa.Index("ix_referral_status_queue", Referral.status, *QUEUE_ORDER)
# Open cases by date of birth: the near-match suggestions on every case page (decision 12).
sa.Index(
    "ix_referral_open_dob",
    Referral.patient_dob,
    postgresql_where=OPEN_ONLY,
    sqlite_where=OPEN_ONLY,
)


class ReferralCount(Base):
    """Cases per (status, kind), spread over slots by case id; kept by database triggers.

    The work queue's per-status counts read this instead of counting open cases, so they cost
    the same at any size (migration 0011 has the triggers and why there are slots).
    """

    __tablename__ = "referral_count"

    status: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    slot: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    cases: Mapped[int] = mapped_column(sa.BigInteger)


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
    # Malware scan (intake.domain.scan): only "clean" documents are ever served.
    scan_status: Mapped[str] = mapped_column(sa.String(16), default="clean")
    scanned_at: Mapped[datetime | None]

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
