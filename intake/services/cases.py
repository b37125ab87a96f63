"""Case workflow: every status change goes through here (state machine, timeline, emails)."""

from __future__ import annotations

from typing import Any

from flask import current_app

from intake.domain import statuses
from intake.extensions import db
from intake.models import Referral, TimelineEvent
from intake.services import notifications


def change_status(
    referral: Referral,
    target: str,
    *,
    actor: str,
    role: str,
    reason_code: str | None = None,
    detail: dict[str, Any] | None = None,
) -> TimelineEvent:
    """Move a case to ``target`` in the caller's transaction; raises statuses.TransitionError.

    Queues the PHI-free status emails of decision 9 in the same transaction.
    """
    statuses.check_transition(referral.status, target, role=role, reason_code=reason_code)
    event = TimelineEvent(
        referral_id=referral.id,
        actor=actor,
        action="status_changed",
        from_status=referral.status,
        to_status=target,
        detail={**(detail or {}), **({"reason_code": reason_code} if reason_code else {})},
    )
    db.session.add(event)
    referral.status = target
    referral.status_reason = reason_code
    db.session.flush()
    for audience, recipients in status_email_recipients(referral, target).items():
        notifications.ensure_notification(
            referral,
            f"status.{event.id}.{audience}",
            recipients,
            language=email_language(referral, audience),
        )
    return event


def email_language(referral: Referral, audience: str) -> str:
    """The language of a status email: the family's choice on the form for the family; the
    language a clinician used the site in for the referrer (a family's request names the
    oncologist as the case's clinician, who gets the default language)."""
    languages = current_app.config["LANGUAGES"]
    default = str(current_app.config["BABEL_DEFAULT_LOCALE"])
    if audience == "family":
        # preferred_language: family forms; patient_language: the physician form's
        # "family's preferred language".
        for key in ("preferred_language", "patient_language"):
            if referral.answers.get(key) in languages:
                return str(referral.answers[key])
    elif referral.kind != "physician_referral":
        return default
    return referral.preferred_language if referral.preferred_language in languages else default


def status_email_recipients(referral: Referral, target: str) -> dict[str, list[str]]:
    """Decision 9: referrers on every family-visible change and on decisions; families only
    on family-visible changes and only with their consent to unencrypted email (decision 8)."""
    audiences: dict[str, list[str]] = {}
    if target in statuses.FAMILY_NOTIFY or target in statuses.REFERRER_ONLY_NOTIFY:
        if referral.referrer_email:
            audiences["referrer"] = [referral.referrer_email]
    if target in statuses.FAMILY_NOTIFY:
        family_email = referral.answers.get("family_email")
        if family_email and referral.answers.get("family_email_consent"):
            audiences["family"] = [family_email]
    return audiences
