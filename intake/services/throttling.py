"""What happens when a signed-in user hits a download or export limit (security.md 11.1.4,
8.1.4): an audit row for every refused request, and one admin alert per user and hour."""

from __future__ import annotations

import sqlalchemy as sa

from intake.extensions import db
from intake.models import User
from intake.services import alerts, audit
from intake.services.auth import now

ALERT_CODE = "staff_rate_limited"
RATE_LIMITED = "rate_limited"


def record_refusal(
    user: User, kind: str, resource_type: str, resource_id: str | None, limit: str
) -> bool:
    """Audit one refused request and raise the hour's alert for this user (True if raised)."""
    hour = now().strftime("%Y-%m-%dT%H")
    key = f"{ALERT_CODE}:{user.id}:{hour}"
    message = (
        f"Staff account {user.id} hit the {kind} limit ({limit}); further {kind}s are refused "
        "until it resets."
    )
    audit.record(
        audit.DENIED,
        resource_type,
        resource_id,
        outcome="denied",
        detail=f"{RATE_LIMITED}:{kind}",
        user=user,
    )
    raised = alerts.raise_alert(code=ALERT_CODE, dedupe_key=key, message=message)
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        # Another refused request of the same user raised the hour's alert meanwhile.
        db.session.rollback()
        audit.record(
            audit.DENIED,
            resource_type,
            resource_id,
            outcome="denied",
            detail=f"{RATE_LIMITED}:{kind}",
            user=user,
            commit=True,
        )
        return False
    return raised
