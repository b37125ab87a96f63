"""Emergency ("break-glass") access, H-2: a staff member states why they need a case outside
their scope and gets it for a short time. Asking raises an alert (decision 7: a row the admins
see in their banner and a CRITICAL log line; no email); every use is its own audit row; the
grant simply expires."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from intake.extensions import db
from intake.models import BreakGlassGrant, User
from intake.services import alerts, audit
from intake.services.auth import now

GRANT_MINUTES = 60
MIN_REASON_LENGTH = 20


def request_access(user: User, reference: str, reason: str) -> BreakGlassGrant:
    """Grant ``user`` access to the (normalized) ``reference`` for GRANT_MINUTES. Commits.

    Whether the case exists is not checked here, so the answer reveals nothing about it.
    """
    at = now()
    grant = BreakGlassGrant(
        user_id=user.id,
        reference=reference,
        reason=reason.strip()[:500],
        created_at=at,
        expires_at=at + timedelta(minutes=GRANT_MINUTES),
    )
    db.session.add(grant)
    db.session.flush()
    audit.record(audit.BREAK_GLASS, "referral", reference, detail=f"granted:{grant.id}", user=user)
    # The alert names the person and the grant, not the reason (free text may carry PHI).
    alerts.raise_alert(
        code="break_glass",
        dedupe_key=f"break_glass:{grant.id}",
        message=(
            f"Emergency access granted to {user.email} ({user.role}) for {GRANT_MINUTES} "
            f"minutes, grant {grant.id}; review the stated reason in the audit trail."
        ),
    )
    db.session.commit()
    return grant


def active_grant(user: User, reference: str) -> BreakGlassGrant | None:
    return db.session.scalar(
        sa.select(BreakGlassGrant)
        .where(
            BreakGlassGrant.user_id == user.id,
            BreakGlassGrant.reference == reference,
            BreakGlassGrant.expires_at > now(),
        )
        .order_by(BreakGlassGrant.expires_at.desc())
        .limit(1)
    )
