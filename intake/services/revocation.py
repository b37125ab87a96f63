"""Recording that a family revoked the records-release authorization (decision 16).

A coordinator records when the revocation reached the program and how. From then on no
request for records that relies on the authorization goes out (see
``authorization.check_records_request``); upload links already sent to the family's doctors are
closed; documents already received stay with the case. A revocation is final.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from intake.domain import messages
from intake.extensions import db
from intake.models import Authorization, Referral, TimelineEvent, User
from intake.services import audit, info_requests
from intake.services.auth import now
from intake.services.authorization import program_date, program_today

REVOKED_CLOSE_REASON = "auth_revoked"


def revoke(referral: Referral, actor: User, *, method: str, received_on: date) -> Authorization:
    """Record the revocation in one transaction; raises messages.RevocationError."""
    signed = db.session.scalar(
        sa.select(Authorization).where(Authorization.referral_id == referral.id).with_for_update()
    )
    if signed is None:
        raise messages.RevocationError(
            "no_authorization", "This case has no records-release authorization to revoke."
        )
    messages.check_revocation(
        role=actor.role,
        already_revoked=signed.revoked_at is not None,
        method=method,
        received_on=received_on,
        signed_on=program_date(signed.signed_at),
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
    # Keyed by the case reference, like the refused attempts, so one search finds both.
    audit.record(
        audit.UPDATE,
        "records_authorization",
        referral.reference,
        detail=f"revoked:{method}",
        user=actor,
    )
    db.session.commit()
    return signed


def _close_links_to_doctors(referral: Referral, actor: User) -> int:
    """Close open upload links sent to the family's doctors: uploading through them would be a
    disclosure under the revoked authorization."""
    return info_requests.close_links_to_doctors(
        referral, REVOKED_CLOSE_REASON, actor=actor.email, role=actor.role
    )
