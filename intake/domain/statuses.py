"""The referral case status state machine (domain.md §4, decisions 5 and 9).

``TRANSITIONS`` is the only place where moves between statuses are defined; everything else
(``allowed_next``, ``check_transition``, the UI's buttons, notification rules) derives from it.

Who may move a case:

* ``system`` (the triage worker) may only do ``received`` → ``under_review`` (decision 5).
* ``declined`` and ``redirected`` are physician decisions: only a ``reviewer`` may record them,
  and always with a coded reason from ``DECISION_REASONS``.
* ``coordinator``, ``reviewer`` and ``admin`` may make every other allowed move.

Terminal statuses (``withdrawn``, ``closed_no_response``, ``closed``) have no way out.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "ALL_STATUSES",
    "CONFIRM_REQUIRED",
    "DECISION_REASONS",
    "FAMILY_NOTIFY",
    "FHIR_TASK_STATUS",
    "REASON_ALLOWED",
    "REASON_REQUIRED",
    "REFERRER_ONLY_NOTIFY",
    "REVIEWER_ONLY",
    "REVIEW_CLOCK",
    "ROLES",
    "STATUS_LABELS",
    "TERMINAL",
    "TRANSITIONS",
    "TransitionError",
    "allowed_next",
    "check_transition",
    "confirmation_text",
    "fhir_task_status",
]

RECEIVED = "received"
NEEDS_INFO = "needs_info"
UNDER_REVIEW = "under_review"
ACCEPTED = "accepted"
CONSULT_SCHEDULED = "consult_scheduled"
DECLINED = "declined"
REDIRECTED = "redirected"
WITHDRAWN = "withdrawn"
CLOSED_NO_RESPONSE = "closed_no_response"
CLOSED = "closed"

ALL_STATUSES: tuple[str, ...] = (
    RECEIVED,
    NEEDS_INFO,
    UNDER_REVIEW,
    ACCEPTED,
    CONSULT_SCHEDULED,
    DECLINED,
    REDIRECTED,
    WITHDRAWN,
    CLOSED_NO_RESPONSE,
    CLOSED,
)

ROLES: tuple[str, ...] = ("system", "coordinator", "reviewer", "admin")
_HUMAN_ROLES = frozenset({"coordinator", "reviewer", "admin"})

# The one transition table. Order within each tuple is the order offered in the UI.
TRANSITIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        RECEIVED: (UNDER_REVIEW, NEEDS_INFO, WITHDRAWN),
        UNDER_REVIEW: (NEEDS_INFO, ACCEPTED, DECLINED, REDIRECTED, WITHDRAWN),
        NEEDS_INFO: (UNDER_REVIEW, WITHDRAWN, CLOSED_NO_RESPONSE),
        ACCEPTED: (CONSULT_SCHEDULED, WITHDRAWN, CLOSED),
        CONSULT_SCHEDULED: (CLOSED, WITHDRAWN),
        DECLINED: (CLOSED,),
        REDIRECTED: (CLOSED,),
        WITHDRAWN: (),
        CLOSED_NO_RESPONSE: (),
        CLOSED: (),
    }
)

TERMINAL: frozenset[str] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
# Statuses in which the review clock runs (decision 4): before the decision, and not while
# waiting on the referrer or family. Once accepted, declined or redirected it is spent.
REVIEW_CLOCK: frozenset[str] = frozenset({RECEIVED, UNDER_REVIEW})

# Moves only the system actor may make, and the only ones it may make.
_SYSTEM_MOVES = frozenset({(RECEIVED, UNDER_REVIEW)})
# Targets only a reviewer may record: the program physician makes every accept or decline
# (domain.md: triage only suggests). Declines and redirects also need a coded reason.
REVIEWER_ONLY: frozenset[str] = frozenset({ACCEPTED, DECLINED, REDIRECTED})
REASON_REQUIRED: frozenset[str] = frozenset({DECLINED, REDIRECTED})
# The moves the case page records a reason with: the two decisions that need one, and a
# withdrawal (e.g. ``family_declined``). A reason next to "Accepted" would read as a refusal.
REASON_ALLOWED: frozenset[str] = REASON_REQUIRED | {WITHDRAWN}
# Final moves and physician decisions: the case page asks for a ticked confirmation first
# (one misclick once withdrew a case for good).
CONFIRM_REQUIRED: frozenset[str] = TERMINAL | REVIEWER_ONLY

DECISION_REASONS: dict[str, str] = {
    "not_eligible_age": "Not eligible: age",
    "not_eligible_disease": "Not eligible: disease or disease status",
    "better_served_elsewhere": "Better served by another program",
    "trial_elsewhere": "A clinical trial elsewhere is a better fit",
    "family_declined": "The family declined",
    "medical_contraindication": "Medical contraindication",
    "other": "Other (see note)",
}

STATUS_LABELS: dict[str, str] = {
    RECEIVED: "Received",
    NEEDS_INFO: "Waiting for more information",
    UNDER_REVIEW: "Being reviewed",
    ACCEPTED: "Accepted",
    CONSULT_SCHEDULED: "Consultation scheduled",
    DECLINED: "Not a candidate",
    REDIRECTED: "Referred to another program",
    WITHDRAWN: "Withdrawn",
    CLOSED_NO_RESPONSE: "Closed: no response",
    CLOSED: "Closed",
}

# FHIR R4 Task.status and Task.businessStatus per domain.md §5 ("Our statuses mapped").
# declined/redirected carry the coded reason in Task.statusReason; the businessStatus tells
# them apart. closed_no_response is not in the table: the loop was cancelled, not completed.
FHIR_TASK_STATUS: dict[str, tuple[str, str | None]] = {
    RECEIVED: ("requested", None),
    UNDER_REVIEW: ("received", None),
    NEEDS_INFO: ("in-progress", "awaiting-information"),
    ACCEPTED: ("accepted", None),
    CONSULT_SCHEDULED: ("in-progress", "appointment-booked"),
    DECLINED: ("rejected", "declined"),
    REDIRECTED: ("rejected", "redirected"),
    WITHDRAWN: ("cancelled", None),
    CLOSED_NO_RESPONSE: ("cancelled", "closed-no-response"),
    CLOSED: ("completed", None),
}

# Decision 9: families and referrers are emailed on these...
FAMILY_NOTIFY: frozenset[str] = frozenset(
    {RECEIVED, NEEDS_INFO, ACCEPTED, CONSULT_SCHEDULED, CLOSED}
)
# ...and these go to the referrer only, after the reviewer signs.
REFERRER_ONLY_NOTIFY: frozenset[str] = frozenset({DECLINED, REDIRECTED})


def confirmation_text(target: str) -> str:
    """What moving a case to ``target`` does besides changing its status, in plain English:
    who is emailed (decision 9) and whether it can be undone. Derived from the tables above."""
    _require_status(target, "target")
    if target in FAMILY_NOTIFY:
        emailed = "the referrer and the family (if they agreed to email) are emailed"
    elif target in REFERRER_ONLY_NOTIFY:
        emailed = "the referrer is emailed"
    else:
        emailed = "nobody is emailed"
    if target in TERMINAL:
        return f"{emailed}; this is final and cannot be undone."
    labels = [STATUS_LABELS[s] for s in TRANSITIONS[target]]
    after = " or ".join(filter(None, (", ".join(labels[:-1]), labels[-1])))
    return f"{emailed}; afterwards the case can only move to {after}."


class TransitionError(ValueError):
    """A refused status change. ``code`` is stable; ``message`` is plain English."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _require_status(status: str, what: str) -> None:
    if status not in TRANSITIONS:
        raise TransitionError("unknown_status", f"'{status}' is not a known {what} status.")


