"""Role scope (decision 10), the work queue with keyset pagination, and case lookups.

Every staff read of a case goes through :func:`get_referral_for`: one place decides what a
user may see, and anything out of scope is a 404 plus a logged denial.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import abort, request
from sqlalchemy import orm

from intake.domain import messages, statuses
from intake.domain.deadlines import TimeLeft, time_left
from intake.domain.inputs import fold_name
from intake.domain.reference import normalize_reference
from intake.extensions import db
from intake.models import (
    FamilyMessage,
    InfoRequest,
    Referral,
    ReferralCount,
    User,
    UTCDateTime,
)
from intake.models.referral import OPEN_ONLY, QUEUE_ORDER, QUEUE_PRIORITY_KEY
from intake.services import audit, break_glass
from intake.services.auth import now
from intake.services.referrals import program_calendar

OPEN_STATUSES = tuple(s for s in statuses.ALL_STATUSES if s not in statuses.TERMINAL)
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)  # the due time of cases without one (DUE_KEY)
# The queue never shows the form's answers or the triage detail: not loaded.
_NOT_SHOWN = (
    orm.defer(Referral.answers),
    orm.defer(Referral.triage_reasons),
    orm.defer(Referral.hard_flags),
)


def scope_clause(user: User) -> sa.ColumnElement[bool]:
    if user.role == "admin":
        return sa.true()
    if user.role == "reviewer":
        return Referral.reviewer_id == user.id
    return Referral.kind.in_(user.queues or [])


def can_see(user: User, referral: Referral) -> bool:
    """Whether ``user`` may open ``referral`` now: in scope, or under a break-glass grant."""
    found = db.session.scalar(
        sa.select(Referral.id).where(Referral.id == referral.id, scope_clause(user))
    )
    return found is not None or break_glass.active_grant(user, referral.reference) is not None


def get_referral_for(user: User, reference: str, *, log_read: bool = False) -> Referral:
    """The case if ``user`` may see it, else 404 with a logged denial (no existence leak)."""
    try:
        normalized = normalize_reference(reference)
    except ValueError:
        normalized = None
    referral = None
    if normalized:
        referral = db.session.scalar(
            sa.select(Referral).where(Referral.reference == normalized, scope_clause(user))
        )
        if referral is None and break_glass.active_grant(user, normalized) is not None:
            referral = db.session.scalar(
                sa.select(Referral).where(Referral.reference == normalized)
            )
            if referral is not None:
                # Every use of emergency access is its own row (a view: this is its one row).
                detail = "view" if log_read else f"use:{request.endpoint}"
                audit.record(
                    audit.BREAK_GLASS, "referral", normalized, detail=detail, user=user, commit=True
                )
                return referral
    if referral is None:
        audit.record(
            audit.DENIED,
            "referral",
            (normalized or "invalid")[:64],
            outcome="denied",
            user=user,
            commit=True,
        )
        abort(404)
    if log_read:
        audit.record(audit.READ, "referral", referral.reference, user=user, commit=True)
    return referral


@dataclass
class QueueFilters:
    status: str = ""
    kind: str = ""
    category: str = ""
    priority: str = ""
    assignee: str = ""  # "", "me", "none" or a user id
    overdue: bool = False
    q: str = ""
    message: str = ""  # "", "unmatched" or a family message state (decision 11)

    def as_args(self) -> dict[str, str]:
        args = {
            "status": self.status,
            "kind": self.kind,
            "category": self.category,
            "priority": self.priority,
            "assignee": self.assignee,
            "overdue": "1" if self.overdue else "",
            # Never the search text: it can be a name, and URLs end up in browser history and
            # logs. The text stays in the session (the queue's search form posts it).
            "search": "1" if self.q else "",
            "message": self.message,
        }
        return {k: v for k, v in args.items() if v}


@dataclass
class QueueRow:
    referral: Referral
    time_left: TimeLeft | None
    paused: bool
    assignee_email: str | None
    # Which deadline time_left counts down to: the review, or the acknowledgement while nobody
    # has contacted the referrer or family and there is no running review clock (a family's
    # message, a packet not complete yet) or the acknowledgement is the one already late.
    clock: str = "review"
    # Whom a paused case waits on: "referrer", "family" or both, from its information requests.
    waiting_on: tuple[str, ...] = ()


@dataclass
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None
    counts: dict[str, int] = field(default_factory=dict)


def _filtered(user: User, filters: QueueFilters) -> sa.Select[tuple[Referral]]:
    statement = sa.select(Referral).where(scope_clause(user))
    if filters.status:
        statement = statement.where(Referral.status == filters.status)
    elif filters.message != messages.CLOSED:
        # Closing a message closes its case too: the "closed" message filter looks past the
        # open queue, every other view stays on it.
        statement = statement.where(OPEN_ONLY)
    if filters.kind:
        statement = statement.where(Referral.kind == filters.kind)
    if filters.category:
        statement = statement.where(Referral.triage_category == filters.category)
    if filters.priority:
        # The same value as triage_priority for P1-P3, but the index's leading key.
        statement = statement.where(QUEUE_PRIORITY_KEY == filters.priority)
    if filters.assignee == "me":
        statement = statement.where(Referral.assignee_id == user.id)
    elif filters.assignee == "none":
        statement = statement.where(Referral.assignee_id.is_(None))
    elif filters.assignee.isdigit():
        statement = statement.where(Referral.assignee_id == int(filters.assignee))
    if filters.overdue:
        # Either clock late: the review (unless paused), or the acknowledgement while nobody
        # has contacted the referrer or family (a family's message has only this one). Both
        # are row filters on the queue-order index scan, as the review test alone was.
        at = now()
        statement = statement.where(
            sa.or_(
                sa.and_(
                    Referral.review_due_at < at,
                    Referral.clock_paused_at.is_(None),
                    Referral.status.in_(sorted(statuses.REVIEW_CLOCK)),
                ),
                sa.and_(Referral.acknowledged_at.is_(None), Referral.ack_due_at < at),
            )
        )
    if filters.message:
        condition = (
            FamilyMessage.match_method == "unmatched"
            if filters.message == "unmatched"
            else FamilyMessage.state == filters.message
        )
        statement = statement.where(
            Referral.id.in_(sa.select(FamilyMessage.referral_id).where(condition))
        )
    q = filters.q.strip()
    if q:
        statement = statement.where(_search_clause(q))
    return statement


def _search_clause(q: str) -> sa.ColumnElement[bool]:
    """A name (as typed, or folded), a date of birth, a whole reference or its start."""
    try:
        reference = normalize_reference(q)
    except ValueError:
        reference = None
    pattern = "%" + _like_safe(q).lower() + "%"
    matches = [
        sa.func.lower(Referral.patient_given_name).like(pattern),
        sa.func.lower(Referral.patient_family_name).like(pattern),
        sa.func.lower(Referral.patient_given_name + " " + Referral.patient_family_name).like(
            pattern
        ),
    ]
    folded = _like_safe(fold_name(q))
    if folded:
        # Accents, case and punctuation folded as in the duplicate-child key
        # (given|family|DOB): "zoe" finds "Zoë", "obrien" finds "O'Brien".
        key_text = sa.func.replace(Referral.person_key, "|", " ")
        matches.append(key_text.like("%" + folded + "%"))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", q):
        matches.append(Referral.person_key.like("%|" + q))  # a date of birth
    compact = re.sub(r"[\s-]", "", q).upper()
    if reference:
        matches.append(Referral.reference == reference)
    elif 3 <= len(compact) < 11 and compact.isalnum() and compact.isascii():
        # The start of a reference, as read out on the phone ("4ATH").
        matches.append(Referral.reference.like(compact + "%"))
    return sa.or_(*matches)


def _like_safe(text: str) -> str:
    """``text`` without LIKE's wildcards and escape character."""
    return text.replace("\\", "").replace("%", "").replace("_", "")


