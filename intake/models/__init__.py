"""Typed SQLAlchemy 2 models."""

from intake.models.base import Base, UTCDateTime, utcnow
from intake.models.family import Authorization, FamilyMessage
from intake.models.pipeline import (
    Alert,
    DeadLetter,
    Heartbeat,
    Notification,
    OutboxEvent,
    RoutingRule,
)
from intake.models.referral import Document, Referral, ReferralCount, TimelineEvent
from intake.models.reliability import TaskFailure
from intake.models.staff import (
    AuditEvent,
    BreakGlassGrant,
    CaseNote,
    Escalation,
    InfoRequest,
    PasswordReset,
    StaffSession,
    User,
)
from intake.models.status_lookup import StatusLookupGuard

__all__ = [
    "Alert",
    "AuditEvent",
    "Authorization",
    "BreakGlassGrant",
    "CaseNote",
    "Escalation",
    "InfoRequest",
    "PasswordReset",
    "StaffSession",
    "User",
    "Base",
    "DeadLetter",
    "Document",
    "FamilyMessage",
    "Heartbeat",
    "Notification",
    "OutboxEvent",
    "Referral",
    "ReferralCount",
    "RoutingRule",
    "StatusLookupGuard",
    "TaskFailure",
    "TimelineEvent",
    "UTCDateTime",
    "utcnow",
]
