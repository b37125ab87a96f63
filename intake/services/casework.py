"""Coordinator actions on a case: assign, note, status change. One transaction each, audited."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from intake.domain import statuses
from intake.domain.text import N_
from intake.extensions import db
from intake.models import CaseNote, Referral, TimelineEvent, User
from intake.services import audit, cases, info_requests, notifications, uploads
from intake.services.auth import now
from intake.services.db import take_sqlite_write_lock
from intake.services.referrals import UploadedFile

# family_messages.MESSAGE_KIND (that module imports this one).
MESSAGE_KIND = "existing_patient_message"

# Decision 4: the acknowledgement is the first coordinator *contact* with the referrer or the
# family; the automatic email does not count, and neither does assigning, reading or triaging a
# case. What counts, and so stops the acknowledgement clock (acknowledged_at):
# * a note marked as a contact (add_note with a CONTACT_CHANNELS channel);
# * a request for more information, a human message with the upload link
#   (info_requests.request_info);
# * a status change that is itself a decision the referrer is told of (CONTACT_STATUSES);
# * a family message marked answered (family_messages.change_state).
CONTACT_STATUSES = frozenset(
    {statuses.ACCEPTED, statuses.CONSULT_SCHEDULED, statuses.DECLINED, statuses.REDIRECTED}
)
CONTACT_CHANNELS: dict[str, str] = {
    "phone": N_("Phone"),
    "email": N_("Email"),
    "in_person": N_("In person"),
}


def acknowledge(referral: Referral) -> None:
    """Decision 4: stop the acknowledgement clock at the first contact (see above)."""
    if referral.acknowledged_at is None:
        referral.acknowledged_at = now()


def assign(
    referral: Referral, actor: User, assignee: User | None, reviewer: User | None
) -> list[str]:
    """Set the coordinator and reviewing physician; returns what changed."""
    changed = []
    new_assignee = assignee.id if assignee else None
    new_reviewer = reviewer.id if reviewer else None
    if referral.assignee_id != new_assignee:
        referral.assignee_id = new_assignee
        changed.append("assignee")
    if referral.reviewer_id != new_reviewer:
        referral.reviewer_id = new_reviewer
        changed.append("reviewer")
    if changed:
        # Not an acknowledgement: routing a case to someone is not contact (decision 4).
        db.session.add(
            TimelineEvent(
                referral_id=referral.id,
                actor=actor.email,
                action="assigned",
                detail={
                    "assignee_id": new_assignee,
                    "reviewer_id": new_reviewer,
                    "assignee": assignee.email if assignee else None,
                    "reviewer": reviewer.email if reviewer else None,
                },
            )
        )
        audit.record(audit.UPDATE, "referral", referral.reference, detail="assign", user=actor)
        if "reviewer" in changed and reviewer is not None and reviewer.id != actor.id:
            # A reviewer sees only the cases assigned to them: tell them, or a P1 same-day
            # review waits until they happen to look. Once per reviewer and case.
            notifications.ensure_notification(
                referral, f"review_assigned.{reviewer.id}", [reviewer.email], language="en"
            )
    db.session.commit()
    return changed


# How a document reached the program when it did not come through a form or an upload link.
ARRIVAL_CHANNELS: dict[str, str] = {
    "fax": N_("Fax"),
    "email": N_("Email"),
    "mail": N_("Post"),
    "in_person": N_("Handed in"),
    "other": N_("Other"),
}


REDECIDABLE = statuses.REVIEW_CLOCK | {statuses.NEEDS_INFO}


def add_documents(
    referral: Referral, actor: User, files: list[UploadedFile], arrived_by: str
) -> int:
    """Attach documents that reached the program another way (a fax, an email, the post) to
    the case, in one transaction, and re-run triage on them while the case awaits its decision:
    a packet they complete starts its review clock (decision 4); a case waiting for
    information stays waiting until the coordinator moves it back (what arrived may not be
    what was asked for). Returns how many were added. The blobs are removed again if the
    transaction fails (raises uploads.UploadStoreError when the store is unavailable)."""
    if arrived_by not in ARRIVAL_CHANNELS:
        raise ValueError(f"unknown channel {arrived_by!r}")
    config = current_app.config
    stored: list[str] = []
    try:
        # Locked as triage locks it: a triage run or an upload-link answer at the same moment
        # waits, so the missing items are worked out from every document.
        take_sqlite_write_lock(db.session)
        db.session.scalar(
            sa.select(Referral.id)
            .where(Referral.id == referral.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        db.session.refresh(referral)
        uploads.attach(referral.documents, files, config, stored)
        db.session.add(
            TimelineEvent(
                referral_id=referral.id,
                actor=actor.email,
                action="documents_added",
                detail={
                    "documents": len(files),
                    "slots": sorted({upload.slot for upload in files}),
                    "arrived_by": arrived_by,
                },
            )
        )
        audit.record(
            audit.CREATE,
            "document",
            referral.reference,
            detail=f"staff:{arrived_by}:{len(files)}",
            user=actor,
        )
        # Only a case still before its decision: a late fax on a decided or closed case is kept
        # with it but changes nothing there (nor the metrics); an untriaged case is triaged
        # with it by the worker.
        if referral.triaged_at is not None and referral.status in REDECIDABLE:
            info_requests.retriage(referral, actor=actor.email)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        uploads.discard(stored, config)
        raise
    return len(files)


def add_note(referral: Referral, actor: User, body: str, contact: str | None = None) -> CaseNote:
    """An internal note; ``contact`` (a CONTACT_CHANNELS code) says it records contact with the
    referrer or family, which acknowledges the case (decision 4). Raises ValueError for an
    unknown channel."""
    if contact is not None and contact not in CONTACT_CHANNELS:
        raise ValueError(f"unknown contact channel {contact!r}")
    note = CaseNote(referral_id=referral.id, author_id=actor.id, body=body.strip(), at=now())
    db.session.add(note)
    db.session.flush()
    detail: dict[str, object] = {"note_id": note.id}
    if contact is not None:
        detail["contact"] = contact
        if referral.acknowledged_at is None:
            detail["acknowledged"] = True
        acknowledge(referral)
    # The timeline names the note, never its text (notes may carry PHI).
    db.session.add(
        TimelineEvent(
            referral_id=referral.id,
            actor=actor.email,
            action="note_added",
            detail=detail,
        )
    )
    audit.record(
        audit.CREATE,
        "case_note",
        note.id,
        detail=f"{referral.reference} contact:{contact}" if contact else referral.reference,
        user=actor,
    )
    db.session.commit()
    return note


def check_status_change(
    referral: Referral, actor: User, target: str, reason_code: str | None
) -> None:
    """Raise statuses.TransitionError if ``change_status`` would refuse the move; changes
    nothing (the case page checks a final move before asking for its confirmation)."""
    if referral.kind == MESSAGE_KIND:
        # Decision 11: a message is not a referral. Its case follows the message's own states
        # (closing the message closes the case); a referral status here would leave the two
        # out of step, e.g. a "new" message missing from the open queue.
        raise statuses.TransitionError(
            "family_message",
            "A family's message moves through its own states: use 'Save message state'.",
        )
    if target == statuses.NEEDS_INFO:
        raise statuses.TransitionError(
            "use_info_request",
            "Use 'Request more information' to move a case to 'needs_info': it sends the "
            "upload link and pauses the clock.",
        )
    statuses.check_transition(
        referral.status, target, role=actor.role, reason_code=reason_code or None
    )


def change_status(
    referral: Referral, actor: User, target: str, reason_code: str | None
) -> TimelineEvent:
    """A staff status change through the state machine; raises statuses.TransitionError.

    Leaving `needs_info` by hand closes the open information request and resumes the clock
    (or starts it, for a packet that never had a deadline).
    """
    check_status_change(referral, actor, target, reason_code)
    leaving_needs_info = referral.status == statuses.NEEDS_INFO
    event = cases.change_status(
        referral, target, actor=actor.email, role=actor.role, reason_code=reason_code or None
    )
    if leaving_needs_info:
        info_requests.close_open_requests(referral, reason=f"status_{target}")
        info_requests.resume_clock(referral)
        if target == statuses.UNDER_REVIEW:
            info_requests.retriage(referral, actor=actor.email)
            # As when the answer comes through the link: a packet still incomplete gets the
            # priority's review time from now, or the case would never escalate.
            info_requests.start_clock_if_none(referral, "moved_back_by_hand")
    if target in CONTACT_STATUSES:
        acknowledge(referral)
    audit.record(
        audit.UPDATE, "referral", referral.reference, detail=f"status:{target}", user=actor
    )
    db.session.commit()
    return event
