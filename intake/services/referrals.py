"""Referral use cases: submit (one transaction with its outbox rows), triage, reconcile."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from intake.domain import linking, scan, statuses
from intake.domain.calendar import BusinessCalendar, parse_holidays
from intake.domain.inputs import normalize_person_key
from intake.domain.reference import new_reference
from intake.domain.triage import Thresholds, TriageInput, triage
from intake.extensions import db
from intake.models import DeadLetter, Notification, Referral, TimelineEvent, utcnow
from intake.services import alerts, authorization, notifications, outbox, uploads
from intake.services.db import take_sqlite_write_lock

log = logging.getLogger("intake.referrals")

TRIAGE_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class UploadedFile:
    slot: str
    display_name: str
    mime_type: str
    data: bytes
    # The upload scan's verdict: "clean", "error" (stored quarantined, rescanned later) or
    # "active" (a PDF with scripts or automatic actions: stored, never served).
    scan_status: str = "clean"


@dataclass
class Submission:
    submission_id: str
    answers: dict[str, Any]
    files: list[UploadedFile] = field(default_factory=list)
    language: str = "en"

    def payload_hash(self) -> str:
        digest = hashlib.sha256(json.dumps(self.answers, sort_keys=True, default=str).encode())
        for upload in sorted(self.files, key=lambda f: (f.slot, f.display_name)):
            digest.update(upload.slot.encode() + hashlib.sha256(upload.data).digest())
        return digest.hexdigest()


class SubmissionConflict(Exception):
    """The submission id was used before with a different payload (Stripe semantics: 409)."""


def find_by_submission(submission_id: str) -> Referral | None:
    return db.session.scalar(sa.select(Referral).where(Referral.submission_id == submission_id))


def submit_referral(submission: Submission) -> tuple[Referral, bool]:
    """Store a physician referral with its triage task and the referrer's acknowledgement.

    Returns (referral, created). A repeated submission id returns the original referral.
    """
    answers = submission.answers

    def build() -> Referral:
        return Referral(
            kind="physician_referral",
            patient_given_name=answers["patient_given_name"],
            patient_family_name=answers["patient_family_name"],
            patient_dob=date.fromisoformat(answers["patient_dob"]),
            disease=answers["disease"],
            referrer_name=answers["referrer_name"],
            referrer_email=answers["referrer_email"],
            referrer_npi=answers.get("referrer_npi") or None,
        )

    def follow_ups(referral: Referral) -> None:
        outbox.add_event(db.session, "referrals.triage", referral.id)
        acknowledge(referral, notifications.REFERRER_ACK, referral.referrer_email)

    return store_case(submission, build, follow_ups)


def acknowledge(referral: Referral, kind: str, email: str) -> None:
    """Queue an acknowledgement of a case created in this transaction, unless this address
    had too many today (decision 8)."""
    # The count is about earlier cases: the new case's pending rows need not be flushed for
    # it, and are written with the rest at the commit.
    with db.session.no_autoflush:
        sent_today = notifications.acknowledgements_sent_today(email)
    if sent_today < current_app.config["ACK_DAILY_CAP"]:
        notifications.ensure_notification(
            referral, kind, [email], language=referral.preferred_language, new_case=True
        )
    else:
        log.warning("acknowledgement_capped referral=%s", referral.id)


def store_case(
    submission: Submission,
    build: Callable[[], Referral],
    follow_ups: Callable[[Referral], None],
) -> tuple[Referral, bool]:
    """Store any kind of case, its documents and its follow-up rows in one transaction.

    ``build`` returns the new case with its kind-specific columns; this function adds the
    reference, idempotency key, identity key, answers and documents, links the case to the
    same child's open case (decision 12) and calls ``follow_ups`` (outbox events, emails,
    extra rows) once the case has an id. Returns (case, created); a repeated submission id
    returns the original case, or raises SubmissionConflict if the payload differs.
    """
    payload_hash = submission.payload_hash()
    existing = find_by_submission(submission.submission_id)
    if existing is not None:
        return _same_or_conflict(existing, payload_hash), False

    config = current_app.config
    referral = build()
    referral.reference = new_reference()
    referral.submission_id = submission.submission_id
    referral.payload_hash = payload_hash
    referral.status = "received"
    referral.person_key = normalize_person_key(
        referral.patient_given_name, referral.patient_family_name, referral.patient_dob
    )
    referral.preferred_language = submission.language
    referral.answers = submission.answers
    stored: list[str] = []
    try:
        uploads.attach(referral.documents, submission.files, config, stored)
        # Appended before the flush: on the flushed case the collection would be lazy-loaded
        # first, one more query per submission (bench/README.md, Profiles).
        referral.events.append(
            TimelineEvent(action="created", to_status="received", detail={"source": "web_form"})
        )
        # Taken last: the per-child lock is held until commit, so keep the files out of it.
        if referral.linked_case_id is None:
            _lock_child(referral.person_key)
            referral.linked_case_id = same_child_open_case(referral.person_key)
        db.session.add(referral)
        db.session.flush()
        if referral.linked_case_id is not None:
            _record_link(referral, referral.linked_case_id)
        follow_ups(referral)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        uploads.discard(stored, config)
        existing = find_by_submission(submission.submission_id)
        if existing is None:
            raise
        return _same_or_conflict(existing, payload_hash), False
    except BaseException:
        db.session.rollback()
        uploads.discard(stored, config)
        raise
    log.info(
        "case_created id=%s kind=%s documents=%s", referral.id, referral.kind, len(submission.files)
    )
    return referral, True


def _lock_child(person_key: str) -> None:
    """Serialize new cases for one child until this transaction ends.

    Without it, a physician and a parent submitting for the same child at the same moment
    would each find no open case and create two unlinked ones. PostgreSQL holds an advisory
    lock per child to commit or rollback. SQLite has one write lock for the whole file, and
    its driver only begins a transaction at the first write, so a write that changes nothing
    takes that lock before the same-child lookup (the lookup then sees every committed case).
    """
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        db.session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 12))"),
            {"key": person_key},
        )
    else:
        take_sqlite_write_lock(db.session)


def same_child_open_case(person_key: str) -> int | None:
    """The case a new case for this child points at (decision 12), or None: the group root
    of the child's earliest open case, so links stay one hop."""
    rows = db.session.execute(
        sa.select(Referral.id, Referral.status, Referral.created_at, Referral.linked_case_id).where(
            Referral.person_key == person_key,
            # A message to the care team is not a request a new case should join.
            Referral.kind != "existing_patient_message",
        )
    ).all()
    chosen = linking.case_to_link([linking.CaseSummary(r.id, r.status, r.created_at) for r in rows])
    if chosen is None:
        return None
    roots = {r.id: r.linked_case_id or r.id for r in rows}
    return roots[chosen]


