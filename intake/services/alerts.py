"""Alerts (decision 7): a row, shown to admins in a banner on every staff page and on the Alerts
page until one of them acknowledges it, and a CRITICAL log line; never only an email.

Alert messages are composed by the code that raises them from ids, codes, case references and
staff emails; free text typed by families, referrers or staff (a break-glass reason, say) never
goes in, so the banner and the Alerts page show no PHI.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from intake.extensions import db
from intake.models import Alert, User, utcnow
from intake.services import audit

log = logging.getLogger("intake.alerts")

# Most severe first in the banner; every alert raised today is "critical" (the column default).
_SEVERITY_RANK = sa.case((Alert.severity == "critical", 0), else_=1)
BANNER_TEXT_MAX = 160


def raise_alert(
    *, code: str, dedupe_key: str, message: str, referral_id: int | None = None
) -> bool:
    """Record an alert once per dedupe key, in the caller's transaction.

    A dedupe key names one incident (this notification failed, this grant was made, this
    account was locked today, this account was rate-limited this hour): raising it again is the
    same incident, so nothing new is recorded, also when an admin has acknowledged it already
    (acknowledging means "seen and being dealt with"; it does not re-open on a repeat). A
    problem that should be told again once acknowledged puts its time window in the key (the
    lockout's day, the rate limit's hour), and a new window is a new alert in the banner.
    """
    if db.session.scalar(sa.select(Alert.id).where(Alert.dedupe_key == dedupe_key)) is not None:
        return False
    db.session.add(
        Alert(code=code, dedupe_key=dedupe_key, message=message, referral_id=referral_id)
    )
    log.critical("alert code=%s key=%s %s", code, dedupe_key, message)
    return True


@dataclass(frozen=True)
class Banner:
    count: int
    code: str
    text: str


def banner() -> Banner | None:
    """How many alerts are unacknowledged and the most severe (then newest) one's text, in one
    query on the partial index of unacknowledged alerts; None when there are none."""
    row = db.session.execute(
        sa.select(Alert.code, Alert.message, sa.func.count().over())
        .where(Alert.acknowledged_at.is_(None))
        .order_by(_SEVERITY_RANK, Alert.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    code, message, count = row
    text = message if len(message) <= BANNER_TEXT_MAX else message[: BANNER_TEXT_MAX - 1] + "…"
    return Banner(count=int(count), code=code, text=text)


def acknowledge(alert_ids: Iterable[int], user: User) -> int:
    """Mark these alerts acknowledged by ``user`` now, with one audit row each. Commits.

    Alerts acknowledged already keep their first acknowledgement (the conditional UPDATE makes
    two admins clicking at once record it once). Returns how many were acknowledged now.
    """
    ids = sorted(set(alert_ids))
    if not ids:
        return 0
    done = list(
        db.session.scalars(
            sa.update(Alert)
            .where(Alert.id.in_(ids), Alert.acknowledged_at.is_(None))
            .values(acknowledged_at=utcnow(), acknowledged_by_id=user.id)
            .returning(Alert.id)
        )
    )
    for alert_id in sorted(done):
        audit.record(audit.UPDATE, "alert", alert_id, detail="acknowledge", user=user)
    db.session.commit()
    return len(done)
