"""Requests for more information (decision 15): a PHI-free email with a single-use, expiring
upload link; the review clock pauses while the case waits, resumes when the answer arrives, and
reminders go out until the request closes as `closed_no_response`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext

from intake.domain import statuses
from intake.domain.deadlines import add_business_seconds
from intake.domain.text import N_
from intake.domain.triage import MISSING_ITEM_LABELS, REVIEW_BUSINESS_DAYS, triage
from intake.extensions import db
from intake.models import InfoRequest, Notification, Referral, TimelineEvent, User
from intake.services import audit, authorization, cases, notifications, uploads
from intake.services.auth import now
from intake.services.referrals import (
    UploadedFile,
    program_calendar,
    triage_input,
    triage_thresholds,
)

log = logging.getLogger("intake.info_requests")

# Items that are answered with a document, and the document slot the upload goes into (so
# re-triage sees e.g. the flow cytometry report).
DOCUMENT_ITEMS = {"flow_report": "flow_cytometry"}
EXTRA_ITEMS = {
    "pathology_report": N_("Pathology or bone marrow report"),
    "treatment_summary": N_("Treatment summary"),
    "insurance_card": N_("Insurance card"),
    "authorization": N_("Signed release of information"),
}
# What a parent can provide, in plain words: a request to the family offers and asks only these
# (clinical items such as the CNS status or the MRD result go to the oncologist).
FAMILY_ITEM_LABELS = {
    "date_of_birth": N_("Your child's date of birth"),
    "disease": N_("Your child's diagnosis, as the doctors named it"),
    "oncologist_contact": N_("Your child's cancer doctor: name, hospital, and phone or email"),
    "prior_car_t": N_("Has your child had CAR T-cell therapy before? (yes or no)"),
    "had_hsct": N_("Has your child had a bone marrow or stem cell transplant? (yes or no)"),
    "pathology_report": N_("Hospital reports you have, such as bone marrow or pathology reports"),
    "treatment_summary": N_("A treatment summary from your child's hospital, if you have one"),
    "insurance_card": N_("Your child's insurance card (front and back)"),
    "authorization": N_("The signed release of information form"),
}
AUDIENCE_NAMES = {"referrer": "the referring clinician", "family": "the family"}
# casework.MESSAGE_KIND (casework imports this module).
MESSAGE_KIND = "existing_patient_message"
INFO_KIND = "info_request"
REMINDER_KIND = "info_reminder"
# The staff email "something arrived through an upload link": `info_received.<link id>`, so
# one per received answer (a link is spent once; the (case, kind) key is unique).
RECEIVED_KIND = "info_received"
SYSTEM_ACTOR = "system"


# Where the answers typed on the upload page are kept: in the case's answers, one entry per
# answered link, beside what the form sent (so they go wherever the case's answers go).
ANSWERS_KEY = "info_answers"


def item_label(code: str, audience: str = "referrer") -> str:
    """The item's name for ``audience``: plain words for a family, clinical ones otherwise."""
    if audience == "family" and code in FAMILY_ITEM_LABELS:
        return FAMILY_ITEM_LABELS[code]
    return MISSING_ITEM_LABELS.get(code) or EXTRA_ITEMS.get(code) or code.replace("_", " ")


def family_can_answer(code: str) -> bool:
    return code in FAMILY_ITEM_LABELS


def clinical_items(codes: list[str]) -> list[str]:
    """The items among ``codes`` that only a clinician can answer."""
    return [code for code in codes if not family_can_answer(code)]


def is_document_item(code: str) -> bool:
    """A report or card is sent as a file; anything else (a score, a date, a yes/no, a contact)
    is answered in words on the upload page."""
    return code in DOCUMENT_ITEMS or code in EXTRA_ITEMS


def answer_items(info_request: InfoRequest) -> list[str]:
    """The requested items the upload page asks to answer in words, in the request's order."""
    return [code for code in info_request.items if not is_document_item(code)]


def asks_for_documents(info_request: InfoRequest) -> bool:
    return any(is_document_item(code) for code in info_request.items)