def _require_role(role: str) -> None:
    if role not in ROLES:
        raise TransitionError("unknown_role", f"'{role}' is not a known role.")


def _role_may(current: str, target: str, role: str) -> bool:
    if role == "system":
        return (current, target) in _SYSTEM_MOVES
    if target in REVIEWER_ONLY:
        return role == "reviewer"
    return role in _HUMAN_ROLES


def allowed_next(status: str, role: str) -> tuple[str, ...]:
    """The statuses ``role`` may move a case in ``status`` to, in table order.

    Raises :class:`TransitionError` for an unknown status or role.
    """
    _require_status(status, "current")
    _require_role(role)
    return tuple(t for t in TRANSITIONS[status] if _role_may(status, t, role))


def check_transition(
    current: str, target: str, *, role: str, reason_code: str | None = None
) -> None:
    """Raise :class:`TransitionError` unless ``role`` may move ``current`` to ``target``.

    ``reason_code`` is required (and must be a key of ``DECISION_REASONS``) for ``declined``
    and ``redirected``; for other moves it is optional but, when given, must also be a known
    code (e.g. ``withdrawn`` with ``family_declined``).
    """
    _require_status(current, "current")
    _require_status(target, "target")
    _require_role(role)
    if current == target:
        raise TransitionError("same_status", f"The case is already in '{current}'.")
    if current in TERMINAL:
        raise TransitionError(
            "terminal",
            f"A case in '{current}' is final and cannot move to '{target}'.",
        )
    if target not in TRANSITIONS[current]:
        options = ", ".join(f"'{s}'" for s in TRANSITIONS[current])
        raise TransitionError(
            "not_allowed",
            f"A case in '{current}' cannot move to '{target}'; it can move to {options}.",
        )
    if not _role_may(current, target, role):
        if role == "system":
            detail = "the system may only move a case from 'received' to 'under_review'"
        else:
            detail = f"only a reviewer may record '{target}'"
        raise TransitionError(
            "role_not_allowed",
            f"The {role} role cannot move a case from '{current}' to '{target}': {detail}.",
        )
    if reason_code is None:
        if target in REASON_REQUIRED:
            raise TransitionError(
                "reason_required",
                f"Moving a case to '{target}' needs a reason code.",
            )
        return
    if reason_code not in DECISION_REASONS:
        raise TransitionError("unknown_reason", f"'{reason_code}' is not a known reason code.")


def fhir_task_status(status: str, *, previous: str | None = None) -> tuple[str, str | None]:
    """FHIR Task (status, businessStatus) for ``status``.

    A case closed after ``declined``/``redirected`` keeps the ``rejected`` mapping (FHIR's
    ``rejected`` is terminal, and the loop was never completed); pass the status it came from
    as ``previous`` to get that.
    """
    _require_status(status, "current")
    if status == CLOSED and previous in (DECLINED, REDIRECTED):
        return FHIR_TASK_STATUS[previous]
    return FHIR_TASK_STATUS[status]
