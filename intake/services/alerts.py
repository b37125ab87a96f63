"""Alerts for people on call: a row (admin banner), a CRITICAL log line; never only an email."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from intake.extensions import db
from intake.models import Alert

log = logging.getLogger("intake.alerts")


def raise_alert(
    *, code: str, dedupe_key: str, message: str, referral_id: int | None = None
) -> bool:
    """Record an alert once per dedupe key, in the caller's transaction."""
    if db.session.scalar(sa.select(Alert.id).where(Alert.dedupe_key == dedupe_key)) is not None:
        return False
    db.session.add(
        Alert(code=code, dedupe_key=dedupe_key, message=message, referral_id=referral_id)
    )
    log.critical("alert code=%s key=%s %s", code, dedupe_key, message)
    return True