def _record_link(referral: Referral, linked_case_id: int) -> None:
    """Both timelines say so; ids only, never the other case's details."""
    db.session.add(
        TimelineEvent(
            referral_id=referral.id, action="linked_to_case", detail={"case_id": linked_case_id}
        )
    )
    db.session.add(
        TimelineEvent(
            referral_id=linked_case_id, action="case_linked", detail={"case_id": referral.id}
        )
    )


def _same_or_conflict(existing: Referral, payload_hash: str) -> Referral:
    if existing.payload_hash != payload_hash:
        raise SubmissionConflict(existing.submission_id)
    return existing


def program_calendar() -> BusinessCalendar:
    config = current_app.config
    return BusinessCalendar(
        tz=config["PROGRAM_TZ"],
        day_start=time.fromisoformat(config["BUSINESS_DAY_START"]),
        day_end=time.fromisoformat(config["BUSINESS_DAY_END"]),
        holidays=parse_holidays(config["HOLIDAYS"]),
    )


def triage_thresholds() -> Thresholds:
    """Defaults from the rules module, overridden by TRIAGE_* settings."""
    defaults = Thresholds()
    overrides = {
        name: type(getattr(defaults, name))(value)
        for name, value in current_app.config["TRIAGE_OVERRIDES"].items()
        if hasattr(defaults, name)
    }
    return dataclasses.replace(defaults, **overrides)


