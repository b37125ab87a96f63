"""The delivery pipeline's own state: outbox, notifications, dead letters, alerts, heartbeats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from intake.models.base import Base, utcnow


class OutboxEvent(Base):
    """A task to publish, committed in the same transaction as the change that needs it."""

    __tablename__ = "outbox_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_name: Mapped[str] = mapped_column(sa.String(64))
    # IDs only, never PHI: the broker message is readable by whoever can read the broker.
    args: Mapped[list[Any]] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.String(200))

    __table_args__ = (sa.Index("ix_outbox_event_pending", "published_at", "available_at"),)


class Notification(Base):
    """One email per (case, kind): the unique key makes a redelivered task send nothing twice."""

    __tablename__ = "notification"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    referral_id: Mapped[int] = mapped_column(sa.ForeignKey("referral.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(80))
    recipients: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    language: Mapped[str] = mapped_column(sa.String(8), default="en")
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    message_id: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    claimed_until: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(200))

    __table_args__ = (
        sa.UniqueConstraint("referral_id", "kind", name="uq_notification_referral_kind"),
        sa.Index("ix_notification_status", "status"),
    )


class DeadLetter(Base):
    __tablename__ = "dead_letter"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_name: Mapped[str] = mapped_column(sa.String(64))
    args: Mapped[list[Any]] = mapped_column(sa.JSON, default=list)
    error: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alert(Base):
    """Decision 7: alerts are rows (plus a CRITICAL log line), never only an email."""

    __tablename__ = "alert"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    severity: Mapped[str] = mapped_column(sa.String(16), default="critical")
    code: Mapped[str] = mapped_column(sa.String(64))
    dedupe_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    referral_id: Mapped[int | None] = mapped_column(sa.ForeignKey("referral.id"))
    message: Mapped[str] = mapped_column(sa.String(300))
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"))

    # The admin banner reads only unacknowledged alerts (migration 0010_alert_ack).
    __table_args__ = (
        sa.Index(
            "ix_alert_unacknowledged",
            "id",
            postgresql_where=sa.text("acknowledged_at IS NULL"),
            sqlite_where=sa.text("acknowledged_at IS NULL"),
        ),
    )


class Heartbeat(Base):
    __tablename__ = "heartbeat"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class RoutingRule(Base):
    """Decision 2: who is told about what, per case kind and priority; editable by admins."""

    __tablename__ = "routing_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    priority: Mapped[str] = mapped_column(sa.String(2))
    role: Mapped[str] = mapped_column(sa.String(16))  # coordinator | lead | oncall
    email: Mapped[str] = mapped_column(sa.String(254))
    active: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (
        sa.UniqueConstraint("kind", "priority", "role", "email", name="uq_routing_rule_entry"),
    )