def link_language(info_request: InfoRequest) -> str:
    """The language the request email was written in (kept on its notification); the rule that
    chose it when there is no such row."""
    language = db.session.scalar(
        sa.select(Notification.language).where(
            Notification.referral_id == info_request.referral_id,
            Notification.kind == f"{INFO_KIND}.{info_request.id}",
        )
    )
    if language in current_app.config["LANGUAGES"]:
        return str(language)
    referral = db.session.get(Referral, info_request.referral_id)
    assert referral is not None
    return email_language(referral, info_request.audience)


def received_answers(referral: Referral) -> dict[int, list[tuple[str, str]]]:
    """The answers sent through each link of the case: link id -> [(item label, answer)]."""
    received: dict[int, list[tuple[str, str]]] = {}
    for entry in referral.answers.get(ANSWERS_KEY) or []:
        answers = entry.get("answers") or {}
        received[int(entry["info_request"])] = [
            (item_label(code), str(text)) for code, text in answers.items()
        ]
    return received


def item_choices(referral: Referral) -> list[tuple[str, str]]:
    """The case's missing items first, then the usual documents; only what a parent can
    provide when the family is the only one who can be asked. When both can be, the clinical
    items are marked as the clinician's."""
    codes = list(dict.fromkeys([*referral.missing_items, *EXTRA_ITEMS]))
    audiences = [code for code, _label in audience_choices(referral)]
    if audiences == ["family"]:
        return [(code, item_label(code, "family")) for code in codes if family_can_answer(code)]
    if "family" in audiences:
        return [
            (code, item_label(code) + ("" if family_can_answer(code) else " (clinician only)"))
            for code in codes
        ]
    return [(code, item_label(code)) for code in codes]


def default_items(referral: Referral) -> list[str]:
    """The items ticked when the form opens: the case's missing items that the default
    audience (the first offered) can answer."""
    audiences = [code for code, _label in audience_choices(referral)]
    if audiences[:1] == ["family"]:
        return [code for code in referral.missing_items if family_can_answer(code)]
    return list(referral.missing_items)


def family_refusal(referral: Referral, items: list[str]) -> str | None:
    """Why ``items`` cannot be asked of the family (None if they can): clinical items go to the
    child's oncologist."""
    clinical = clinical_items(items)
    if not clinical:
        return None
    names = ", ".join(item_label(code) for code in clinical)
    where = (
        "ask the referring clinician for them instead"
        if referral.referrer_email
        else "they go to the child's oncologist: ask the family for the oncologist's contact"
    )
    return f"The family is asked only for what a parent can provide. Not for: {names}; {where}."


def audience_choices(referral: Referral) -> list[tuple[str, str]]:
    # A family's own request has a clinician only if the family named the oncologist's email.
    choices = [("referrer", "The referring clinician")] if referral.referrer_email else []
    if referral.answers.get("family_email") and referral.answers.get("family_email_consent"):
        choices.append(("family", "The family"))
    return choices


def _recipients(referral: Referral, audience: str) -> list[str]:
    if audience == "family":
        return [referral.answers["family_email"]]
    return [referral.referrer_email]


def email_language(referral: Referral, audience: str) -> str:
    """The request and its reminders read like the case's other emails to that audience: the
    family's language for the family, the clinician rule for a doctor (on a family's case, the
    program's default language, not the family's)."""
    return cases.email_language(referral, "family" if audience == "family" else "referrer")


# -- tokens ----------------------------------------------------------------------------


