"""Recording that a family revoked the records-release authorization (decision 16).

A coordinator records when the revocation reached the program and how. From then on no
request for records that relies on the authorization goes out (see
``authorization.check_records_request``); upload links already sent to the family's doctors are
closed; documents already received stay with the case. A revocation is final.

The family revokes permission to obtain their child's records, so it covers every case of the
same child (linked, or with the same normalized name and date of birth) whose authorization was
signed before the day the revocation reached us; one signed that day or later is a new
permission and stands.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from intake.domain import messages
from intake.extensions import db
from intake.models import Authorization, Referral, TimelineEvent, User
from intake.services import audit, info_requests, queue
from intake.services.auth import now
from intake.services.authorization import program_date, program_today

REVOKED_CLOSE_REASON = "auth_revoked"


def revoke(referral: Referral, actor: User, *, method: str, received_on: date) -> list[str]:
    """Record the revocation in one transaction, on this case and on the same child's other
    cases it covers (see above); returns those cases' references. Raises
    messages.RevocationError."""
    # Every authorization of the child's cases locked at once, in id order: two coordinators
    # recording the same revocation from two linked cases cannot deadlock.
    group = {
        a.referral_id: a
        for a in db.session.scalars(
            sa.select(Authorization)
            .join(Referral, Referral.id == Authorization.referral_id)
            .where(queue.same_child_clause(referral))
            .order_by(Authorization.id)
            .with_for_update(of=Authorization)
        )
    }
    signed = group.pop(referral.id, None)
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
    covered = []
    for other in group.values():
        # Signed the day the revocation arrived: which came first is unknown, and the family
        # signed it knowingly; it stands (the coordinator can record a revocation on it too).
        if other.revoked_at is None and program_date(other.signed_at) < received_on:
            case = db.session.get(Referral, other.referral_id)
            assert case is not None
            _record(case, other, actor, method=method, received_on=received_on, via=referral)
            covered.append(case.reference)
    _record(referral, signed, actor, method=method, received_on=received_on, also=covered)
    db.session.commit()
    return covered


def _record(
    referral: Referral,
    signed: Authorization,
    actor: User,
    *,
    method: str,
    received_on: date,
    via: Referral | None = None,
    also: list[str] | None = None,
) -> None:
    signed.revoked_at = now()
    signed.revoked_by = actor.id
    signed.revocation_method = method
    signed.revocation_received_on = received_on
    detail: dict[str, object] = {
        "method": method,
        "received_on": received_on.isoformat(),
        "links_closed": _close_links_to_doctors(referral, actor),
    }
    if via is not None:
        detail["via_case"] = via.reference
    if also:
        detail["also_cases"] = also
    db.session.add(
        TimelineEvent(
            referral_id=referral.id,
            actor=actor.email,
            action="authorization_revoked",
            detail=detail,
        )
    )
    # Keyed by the case reference, like the refused attempts, so one search finds both.
    audit.record(
        audit.UPDATE,
        "records_authorization",
        referral.reference,
        detail=f"revoked:{method}" if via is None else f"revoked:{method} via:{via.reference}",
        user=actor,
    )


def _close_links_to_doctors(referral: Referral, actor: User) -> int:
    """Close open upload links sent to the family's doctors: uploading through them would be a
    disclosure under the revoked authorization."""
    return info_requests.close_links_to_doctors(
        referral, REVOKED_CLOSE_REASON, actor=actor.email, role=actor.role
    )
