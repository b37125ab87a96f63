"""States of an existing patient's family message (decision 11) and the authorization's
revocation rules (decision 16). Pure: no Flask, no database.

A message is not a referral: it never goes through eligibility triage or the referral state
machine of :mod:`intake.domain.statuses`. Its own states are::

    new -> in_progress -> answered -> closed

A coordinator may answer straight from ``new`` (a quick phone call), reopen an ``answered``
message when the family writes back, and close one that needs no answer (a duplicate, a
message meant for someone else). ``closed`` is final: a new question is a new message.

Only the care team (``coordinator`` and ``admin``) moves messages; a reviewing physician
records decisions on referrals, not replies to families.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType

from intake.domain.text import N_

__all__ = [
    "ANSWERED",
    "CARE_TEAM_ROLES",
    "CLOSED",
    "IN_PROGRESS",
    "MESSAGE_STATES",
    "NEW",
    "REVOCATION_METHODS",
    "STATE_LABELS",
    "TERMINAL",
    "TRANSITIONS",
    "MessageTransitionError",
    "RevocationError",
    "allowed_next",
    "check_revocation",
    "check_transition",
    "notify_family",
]

NEW = "new"
IN_PROGRESS = "in_progress"
ANSWERED = "answered"
CLOSED = "closed"

MESSAGE_STATES: tuple[str, ...] = (NEW, IN_PROGRESS, ANSWERED, CLOSED)

# The one transition table for messages. Order within each tuple is the order offered in the UI.
TRANSITIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        NEW: (IN_PROGRESS, ANSWERED, CLOSED),
        IN_PROGRESS: (ANSWERED, CLOSED),
        ANSWERED: (CLOSED, IN_PROGRESS),
        CLOSED: (),
    }
)

TERMINAL: frozenset[str] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)

CARE_TEAM_ROLES: frozenset[str] = frozenset({"coordinator", "admin"})

STATE_LABELS: dict[str, str] = {
    NEW: N_("New"),
    IN_PROGRESS: N_("In progress"),
    ANSWERED: N_("Answered"),
    CLOSED: N_("Closed"),
}

# How the family told the program they revoke the authorization. 164.508(b)(5) asks for
# writing (a letter or an email); a verbal revocation is recorded and honoured at once (no
# further requests go out), and the coordinator asks the family to confirm it in writing.
REVOCATION_METHODS: dict[str, str] = {
    "written": N_("In writing (letter or signed form)"),
    "email": N_("By email"),
    "verbal": N_("Verbally (phone or in person): ask the family to confirm in writing"),
}


class MessageTransitionError(ValueError):
    """A refused message state change. ``code`` is stable; ``message`` is plain English."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RevocationError(ValueError):
    """A refused revocation record. ``code`` is stable; ``message`` is plain English."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def allowed_next(state: str, role: str) -> tuple[str, ...]:
    """The states ``role`` may move a message in ``state`` to (none for other roles)."""
    if state not in TRANSITIONS:
        raise MessageTransitionError("unknown_state", f"'{state}' is not a message state.")
    return TRANSITIONS[state] if role in CARE_TEAM_ROLES else ()


def check_transition(current: str, target: str, *, role: str) -> None:
    """Raise :class:`MessageTransitionError` unless ``role`` may move ``current`` to ``target``."""
    for state in (current, target):
        if state not in TRANSITIONS:
            raise MessageTransitionError("unknown_state", f"'{state}' is not a message state.")
    if role not in CARE_TEAM_ROLES:
        raise MessageTransitionError(
            "role_not_allowed", f"The {role} role cannot change the state of a family's message."
        )
    if current == target:
        raise MessageTransitionError("same_state", f"The message is already '{current}'.")
    if current in TERMINAL:
        raise MessageTransitionError(
            "terminal", f"A closed message is final and cannot move to '{target}'."
        )
    if target not in TRANSITIONS[current]:
        options = ", ".join(f"'{s}'" for s in TRANSITIONS[current])
        raise MessageTransitionError(
            "not_allowed",
            f"A message in '{current}' cannot move to '{target}'; it can move to {options}.",
        )


def notify_family(target: str) -> bool:
    """Whether the family gets the PHI-free "your care team has answered" notice.

    Only on ``answered``; the notification's (case, kind) key makes it once per message even
    when a reopened message is answered again.
    """
    return target == ANSWERED


def check_revocation(
    *,
    role: str,
    already_revoked: bool,
    method: str,
    received_on: date,
    signed_on: date,
    today: date,
) -> None:
    """Raise :class:`RevocationError` unless this revocation may be recorded.

    A revocation is final (a new authorization needs a new signature), is recorded by the care
    team, and was received between the signing and today.
    """
    if role not in CARE_TEAM_ROLES:
        raise RevocationError(
            "role_not_allowed", f"The {role} role cannot record a revocation; a coordinator does."
        )
    if already_revoked:
        raise RevocationError(
            "already_revoked",
            "The authorization is already revoked; a revocation is final. Records need a new "
            "signed authorization.",
        )
    if method not in REVOCATION_METHODS:
        raise RevocationError("unknown_method", f"'{method}' is not a known way of revoking.")
    if received_on > today:
        raise RevocationError("future_date", "The date received cannot be in the future.")
    if received_on < signed_on:
        raise RevocationError(
            "before_signing", "The date received cannot be before the authorization was signed."
        )