def token_for(info_request: InfoRequest) -> str:
    """HMAC of the row id and nonce: rebuilt by the worker for the email, never stored."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(key, f"info:{info_request.id}:{info_request.nonce}".encode(), "sha256")
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def upload_url(info_request: InfoRequest) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/upload/{token_for(info_request)}"


def is_usable(info_request: InfoRequest | None) -> bool:
    return bool(
        info_request is not None
        and info_request.spent_at is None
        and info_request.closed_at is None
        and info_request.expires_at > now()
    )


def find_by_token(token: str) -> InfoRequest | None:
    if not token or len(token) > 100:
        return None
    info_request = db.session.scalar(
        sa.select(InfoRequest).where(InfoRequest.token_hash == _token_hash(token))
    )
    return info_request if is_usable(info_request) else None


# -- the clock -------------------------------------------------------------------------


def pause_clock(referral: Referral) -> None:
    if referral.clock_paused_at is None:
        referral.clock_paused_at = now()


def resume_clock(referral: Referral) -> None:
    """Give back the business time that was left when the clock paused."""
    paused_at = referral.clock_paused_at
    if paused_at is None:
        return
    calendar = program_calendar()
    at = now()
    referral.clock_paused_seconds += int(max(0.0, calendar.business_seconds_between(paused_at, at)))
    if referral.review_due_at is not None:
        remaining = max(0.0, calendar.business_seconds_between(paused_at, referral.review_due_at))
        referral.review_due_at = add_business_seconds(calendar, at, remaining)
    referral.clock_paused_at = None
    db.session.add(
        TimelineEvent(
            referral_id=referral.id,
            action="clock_resumed",
            detail={
                "due_at": referral.review_due_at.isoformat() if referral.review_due_at else None
            },
        )
    )


def start_clock_if_none(referral: Referral, reason: str) -> None:
    """A case back under review with no review deadline gets one, counted from now.

    Decision 4 counts the review from the complete packet, so triage leaves an incomplete
    packet without a deadline. Once the referrer or family has answered (or the links to the
    doctors were closed), the case is back in a coordinator's hands even if items are still
    missing: the priority's full review time starts then (the items stay listed as missing),
    so the queue shows time left and escalation runs. A packet that becomes complete later
    keeps this earlier deadline; a case that already had one resumed it (resume_clock).
    """
    if (
        referral.review_due_at is not None
        or referral.clock_paused_at is not None
        or referral.status not in statuses.REVIEW_CLOCK
    ):
        return
    days = REVIEW_BUSINESS_DAYS.get(referral.triage_priority or "", 2)
    referral.review_due_at = program_calendar().deadline(now(), days)
    db.session.add(
        TimelineEvent(
            referral_id=referral.id,
            action="review_clock_started",
            detail={
                "due_at": referral.review_due_at.isoformat(),
                "reason": reason,
                "missing_items": list(referral.missing_items),
            },
        )
    )


def answer_notice_recipients(referral: Referral) -> tuple[str, list[str]]:
    """Who hears that an answer arrived: the case's assignee, else the queue's coordinators;
    and the on-call too when the answer left a P1 outside business hours (an evening upload
    can make a case urgent: decision 13 pages for it as at intake)."""
    business_hours = program_calendar().is_business_time(now())
    if referral.assignee_id:
        assignee = db.session.get(User, referral.assignee_id)
        if assignee is not None and assignee.active:
            return "assignee", notifications.with_oncall_out_of_hours(
                referral, [assignee.email], business_hours=business_hours
            )
    return "queue", notifications.coordinator_recipients(referral, business_hours=business_hours)


def _queue_answer_notice(referral: Referral, info_request: InfoRequest) -> None:
    to, recipients = answer_notice_recipients(referral)
    notifications.ensure_notification(
        referral, f"{RECEIVED_KIND}.{info_request.id}", recipients, language="en"
    )
    db.session.add(
        TimelineEvent(
            referral_id=referral.id,
            actor=SYSTEM_ACTOR,
            action="answer_notice_queued",
            detail={"info_request": info_request.id, "to": to},
        )
    )


# -- use cases -------------------------------------------------------------------------


def check_can_request(referral: Referral) -> None:
    """Decision 11: a family's message has its own states; a request for information would
    drive its case through referral statuses (needs_info, closed_no_response) instead."""
    if referral.kind == MESSAGE_KIND:
        raise statuses.TransitionError(
            "family_message",
            "A family's message is answered by the care team, not with a request for more "
            "information: use 'Save message state'. To ask for records, open the child's case.",
        )


def request_info(
    referral: Referral, actor: User, items: list[str], audience: str = "referrer"
) -> InfoRequest:
    """Move the case to needs_info, pause the clock and queue the email with the link."""
    check_can_request(referral)
    allowed = {code for code, _label in item_choices(referral)}
    unknown = [item for item in items if item not in allowed]
    if not items or unknown:
        raise ValueError("unknown or empty items")
    if audience not in {code for code, _label in audience_choices(referral)}:
        raise ValueError("unknown audience")
    if audience == "family" and family_refusal(referral, items):
        raise ValueError("clinical items asked of the family")
    if audience != "family":
        # Decision 16: asking the family's doctors relies on the family's authorization.
        authorization.check_records_request(referral)
    # The audience asked goes with the status change: the status emails say who was asked.
    cases.change_status(
        referral,
        statuses.NEEDS_INFO,
        actor=actor.email,
        role=actor.role,
        detail={"info_audience": audience},
    )
    nonce = secrets.token_hex(16)
    info_request = InfoRequest(
        referral_id=referral.id,
        requested_by=actor.id,
        items=list(items),
        audience=audience,
        recipients=_recipients(referral, audience),
        nonce=nonce,
        token_hash="pending-" + uuid.uuid4().hex,
        created_at=now(),
        expires_at=now() + timedelta(days=current_app.config["INFO_LINK_DAYS"]),
        reminders_sent=0,
    )
    db.session.add(info_request)
    db.session.flush()
    info_request.token_hash = _token_hash(token_for(info_request))
    pause_clock(referral)
    if referral.acknowledged_at is None:
        referral.acknowledged_at = now()
    db.session.add(
        TimelineEvent(
            referral_id=referral.id,
            actor=actor.email,
            action="info_requested",
            detail={"info_request": info_request.id, "items": list(items), "audience": audience},
        )
    )
    notifications.ensure_notification(
        referral,
        f"{INFO_KIND}.{info_request.id}",
        info_request.recipients,
        language=email_language(referral, audience),
    )
    audit.record(
        audit.CREATE, "info_request", info_request.id, detail=referral.reference, user=actor
    )
    db.session.commit()
    return info_request


def close_open_requests(referral: Referral, reason: str) -> None:
    closed = []
    for info_request in db.session.scalars(
        sa.select(InfoRequest).where(
            InfoRequest.referral_id == referral.id,
            InfoRequest.closed_at.is_(None),
            InfoRequest.spent_at.is_(None),
        )
    ):
        info_request.closed_at = now()
        info_request.close_reason = reason[:24]
        closed.append(info_request.id)
    cancel_link_emails(referral, closed, reason[:24])


def close_links_to_doctors(
    referral: Referral, reason: str, *, actor: str, role: str, at: datetime | None = None
) -> int:
    """Close the case's open upload links to clinicians (every audience but the family): once
    the family's authorization is revoked or expired, a reminder or an upload through them
    would be a request or disclosure it no longer covers. A case left waiting on nothing goes
    back to review with its clock running again. Returns how many links were closed."""
    at = at or now()
    open_links = list(
        db.session.scalars(
            sa.select(InfoRequest).where(
                InfoRequest.referral_id == referral.id,
                InfoRequest.closed_at.is_(None),
                InfoRequest.spent_at.is_(None),
                InfoRequest.audience != "family",
            )
        )
    )
    for link in open_links:
        link.closed_at = at
        link.close_reason = reason[:24]
    # The request or a reminder still waiting to go out would ask the doctors again, with a
    # link that no longer opens: cancel them with the links.
    cancel_link_emails(referral, [link.id for link in open_links], reason)
    if not open_links or referral.status != statuses.NEEDS_INFO:
        return len(open_links)
    db.session.flush()
    still_waiting = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(InfoRequest)
        .where(
            InfoRequest.referral_id == referral.id,
            InfoRequest.closed_at.is_(None),
            InfoRequest.spent_at.is_(None),
        )
    )
    if not still_waiting:
        resume_clock(referral)
        cases.change_status(
            referral, statuses.UNDER_REVIEW, actor=actor, role=role, detail={"reason": reason}
        )
        start_clock_if_none(referral, "links_closed")
    return len(open_links)


def _link_emails(referral_id: int, link_ids: list[int]) -> sa.ColumnElement[bool]:
    """The request email and reminders of the links ``link_ids`` (kinds carry the link's id)."""
    kinds = [
        sa.or_(
            Notification.kind == f"{INFO_KIND}.{link_id}",
            Notification.kind.startswith(f"{REMINDER_KIND}.{link_id}.", autoescape=True),
        )
        for link_id in link_ids
    ]
    return sa.and_(Notification.referral_id == referral_id, sa.or_(*kinds))


def cancel_link_emails(referral: Referral, link_ids: list[int], reason: str) -> int:
    """Cancel the emails of the links that have not gone out yet (caller commits)."""
    if not link_ids:
        return 0
    unsent = db.session.scalars(
        sa.select(Notification)
        .where(
            _link_emails(referral.id, link_ids),
            Notification.status.in_(notifications.UNSENT),
        )
        .order_by(Notification.created_at)
        .with_for_update()
    ).all()
    return notifications.cancel_unsent(list(unsent), reason)


def _records_refusal(referral: Referral, at: datetime) -> str | None:
    """Why the family's authorization no longer allows asking their doctors (None if it does)."""
    try:
        authorization.check_records_request(referral, authorization.program_date(at))
    except statuses.TransitionError as error:
        return error.code
    return None


def closed_to_doctors(info_request: InfoRequest, at: datetime | None = None) -> str | None:
    """Why a link addressed to the family's doctors may no longer be used (decision 16): the
    family's authorization was revoked or has expired. None if it may, and always for a link
    to the family, who may send what they have whatever the authorization says.

    The sweep closes such links too; this covers the time until it runs.
    """
    if info_request.audience == "family":
        return None
    referral = db.session.get(Referral, info_request.referral_id)
    assert referral is not None
    return _records_refusal(referral, at or now())


def close_refused_link(info_request_id: int) -> str | None:
    """Close the case's open links to the doctors now, as the sweep would, when the link
    ``info_request_id`` may no longer be used; returns why (None if it still may). Commits."""
    info_request = db.session.scalar(
        sa.select(InfoRequest).where(InfoRequest.id == info_request_id).with_for_update()
    )
    refusal = (
        closed_to_doctors(info_request)
        if info_request is not None and is_usable(info_request)
        else None
    )
    if info_request is None or refusal is None:
        db.session.rollback()
        return None
    referral = db.session.get(Referral, info_request.referral_id)
    assert referral is not None
    closed = close_links_to_doctors(referral, refusal, actor=SYSTEM_ACTOR, role="coordinator")
    audit.record(
        audit.CREATE,
        "document",
        info_request.id,
        outcome="denied",
        detail=f"upload_link:{refusal}",
    )
    db.session.commit()
    log.info("info_links_closed referral=%s reason=%s n=%s", referral.id, refusal, closed)
    return refusal


def receive_upload(
    info_request_id: int, files: list[UploadedFile], answers: dict[str, str] | None = None
) -> Referral:
    """Store the documents and the answers, spend the link, resume the clock, back to review,
    re-triage.

    ``answers``: item code -> the sender's answer in words, for the link's items that are not
    documents (already validated; every such item answered, no other). The row is locked so
    two parallel posts cannot both spend the link. A link to the family's doctors whose
    authorization ended meanwhile stores nothing and raises LinkClosed.
    """
    answers = dict(answers or {})
    info_request = db.session.scalar(
        sa.select(InfoRequest).where(InfoRequest.id == info_request_id).with_for_update()
    )
    if not is_usable(info_request):
        db.session.rollback()
        raise LinkSpent()
    assert info_request is not None
    if closed_to_doctors(info_request) is not None:
        db.session.rollback()
        raise LinkClosed(close_refused_link(info_request_id) or "closed")
    expected = answer_items(info_request)
    if sorted(answers) != sorted(expected) or not all(
        isinstance(text, str) and text.strip() for text in answers.values()
    ):
        db.session.rollback()
        raise ValueError("the answers do not match the link's questions")
    referral = db.session.get(Referral, info_request.referral_id)
    assert referral is not None
    config = current_app.config
    stored: list[str] = []
    try:
        if files:  # an answer in words only: the documents are not even loaded
            uploads.attach(referral.documents, files, config, stored)
        if answers:
            # A new dict: the JSON column does not track changes inside it.
            entry = {
                "info_request": info_request.id,
                "at": now().isoformat(),
                "audience": info_request.audience,
                "answers": {code: answers[code] for code in expected},
            }
            referral.answers = {
                **referral.answers,
                ANSWERS_KEY: [*(referral.answers.get(ANSWERS_KEY) or []), entry],
            }
        info_request.spent_at = now()
        cancel_link_emails(referral, [info_request.id], "link_used")
        close_open_requests(referral, "answered")
        db.session.add(
            TimelineEvent(
                referral_id=referral.id,
                actor=info_request.audience,
                action="info_received",
                # Codes and counts only: the answers themselves stay with the case's answers.
                detail={
                    "info_request": info_request.id,
                    "documents": len(files),
                    "answered": list(expected) if answers else [],
                },
            )
        )
        db.session.flush()
        resume_clock(referral)
        if referral.status == statuses.NEEDS_INFO:
            # The answer, not a person, moves the case on; the coordinator role is the human
            # role the state machine allows for this move.
            cases.change_status(
                referral, statuses.UNDER_REVIEW, actor="upload_link", role="coordinator"
            )
        retriage(referral, actor=SYSTEM_ACTOR)
        start_clock_if_none(referral, "answer_received")
        _queue_answer_notice(referral, info_request)
        if files:
            audit.record(
                audit.CREATE, "document", info_request.id, detail=f"upload_link:{len(files)}"
            )
        if answers:
            audit.record(
                audit.CREATE, "info_answer", info_request.id, detail=f"upload_link:{len(answers)}"
            )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        uploads.discard(stored, config)
        raise
    return referral


class LinkSpent(Exception):
    """The link was used, has expired or was closed."""


class LinkClosed(LinkSpent):
    """A link to the family's doctors after their authorization was revoked or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def retriage(referral: Referral, *, actor: str) -> None:
    """Run the rules again on the case's current answers and documents (caller commits)."""
    db.session.flush()
    db.session.refresh(referral, ["documents"])
    result = triage(triage_input(referral), program_calendar(), triage_thresholds())
    previous_priority = referral.triage_priority
    referral.triage_category = result.category
    referral.triage_priority = result.priority
    referral.triage_rules_version = result.rules_version
    referral.triage_reasons = [
        {"rule_id": r.rule_id, "code": r.code, "text": r.text} for r in result.reasons
    ]
    referral.missing_items = list(result.missing_items)
    referral.hard_flags = list(result.hard_flags)
    # Decision 4: the review clock counts from the moment the packet is complete, and a new
    # priority brings its own deadline.
    became_complete = referral.review_due_at is None and not result.missing_items
    if referral.clock_paused_at is None and (
        became_complete or (previous_priority != result.priority and referral.review_due_at)
    ):
        days = REVIEW_BUSINESS_DAYS.get(result.priority, 2)
        referral.review_due_at = program_calendar().deadline(now(), days)
    db.session.add(
        TimelineEvent(
            referral_id=referral.id,
            actor=actor,
            action="retriaged",
            detail={
                "priority": result.priority,
                "previous_priority": previous_priority,
                "rules_version": result.rules_version,
                "rule_ids": sorted({r.rule_id for r in result.reasons}),
                "missing_items": list(result.missing_items),
            },
        )
    )


# -- reminders and closing (beat) --------------------------------------------------------


def sweep(at: datetime | None = None) -> dict[str, int]:
    """Send due reminders; close expired requests as closed_no_response. Idempotent."""
    at = at or now()
    config = current_app.config
    interval = timedelta(hours=float(config["INFO_REMINDER_HOURS"]))
    counts = {"reminders": 0, "closed": 0}
    open_ids = db.session.scalars(
        sa.select(InfoRequest.id).where(
            InfoRequest.closed_at.is_(None), InfoRequest.spent_at.is_(None)
        )
    ).all()
    for request_id in open_ids:
        info_request = db.session.scalar(
            sa.select(InfoRequest).where(InfoRequest.id == request_id).with_for_update()
        )
        if info_request is None or info_request.closed_at or info_request.spent_at:
            db.session.rollback()
            continue
        referral = db.session.get(Referral, info_request.referral_id)
        assert referral is not None
        if referral.status != statuses.NEEDS_INFO:
            info_request.closed_at = at
            info_request.close_reason = "case_moved"
            cancel_link_emails(referral, [info_request.id], "case_moved")
        elif info_request.expires_at <= at:
            info_request.closed_at = at
            info_request.close_reason = "no_response"
            cancel_link_emails(referral, [info_request.id], "no_response")
            cases.change_status(
                referral, statuses.CLOSED_NO_RESPONSE, actor=SYSTEM_ACTOR, role="coordinator"
            )
            referral.clock_paused_at = None
            counts["closed"] += 1
        elif info_request.audience != "family" and (refusal := _records_refusal(referral, at)):
            # Decision 16: a reminder is another request to the family's doctors.
            closed = close_links_to_doctors(
                referral, refusal, actor=SYSTEM_ACTOR, role="coordinator", at=at
            )
            log.info("info_links_closed referral=%s reason=%s n=%s", referral.id, refusal, closed)
        elif (
            info_request.reminders_sent < config["INFO_MAX_REMINDERS"]
            and at - (info_request.last_reminder_at or info_request.created_at) >= interval
        ):
            info_request.reminders_sent += 1
            info_request.last_reminder_at = at
            notifications.ensure_notification(
                referral,
                f"{REMINDER_KIND}.{info_request.id}.{info_request.reminders_sent}",
                info_request.recipients,
                language=email_language(referral, info_request.audience),
            )
            db.session.add(
                TimelineEvent(
                    referral_id=referral.id,
                    action="info_reminder_queued",
                    detail={"info_request": info_request.id, "n": info_request.reminders_sent},
                )
            )
            counts["reminders"] += 1
        db.session.commit()
    return counts


# -- email rendering -----------------------------------------------------------------------


def _render_context(notification: Notification, context: dict[str, Any]) -> str:
    """Fill the email context for `info_request.<id>` and `info_reminder.<id>.<n>`."""
    parts = notification.kind.split(".")
    info_request = db.session.get(InfoRequest, int(parts[1]))
    if info_request is None:
        raise ValueError(f"unknown information request in {notification.kind}")
    context["upload_url"] = upload_url(info_request)
    context["expires_at"] = info_request.expires_at
    # Item labels are generic document names, never answers or diagnoses; translated in the
    # email's language when the template renders them.
    context["items"] = [
        lazy_gettext(item_label(code, info_request.audience)) for code in info_request.items
    ]
    context["reminder"] = parts[0] == REMINDER_KIND
    return "info_request"


def _send_refusal(notification: Notification) -> str | None:
    """Checked by the worker just before sending `info_request.<id>` or
    `info_reminder.<id>.<n>`: the link must still open, and a link to the family's doctors
    needs the family's authorization to be neither revoked nor expired (decision 16). Returns
    why the email must not go out (a code), or None."""
    info_request = db.session.get(InfoRequest, int(notification.kind.split(".")[1]))
    if info_request is None:
        return None  # the renderer reports the unknown link
    if info_request.spent_at is not None:
        return "link_used"
    if info_request.closed_at is not None:
        return info_request.close_reason or "link_closed"
    if info_request.expires_at <= now():
        return "link_expired"
    return closed_to_doctors(info_request)


def _render_received(notification: Notification, context: dict[str, Any]) -> str:
    """Fill the staff email for `info_received.<id>`: what kind of answer, never its text."""
    info_request = db.session.get(InfoRequest, int(notification.kind.split(".")[1]))
    if info_request is None:
        raise ValueError(f"unknown information request in {notification.kind}")
    referral = db.session.get(Referral, info_request.referral_id)
    assert referral is not None
    context["sender"] = "the family" if info_request.audience == "family" else "the referrer"
    context["missing_count"] = len(referral.missing_items)
    return RECEIVED_KIND


notifications.KIND_RENDERERS[INFO_KIND] = _render_context
notifications.KIND_RENDERERS[RECEIVED_KIND] = _render_received
notifications.KIND_RENDERERS[REMINDER_KIND] = _render_context
notifications.KIND_SEND_CHECKS[INFO_KIND] = _send_refusal
notifications.KIND_SEND_CHECKS[REMINDER_KIND] = _send_refusal
