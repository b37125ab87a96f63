"""Typed SQLAlchemy 2 models."""

from intake.models.base import Base, UTCDateTime, utcnow
from intake.models.pipeline import (
    Alert,
    DeadLetter,
    Heartbeat,
    Notification,
    OutboxEvent,
    RoutingRule,
)
from intake.models.referral import Document, Referral, TimelineEvent

__all__ = [
    "Alert",
    "Base",
    "DeadLetter",
    "Document",
    "Heartbeat",
    "Notification",
    "OutboxEvent",
    "Referral",
    "RoutingRule",
    "TimelineEvent",
    "UTCDateTime",
    "utcnow",
]
