"""The care team's side of existing patients' messages (decision 11).

A message is stored as its own case (kind ``existing_patient_message``, rule R0) plus a
:class:`~intake.models.FamilyMessage` row with its state. Reading one is a view of that case
(one audit row, written by ``queue.get_referral_for``); each state change is audited and goes
on the message's timeline and, when the message was matched, on the child's case timeline.

A message the family sent without a reference that matches, and that names no child we know
exactly, is flagged unmatched; a coordinator who has found the child's case (by phone, or by
name and date of birth in the queue) matches it by hand with :func:`match_by_hand`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from intake.domain import messages, statuses
from intake.domain.reference import format_reference, normalize_reference
from intake.extensions import db
from intake.models import FamilyMessage, Referral, TimelineEvent, User
from intake.services import audit, cases, notifications
from intake.services.casework import acknowledge
from intake.services.db import take_sqlite_write_lock
from intake.services.families import consented_family_email
from intake.services.queue import scope_clause

MESSAGE_KIND = "existing_patient_message"
UNMATCHED = "unmatched"
BY_HAND = "by_hand"


class MatchRefused(Exception):
    """A refused match by hand. ``code`` is stable; ``message`` is plain English."""

    def __init__(self, code: str, message: str, *, tried: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # The reference named when it is not in the actor's scope: the audit keeps the attempt.
        self.tried = tried


@dataclass(frozen=True)
class LinkedMessage:
    """A message shown on the case it was matched to: no text, just where and how far along."""

    reference: str
    topic: str
    state: str
    created_at: object


def message_of(referral: Referral) -> FamilyMessage | None:
    if referral.kind != MESSAGE_KIND:
        return None
    return db.session.scalar(
        sa.select(FamilyMessage).where(FamilyMessage.referral_id == referral.id)
    )


def messages_for_case(user: User, referral: Referral) -> list[LinkedMessage]:
    """Messages matched to ``referral`` that ``user`` may open (their own scope applies)."""
    rows = db.session.execute(
        sa.select(Referral.reference, FamilyMessage.topic, FamilyMessage.state, Referral.created_at)
        .join(FamilyMessage, FamilyMessage.referral_id == Referral.id)
        .where(FamilyMessage.matched_case_id == referral.id, scope_clause(user))
        .order_by(Referral.created_at.desc())
    ).all()
    return [LinkedMessage(*row) for row in rows]


def change_state(message_case: Referral, actor: User, target: str) -> FamilyMessage:
    """Move the message through decision 11's states in one transaction.

    Raises messages.MessageTransitionError (the caller rolls back and records the refusal).
    ``answered`` queues the family's PHI-free notice (once per message, with their consent,
    in their language); ``closed`` also closes the message's case so it leaves the open queue.
    """
    message = _locked_message(message_case)
    if message is None:
        raise messages.MessageTransitionError("not_a_message", "This case is not a message.")
    previous = message.state
    messages.check_transition(previous, target, role=actor.role)
    message.state = target
    detail = {"message": message_case.reference, "from_state": previous, "to_state": target}
    db.session.add(
        TimelineEvent(
            referral_id=message_case.id,
            actor=actor.email,
            action="message_state_changed",
            detail=detail,
        )
    )
    if message.matched_case_id is not None:
        db.session.add(
            TimelineEvent(
                referral_id=message.matched_case_id,
                actor=actor.email,
                action="message_state_changed",
                detail=detail,
            )
        )
    if target == messages.ANSWERED:
        # Decision 4: answering is contact with the family; "in progress" or closing is not.
        acknowledge(message_case)
    if messages.notify_family(target):
        email = consented_family_email(message_case.answers)
        if email:
            notifications.ensure_notification(
                message_case,
                notifications.FAMILY_MESSAGE_ANSWERED,
                [email],
                language=cases.email_language(message_case, "family"),
            )
    if target == messages.CLOSED and message_case.status not in statuses.TERMINAL:
        # A message is not a referral (decision 11): its case follows the message's own states
        # rather than the referral state machine, and sends no status email of its own.
        db.session.add(
            TimelineEvent(
                referral_id=message_case.id,
                actor=actor.email,
                action="status_changed",
                from_status=message_case.status,
                to_status=statuses.CLOSED,
                detail={"reason": "message_closed"},
            )
        )
        message_case.status = statuses.CLOSED
    # Keyed by the case reference, like the refusals and every other row about this case, so
    # the audit page finds a case's whole history with one search.
    audit.record(
        audit.UPDATE,
        "family_message",
        message_case.reference,
        detail=f"state:{target}",
        user=actor,
    )
    db.session.commit()
    return message


def _locked_message(message_case: Referral) -> FamilyMessage | None:
    """The message row locked and re-read (the page's request may already hold a stale copy
    in the session): two coordinators acting at once see each other's change. SQLite has no
    row locks: its write lock serializes them."""
    take_sqlite_write_lock(db.session)
    return db.session.scalar(
        sa.select(FamilyMessage)
        .where(FamilyMessage.referral_id == message_case.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def match_by_hand(message_case: Referral, actor: User, reference_text: str) -> Referral:
    """Match an unmatched message to the child's case named by ``reference_text``, in one
    transaction; returns that case. Raises MatchRefused (the caller rolls back and records it).

    Only a case in the actor's own queues can be named: a coordinator cannot learn of, or put
    a message on, a case they may not open (decision 10). Whether the two dates of birth agree
    goes on both timelines, so a later reader sees what the coordinator had to go on.
    """
    message = _locked_message(message_case)
    if message is None:
        raise MatchRefused("not_a_message", "This case is not a message.")
    if message.match_method != UNMATCHED:
        raise MatchRefused(
            "already_matched",
            "This message was matched to a case meanwhile. Reload the page to see which.",
        )
    reference = normalize_reference(reference_text.strip())
    if reference is None:
        raise MatchRefused(
            "bad_reference",
            "Enter the case reference as it is shown on the child's case page, for example "
            "7K3M-Q9TX-2HF.",
        )
    # Locked and re-read: a near-match link made meanwhile moves it into another group.
    target = db.session.scalar(
        sa.select(Referral)
        .where(Referral.reference == reference, scope_clause(actor))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if target is None:
        raise MatchRefused(
            "not_found",
            f"No case {format_reference(reference)} in your queues. Check the reference, or "
            "ask an admin to match the message.",
            tried=reference,
        )
    if target.kind == MESSAGE_KIND:
        raise MatchRefused(
            "is_a_message",
            f"{format_reference(reference)} is another family message, not a child's case. "
            "Enter the reference of the case the message is about.",
        )
    message.match_method = BY_HAND
    message.matched_case_id = target.id
    # Links are one hop, to the group's root: the message joins the child's whole group.
    message_case.linked_case_id = target.linked_case_id or target.id
    detail = {
        "message": message_case.reference,
        "case": target.reference,
        "dob_matches": target.patient_dob == message_case.patient_dob,
    }
    for case_id in (message_case.id, target.id):
        db.session.add(
            TimelineEvent(
                referral_id=case_id, actor=actor.email, action="message_matched", detail=detail
            )
        )
    audit.record(
        audit.UPDATE,
        "family_message",
        message_case.reference,
        detail=f"matched:{target.reference}",
        user=actor,
    )
    db.session.commit()
    return target


def record_refusal(
    message_case: Referral,
    actor: User,
    error: messages.MessageTransitionError | MatchRefused,
) -> None:
    """Undo the attempted change and keep a failure row in the audit trail."""
    db.session.rollback()
    audit.record(
        audit.UPDATE,
        "family_message",
        message_case.reference,
        outcome="failure",
        detail=(
            f"match:{error.code}{':' + error.tried if error.tried else ''}"
            if isinstance(error, MatchRefused)
            else f"state:{error.code}"
        ),
        user=actor,
        commit=True,
    )
