"""Recording that a family revoked the records-release authorization (decision 16).

A coordinator records when the revocation reached the program and how. From then on no
request for records that relies on the authorization goes out (see
``authorization.check_records_request``); upload links already sent to the family's doctors are
closed; documents already received stay with the case. A revocation is final.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from intake.domain import messages, statuses
from intake.extensions import db
from intake.models import Authorization, InfoRequest, Referral, TimelineEvent, User
from intake.services import audit, cases, info_requests
from intake.services.auth import now

REVOKED_CLOSE_REASON = "auth_revoked"


def program_today() -> date:
    return now().astimezone(ZoneInfo(current_app.config["PROGRAM_TZ"])).date()


def revoke(referral: Referral, actor: User, *, method: str, received_on: date) -> Authorization:
    """Record the revocation in one transaction; raises messages.RevocationError."""
    signed = db.session.scalar(
        sa.select(Authorization).where(Authorization.referral_id == referral.id).with_for_update()
    )
    if signed is None:
        raise messages.RevocationError(
            "no_authorization", "This case has no records-release authorization to revoke."
        )
    zone = ZoneInfo(current_app.config["PROGRAM_TZ"])
    messages.check_revocation(
        role=actor.role,
        already_revoked=signed.revoked_at is not None,
        method=method,
        received_on=received_on,
        signed_on=signed.signed_at.astimezone(zone).date(),
        today=program_today(),
    )
    signed.revoked_at = now()
    signed.revoked_by = actor.id
    signed.revocation_method = method
    signed.revocation_received_on = received_on
    closed = _close_links_to_doctors(referral, actor)
    db.session.add(
        TimelineEvent(
            referral_id=referral.id,
            actor=actor.email,
            action="authorization_revoked",
            detail={
                "method": method,
                "received_on": received_on.isoformat(),
                "links_closed": closed,
            },
        )
    )
    audit.record(
        audit.UPDATE,
        "records_authorization",
        signed.id,
        detail=f"revoked:{method}:{referral.reference}",
        user=actor,
    )
    db.session.commit()
    return signed


def _close_links_to_doctors(referral: Referral, actor: User) -> int:
    """Close open upload links sent to the family's doctors: uploading through them would be a
    disclosure under the revoked authorization. A case left waiting on nothing goes back to
    review with its clock running again."""
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
        link.closed_at = now()
        link.close_reason = REVOKED_CLOSE_REASON
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
        info_requests.resume_clock(referral)
        cases.change_status(
            referral,
            statuses.UNDER_REVIEW,
            actor=actor.email,
            role=actor.role,
            detail={"reason": REVOKED_CLOSE_REASON},
        )
    return len(open_links)
