"""Family use cases: a second-opinion request and a message to the care team.

Both go through :func:`intake.services.referrals.store_case` (one transaction with the case,
its documents, duplicate-child link, outbox events and emails), like a physician referral.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from intake.domain.reference import normalize_reference
from intake.extensions import db
from intake.models import FamilyMessage, Referral
from intake.services import authorization, notifications, outbox
from intake.services.referrals import Submission, acknowledge, store_case


def consented_family_email(answers: dict[str, Any]) -> str | None:
    """Decision 8: families are emailed only with their consent to unencrypted email."""
    email = answers.get("family_email")
    return str(email) if email and answers.get("family_email_consent") else None


def submit_second_opinion(
    submission: Submission,
    *,
    disease: str,
    signer_name: str,
    signer_ip: str | None,
    authorization_language: str,
) -> tuple[Referral, bool]:
    """Store the request, its signed authorization (in the language it was shown in), the
    triage and PDF tasks and the family's acknowledgement. Returns (case, created)."""
    answers = submission.answers

    def build() -> Referral:
        return Referral(
            kind="second_opinion",
            patient_given_name=answers["patient_given_name"],
            patient_family_name=answers["patient_family_name"],
            patient_dob=date.fromisoformat(answers["patient_dob"]),
            disease=disease,
            # The program works through the treating oncologist (domain.md §3): decisions and
            # requests for records go to them as the case's clinician, when the family names one.
            referrer_name=answers.get("oncologist_name") or "",
            referrer_email=answers.get("oncologist_email") or "",
            family_email=answers.get("family_email") or None,
        )

    def follow_ups(referral: Referral) -> None:
        signed = authorization.record_signature(
            referral,
            signer_name=signer_name,
            signer_relationship=answers["requester_relationship"],
            signer_ip=signer_ip,
            language=authorization_language,
        )
        db.session.flush()
        outbox.add_event(db.session, "referrals.triage", referral.id)
        outbox.add_event(db.session, authorization.PDF_TASK, signed.id)
        email = consented_family_email(answers)
        if email:
            acknowledge(referral, notifications.FAMILY_ACK, email)

    return store_case(submission, build, follow_ups)


def submit_message(submission: Submission) -> tuple[Referral, bool]:
    """Store a family's message for the care team (rule R0: routed, never triaged for
    eligibility) and queue their acknowledgement. Returns (case, created)."""
    answers = submission.answers
    dob = date.fromisoformat(answers["patient_dob"])
    matched = _case_by_reference(answers.get("case_reference") or "", dob)

    def build() -> Referral:
        return Referral(
            kind="existing_patient_message",
            patient_given_name=answers["patient_given_name"],
            patient_family_name=answers["patient_family_name"],
            patient_dob=dob,
            disease="",
            referrer_name="",
            referrer_email="",
            family_email=answers.get("family_email") or None,
            linked_case_id=matched,
        )

    def follow_ups(referral: Referral) -> None:
        if matched is not None:
            method = "reference"
        elif referral.linked_case_id is not None:
            method = "same_child"
        else:
            method = "unmatched"
        db.session.add(
            FamilyMessage(
                referral_id=referral.id,
                topic=answers["topic"],
                match_method=method,
                matched_case_id=referral.linked_case_id,
            )
        )
        outbox.add_event(db.session, "referrals.triage", referral.id)
        email = consented_family_email(answers)
        if email:
            acknowledge(referral, notifications.FAMILY_MESSAGE_ACK, email)

    return store_case(submission, build, follow_ups)


def _case_by_reference(text: str, dob: date) -> int | None:
    """The family's case when reference and date of birth both match (decision 11)."""
    reference = normalize_reference(text) if text else None
    if reference is None:
        return None
    return db.session.scalar(
        sa.select(Referral.id).where(Referral.reference == reference, Referral.patient_dob == dob)
    )