def _opt_date(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def _opt_int(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None


def _opt_float(value: Any) -> float | None:
    return float(value) if value not in (None, "") else None


def _answer(value: Any) -> Any:
    return value if value in ("yes", "no", "unknown") else None


def triage_input(referral: Referral) -> TriageInput:
    """Map stored answers onto the pure triage module's input."""
    a = referral.answers
    # A PDF quarantined for active content cannot be read: its slot counts as still missing.
    slots = {
        document.slot for document in referral.documents if document.scan_status != scan.ACTIVE
    }
    genetics = set(a.get("genetics") or [])
    return TriageInput(
        kind=referral.kind,  # type: ignore[arg-type]
        received_at=referral.created_at,
        date_of_birth=referral.patient_dob,
        disease=referral.disease or None,
        cd19_status=a.get("cd19_status") or None,
        cd22_status=a.get("cd22_status") or None,
        primary_refractory=_answer(a.get("primary_refractory")),
        marrow_relapse_count=_opt_int(a.get("marrow_relapse_count")),
        relapse_sites=frozenset(a.get("relapse_sites") or []),
        had_hsct=_answer(a.get("had_hsct")),
        hsct_date=_opt_date(a.get("hsct_date")),
        relapse_date=_opt_date(a.get("relapse_date")),
        ph_positive="ph_positive" in genetics,
        tki_lines_failed=_opt_int(a.get("tki_lines_failed")),
        prior_car_t=_answer(a.get("prior_car_t")),
        prior_gene_therapy=_answer(a.get("prior_gene_therapy")),
        blinatumomab_nonresponse=a.get("blinatumomab_response") == "no_response",
        marrow_blasts_pct=_opt_float(a.get("marrow_blasts_pct")),
        rising_peripheral_blasts=bool(a.get("rising_peripheral_blasts")),
        mrd_result=a.get("mrd_result") or None,
        cns_status=a.get("cns_status") or None,
        new_cns_symptoms=bool(a.get("new_cns_symptoms")),
        performance_score=_opt_int(a.get("performance_score")),
        uncontrolled_infection=_answer(a.get("uncontrolled_infection")),
        hiv_hbv_hcv=_answer(a.get("hiv_hbv_hcv")),
        gvhd_grade=_opt_int(a.get("gvhd_grade")),
        systemic_immunosuppression=_answer(a.get("systemic_immunosuppression")),
        dli_date=_opt_date(a.get("dli_date")),
        pregnancy=_answer(a.get("pregnancy")),
        inpatient=bool(a.get("inpatient")),
        icu=bool(a.get("icu")),
        down_syndrome=bool(a.get("down_syndrome")),
        referrer_marked_urgent=bool(a.get("urgent")),
        urgency_reason=a.get("urgency_reason") or "",
        has_flow_report="flow_cytometry" in slots,
        has_oncologist_contact=has_oncologist_contact(referral),
    )


def has_oncologist_contact(referral: Referral) -> bool:
    """R2: a family request names the treating oncologist and a way to reach them."""
    if referral.kind != "second_opinion":
        return True
    answers = referral.answers
    reachable = answers.get("oncologist_phone") or answers.get("oncologist_email")
    return bool(answers.get("oncologist_name") and reachable)


def run_triage(referral_id: int) -> str:
    """Triage a received referral and queue the coordinators' email. Idempotent."""
    referral = _lock_referral(referral_id)
    if referral is None:
        return "missing"
    if referral.triaged_at is not None:
        db.session.rollback()
        return "already_triaged"
    referral.triage_attempts += 1
    if referral.triage_attempts > TRIAGE_MAX_ATTEMPTS:
        _dead_letter_triage(referral)
        return "dead_lettered"
    db.session.commit()

    referral = _lock_referral(referral_id)
    assert referral is not None
    if referral.triaged_at is not None:
        db.session.rollback()
        return "already_triaged"
    result = triage(triage_input(referral), program_calendar(), triage_thresholds())
    referral.triage_category = result.category
    referral.triage_priority = result.priority
    referral.triage_rules_version = result.rules_version
    referral.triage_reasons = [
        {"rule_id": r.rule_id, "code": r.code, "text": r.text} for r in result.reasons
    ]
    referral.missing_items = list(result.missing_items)
    referral.hard_flags = list(result.hard_flags)
    referral.ack_due_at = result.ack_due_at
    referral.review_due_at = result.review_due_at
    referral.triaged_at = utcnow()
    db.session.add(
        TimelineEvent(
            referral_id=referral.id,
            action="triaged",
            detail={
                "priority": result.priority,
                "rules_version": result.rules_version,
                "rule_ids": sorted({r.rule_id for r in result.reasons}),
                # The metrics read from here when the packet was first complete.
                "missing_items": list(result.missing_items),
            },
        )
    )
    if referral.status == "received":
        statuses.check_transition("received", "under_review", role="system")
        db.session.add(
            TimelineEvent(
                referral_id=referral.id,
                action="status_changed",
                from_status="received",
                to_status="under_review",
                detail={"reason": "triaged"},
            )
        )
        referral.status = "under_review"
    business_hours = program_calendar().is_business_time(utcnow())
    notifications.ensure_notification(
        referral,
        notifications.new_case_kind(referral),
        notifications.coordinator_recipients(referral, business_hours=business_hours),
    )
    db.session.commit()
    return "triaged"


def _lock_referral(referral_id: int) -> Referral | None:
    return db.session.scalar(
        sa.select(Referral).where(Referral.id == referral_id).with_for_update()
    )


def _dead_letter_triage(referral: Referral) -> None:
    db.session.add(
        DeadLetter(task_name="referrals.triage", args=[referral.id], error="too many attempts")
    )
    alerts.raise_alert(
        code="triage_failed",
        dedupe_key=f"triage_failed:{referral.id}",
        referral_id=referral.id,
        message=f"Case id {referral.id} could not be triaged after {TRIAGE_MAX_ATTEMPTS} tries.",
    )
    db.session.commit()


def reconcile(now: datetime | None = None) -> dict[str, int]:
    """Decision 6: look at business state, not outbox flags, and re-queue what is stuck."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=current_app.config["RECONCILE_AFTER_SECONDS"])
    stuck_referrals = db.session.scalars(
        sa.select(Referral.id).where(
            Referral.triaged_at.is_(None),
            Referral.updated_at < cutoff,
            Referral.triage_attempts <= TRIAGE_MAX_ATTEMPTS,
        )
    ).all()
    for referral_id in stuck_referrals:
        # Touching updated_at spaces out re-queues of the same case.
        db.session.execute(
            sa.update(Referral).where(Referral.id == referral_id).values(updated_at=now)
        )
        outbox.add_event(db.session, "referrals.triage", referral_id)
    stuck_notifications = db.session.scalars(
        sa.select(Notification).where(
            Notification.updated_at < cutoff,
            sa.or_(
                Notification.status == "pending",
                sa.and_(Notification.status == "retry", Notification.next_attempt_at <= now),
                sa.and_(Notification.status == "sending", Notification.claimed_until < now),
            ),
        )
    ).all()
    for notification in stuck_notifications:
        notification.updated_at = now
        outbox.add_event(db.session, "notify.send", notification.id)
    pdfs = authorization.requeue_missing_pdfs(now, cutoff)
    db.session.commit()
    if stuck_referrals or stuck_notifications or pdfs:
        log.info(
            "reconcile requeued referrals=%s notifications=%s authorization_pdfs=%s",
            len(stuck_referrals),
            len(stuck_notifications),
            pdfs,
        )
    return {
        "referrals": len(stuck_referrals),
        "notifications": len(stuck_notifications),
        "authorization_pdfs": pdfs,
    }
