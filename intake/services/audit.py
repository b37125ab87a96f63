"""The audit trail (modelled on Medplum's AuditEvent): who, what, which record, when, from
where and the outcome. Rows carry ids and codes only, never PHI values; the table is
append-only (database triggers), and purge() is the one way to remove old rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app, g, has_request_context, request
from flask_login import current_user

from intake.domain import retention
from intake.domain.reference import normalize_reference
from intake.extensions import db
from intake.models import AuditEvent, User, utcnow
from intake.services.db import take_sqlite_write_lock

CREATE, READ, UPDATE, DELETE, EXPORT = "C", "R", "U", "D", "E"
LOGIN, LOGOUT, LOGIN_FAILURE, DENIED = "login", "logout", "login_failure", "denied"
# Emergency access: the grant, and every use of it (H-2).
BREAK_GLASS = "break_glass"
ACTION_LABELS = {
    CREATE: "create",
    READ: "read",
    UPDATE: "update",
    DELETE: "delete",
    EXPORT: "export",
    LOGIN: "sign-in",
    LOGOUT: "sign-out",
    LOGIN_FAILURE: "sign-in failure",
    DENIED: "access denied",
    BREAK_GLASS: "emergency access",
}


def request_id() -> str | None:
    if not has_request_context():
        return None
    if "request_id" not in g:
        supplied = request.headers.get("X-Request-ID", "")
        g.request_id = supplied if _looks_like_id(supplied) else uuid.uuid4().hex
    return str(g.request_id)


def _looks_like_id(value: str) -> bool:
    return 8 <= len(value) <= 36 and all(c.isalnum() or c == "-" for c in value)


def record(
    action: str,
    resource_type: str,
    resource_id: Any = None,
    *,
    outcome: str = "success",
    detail: str | None = None,
    user: User | None = None,
    commit: bool = False,
) -> AuditEvent:
    """Add one audit row to the current transaction (commit=True for reads and failures)."""
    if user is None and has_request_context() and current_user and current_user.is_authenticated:
        user = current_user._get_current_object()  # type: ignore[attr-defined]
    event = AuditEvent(
        at=utcnow(),
        user_id=user.id if user is not None else None,
        user_email=user.email if user is not None else None,
        role=user.role if user is not None else None,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id)[:64] if resource_id is not None else None,
        outcome=outcome,
        detail=detail[:64] if detail else None,
        ip=request.remote_addr if has_request_context() else None,
        request_id=request_id(),
    )
    db.session.add(event)
    if commit:
        db.session.commit()
    return event


def purge(before: datetime, actor: User) -> int:
    """Remove rows older than ``before``, writing an audit row for the purge itself.

    ValueError when ``before`` is later than the retention period allows (H-11: at least 6
    years, ``AUDIT_RETENTION_YEARS`` when longer). The database refuses such a purge too.
    """
    if before.tzinfo is None:
        raise ValueError("the purge cutoff must carry a time zone (UTC)")
    retention.check_purge_cutoff(
        before.astimezone(UTC), utcnow(), current_app.config.get("AUDIT_RETENTION_YEARS")
    )
    if db.engine.dialect.name == "postgresql":
        removed = db.session.scalar(
            sa.text("SELECT audit_purge(:cutoff, :actor_id, :actor_email)"),
            {"cutoff": before, "actor_id": actor.id, "actor_email": actor.email},
        )
        db.session.commit()
        return int(removed or 0)
    # SQLite: the trigger is dropped and re-created inside the same transaction, which the write
    # lock opens first (pysqlite would run the DROP outside any transaction). The retention
    # floor trigger (0009_audit_floor) stays in place and refuses rows younger than 6 years.
    take_sqlite_write_lock(db.session)
    connection = db.session.connection()
    sql = connection.execute(
        sa.text(
            "SELECT sql FROM sqlite_master WHERE type='trigger' AND name='audit_event_no_delete'"
        )
    ).scalar_one()
    connection.execute(sa.text("DROP TRIGGER audit_event_no_delete"))
    result = connection.execute(sa.delete(AuditEvent).where(AuditEvent.at < before))
    connection.execute(sa.text(sql))
    removed = int(getattr(result, "rowcount", 0) or 0)
    record(DELETE, "audit_event", None, detail=f"purged:{removed}", user=actor)
    db.session.commit()
    return removed


def query(
    *, user_id: int | None = None, resource_id: str | None = None, limit: int = 200
) -> list[AuditEvent]:
    statement = sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if user_id is not None:
        statement = statement.where(AuditEvent.user_id == user_id)
    if resource_id:
        wanted = resource_id.strip()
        try:
            reference = normalize_reference(wanted)
        except ValueError:
            reference = None
        if reference:
            # A case reference as people write it (dashes, spaces, lower case): its own rows,
            # and its documents' downloads, which carry the reference as their detail.
            statement = statement.where(
                sa.or_(AuditEvent.resource_id == reference, AuditEvent.detail == reference)
            )
        else:
            statement = statement.where(AuditEvent.resource_id == wanted)
    return list(db.session.scalars(statement))


def access_report(user_id: int) -> list[dict[str, Any]]:
    """Per-user access report: what records the user touched, how often, first and last."""
    rows = db.session.execute(
        sa.select(
            AuditEvent.resource_type,
            AuditEvent.resource_id,
            AuditEvent.action,
            AuditEvent.outcome,
            sa.func.count().label("times"),
            sa.func.min(AuditEvent.at).label("first"),
            sa.func.max(AuditEvent.at).label("last"),
        )
        .where(AuditEvent.user_id == user_id)
        .group_by(
            AuditEvent.resource_type,
            AuditEvent.resource_id,
            AuditEvent.action,
            AuditEvent.outcome,
        )
        .order_by(sa.func.max(AuditEvent.at).desc())
    ).all()
    return [row._asdict() for row in rows]