def encode_cursor(referral: Referral) -> str:
    due = referral.review_due_at.isoformat() if referral.review_due_at else None
    raw = json.dumps([referral.triage_priority or "P9", due, referral.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, datetime | None, int] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        priority, due, ident = json.loads(raw)
        if not (isinstance(priority, str) and len(priority) == 2 and isinstance(ident, int)):
            return None
        # A hand-edited cursor must not reach the database as a naive time or an id beyond
        # the column's range (each was a 500): such a cursor starts from the first page.
        if not 0 < ident < 2**31 or not (due is None or isinstance(due, str)):
            return None
        when = datetime.fromisoformat(due) if due else None
        if when is not None and when.utcoffset() is None:
            return None
        return priority, when, ident
    except (ValueError, TypeError, OverflowError, binascii.Error, json.JSONDecodeError):
        return None


def queue_page(user: User, filters: QueueFilters, cursor: str | None, page_size: int) -> QueuePage:
    """Priority, then due time, then id; the next page starts after the last row's key.

    The order and the cursor are one row value (QUEUE_ORDER), so every page, however deep, is
    a range scan of ix_referral_open_queue (or ix_referral_status_queue for one status).
    """
    statement = _filtered(user, filters)
    position = decode_cursor(cursor) if cursor else None
    if position is not None:
        priority, due, ident = position
        statement = statement.where(
            sa.tuple_(*QUEUE_ORDER)
            > sa.tuple_(
                sa.literal(priority, sa.String()),
                sa.literal(due or FAR_FUTURE, UTCDateTime()),
                sa.literal(ident, sa.Integer()),
            )
        )
    statement = statement.options(*_NOT_SHOWN).order_by(*QUEUE_ORDER).limit(page_size + 1)
    referrals = list(db.session.scalars(statement))
    more = len(referrals) > page_size
    referrals = referrals[:page_size]
    assignees = _emails({r.assignee_id for r in referrals if r.assignee_id})
    waiting = _waiting_on({r.id for r in referrals if r.clock_paused_at is not None})
    calendar = program_calendar()
    at = now()
    rows = []
    for referral in referrals:
        left, clock = None, "review"
        ack_due = referral.ack_due_at if referral.acknowledged_at is None else None
        if (
            referral.review_due_at is not None
            and referral.clock_paused_at is None
            and referral.status in statuses.REVIEW_CLOCK  # decided: nothing left to count
        ):
            left = time_left(calendar, at, referral.review_due_at)
        if ack_due is not None and (left is None or (ack_due <= at and not left.overdue)):
            # A late acknowledgement is shown over a review still on time (it is why the row
            # is under "Overdue only").
            left, clock = time_left(calendar, at, ack_due), "ack"
        rows.append(
            QueueRow(
                referral=referral,
                time_left=left,
                paused=referral.clock_paused_at is not None,
                assignee_email=assignees.get(referral.assignee_id or 0),
                clock=clock,
                waiting_on=waiting.get(referral.id, ()),
            )
        )
    next_cursor = encode_cursor(referrals[-1]) if more and referrals else None
    return QueuePage(rows=rows, next_cursor=next_cursor, counts=status_counts(user))


def status_counts(user: User) -> dict[str, int]:
    """Open cases per status in the user's scope.

    Coordinators and admins read the per-(status, kind) counters the database keeps (migration
    0011): a sum over a few hundred rows, however many cases are open. A reviewer's scope is
    the cases assigned to them, which the counters do not split by; those few are counted.
    """
    if user.role == "reviewer":
        statement = (
            sa.select(Referral.status, sa.func.count())
            .where(OPEN_ONLY, scope_clause(user))
            .group_by(Referral.status)
        )
    else:
        statement = (
            sa.select(ReferralCount.status, sa.func.sum(ReferralCount.cases))
            .where(ReferralCount.status.in_(OPEN_STATUSES))
            .group_by(ReferralCount.status)
        )
        if user.role != "admin":  # as scope_clause: a coordinator sees their queues' kinds
            statement = statement.where(ReferralCount.kind.in_(user.queues or []))
    found = {status: int(count) for status, count in db.session.execute(statement).all()}
    return {status: found.get(status, 0) for status in OPEN_STATUSES}


def _waiting_on(paused_ids: set[int]) -> dict[int, tuple[str, ...]]:
    """Audiences of the open information requests of paused cases (one query, and none when
    no case on the page is paused)."""
    if not paused_ids:
        return {}
    rows = db.session.execute(
        sa.select(InfoRequest.referral_id, InfoRequest.audience)
        .where(
            InfoRequest.referral_id.in_(paused_ids),
            InfoRequest.closed_at.is_(None),
            InfoRequest.spent_at.is_(None),
        )
        .distinct()
    ).all()
    found: dict[int, set[str]] = {}
    for referral_id, audience in rows:
        found.setdefault(referral_id, set()).add(audience)
    return {case: tuple(sorted(audiences, reverse=True)) for case, audiences in found.items()}


def _emails(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(User.id, User.email).where(User.id.in_(ids))).all())


def staff_choices(role: str | None = None) -> list[User]:
    statement = sa.select(User).where(User.active.is_(True)).order_by(User.email)
    if role:
        statement = statement.where(User.role == role)
    return list(db.session.scalars(statement))


def same_child_clause(referral: Referral) -> sa.ColumnElement[bool]:
    """Cases of the same child as ``referral`` (itself included): the same normalized name and
    date of birth (decision 12's key), or one group of linked cases."""
    root = referral.linked_case_id or referral.id  # links are one hop, to the group's root
    return sa.or_(
        Referral.person_key == referral.person_key,
        Referral.linked_case_id == root,
        Referral.id == root,
    )


def linked_cases(user: User, referral: Referral) -> list[Referral]:
    """Other cases of the same child (decision 12's normalized key) and cases linked to or
    from this one (``Referral.linked_case_id``, e.g. a message matched by reference), within
    scope."""
    return list(
        db.session.scalars(
            sa.select(Referral)
            .where(
                same_child_clause(referral),
                Referral.id != referral.id,
                scope_clause(user),
            )
            .order_by(Referral.created_at)
        )
    )
