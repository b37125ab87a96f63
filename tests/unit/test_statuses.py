"""The case status state machine (domain.md §4)."""

from __future__ import annotations

import itertools

import pytest

from intake.domain.statuses import (
    ALL_STATUSES,
    DECISION_REASONS,
    FAMILY_NOTIFY,
    FHIR_TASK_STATUS,
    REFERRER_ONLY_NOTIFY,
    STATUS_LABELS,
    TERMINAL,
    TRANSITIONS,
    TransitionError,
    allowed_next,
    check_transition,
    fhir_task_status,
)

EXPECTED = {
    ("received", "under_review"),
    ("received", "needs_info"),
    ("received", "withdrawn"),
    ("under_review", "needs_info"),
    ("under_review", "accepted"),
    ("under_review", "declined"),
    ("under_review", "redirected"),
    ("under_review", "withdrawn"),
    ("needs_info", "under_review"),
    ("needs_info", "withdrawn"),
    ("needs_info", "closed_no_response"),
    ("accepted", "consult_scheduled"),
    ("accepted", "withdrawn"),
    ("accepted", "closed"),
    ("consult_scheduled", "closed"),
    ("consult_scheduled", "withdrawn"),
    ("declined", "closed"),
    ("redirected", "closed"),
}
DECISIONS = {"declined", "redirected"}
# Only the program physician accepts or declines (domain.md: triage only suggests).
PHYSICIAN_ONLY = DECISIONS | {"accepted"}


def actor_for(target: str) -> tuple[str, str | None]:
    if target in DECISIONS:
        return "reviewer", "not_eligible_age"
    return ("reviewer" if target in PHYSICIAN_ONLY else "coordinator"), None


def test_table_is_exactly_the_documented_one() -> None:
    table = {(a, b) for a, nexts in TRANSITIONS.items() for b in nexts}
    assert table == EXPECTED
    assert set(TRANSITIONS) == set(ALL_STATUSES)
    assert len(ALL_STATUSES) == 10


@pytest.mark.parametrize(("current", "target"), sorted(EXPECTED))
def test_every_allowed_transition_works(current: str, target: str) -> None:
    role, reason = actor_for(target)
    check_transition(current, target, role=role, reason_code=reason)
    assert target in allowed_next(current, role)


REFUSED = sorted(set(itertools.product(ALL_STATUSES, ALL_STATUSES)) - EXPECTED)


@pytest.mark.parametrize(("current", "target"), REFUSED)
@pytest.mark.parametrize("role", ["coordinator", "reviewer", "admin", "system"])
def test_every_other_pair_is_refused_with_a_clear_message(
    current: str, target: str, role: str
) -> None:
    with pytest.raises(TransitionError) as caught:
        check_transition(current, target, role=role, reason_code="other")
    error = caught.value
    assert error.code in {"same_status", "terminal", "not_allowed"}
    assert f"'{current}'" in error.message
    assert error.message.endswith(".")
    assert str(error) == error.message
    assert target not in allowed_next(current, role)


def test_message_examples() -> None:
    with pytest.raises(TransitionError) as caught:
        check_transition("closed", "under_review", role="admin")
    assert caught.value.code == "terminal"
    assert caught.value.message == (
        "A case in 'closed' is final and cannot move to 'under_review'."
    )
    with pytest.raises(TransitionError) as caught:
        check_transition("received", "accepted", role="reviewer")
    assert caught.value.code == "not_allowed"
    assert caught.value.message == (
        "A case in 'received' cannot move to 'accepted'; it can move to "
        "'under_review', 'needs_info', 'withdrawn'."
    )


def test_terminal_statuses_are_final() -> None:
    assert frozenset({"withdrawn", "closed_no_response", "closed"}) == TERMINAL
    for status in TERMINAL:
        for role in ("system", "coordinator", "reviewer", "admin"):
            assert allowed_next(status, role) == ()
        for target in ALL_STATUSES:
            with pytest.raises(TransitionError):
                check_transition(status, target, role="admin")


@pytest.mark.parametrize("target", sorted(PHYSICIAN_ONLY))
@pytest.mark.parametrize("role", ["coordinator", "admin", "system"])
def test_only_a_reviewer_records_accept_decline_or_redirect(target: str, role: str) -> None:
    with pytest.raises(TransitionError) as caught:
        check_transition("under_review", target, role=role, reason_code="trial_elsewhere")
    assert caught.value.code == "role_not_allowed"
    assert "reviewer" in caught.value.message or "system" in caught.value.message
    assert target not in allowed_next("under_review", role)


@pytest.mark.parametrize("target", sorted(DECISIONS))
def test_decline_and_redirect_need_a_known_reason(target: str) -> None:
    with pytest.raises(TransitionError) as caught:
        check_transition("under_review", target, role="reviewer")
    assert caught.value.code == "reason_required"
    with pytest.raises(TransitionError) as caught:
        check_transition("under_review", target, role="reviewer", reason_code="too_busy")
    assert caught.value.code == "unknown_reason"
    for code in DECISION_REASONS:
        check_transition("under_review", target, role="reviewer", reason_code=code)


def test_reason_codes() -> None:
    for code in (
        "not_eligible_age",
        "not_eligible_disease",
        "better_served_elsewhere",
        "trial_elsewhere",
        "family_declined",
        "medical_contraindication",
        "other",
    ):
        assert DECISION_REASONS[code]


def test_optional_reason_on_other_moves_must_be_known() -> None:
    check_transition("accepted", "withdrawn", role="coordinator", reason_code="family_declined")
    with pytest.raises(TransitionError) as caught:
        check_transition("accepted", "withdrawn", role="coordinator", reason_code="bored")
    assert caught.value.code == "unknown_reason"


def test_system_only_triages() -> None:
    assert allowed_next("received", "system") == ("under_review",)
    check_transition("received", "under_review", role="system")
    for current, target in EXPECTED - {("received", "under_review")}:
        with pytest.raises(TransitionError) as caught:
            check_transition(current, target, role="system", reason_code="other")
        assert caught.value.code == "role_not_allowed"
        assert target not in allowed_next(current, "system")
    for status in ALL_STATUSES:
        if status != "received":
            assert allowed_next(status, "system") == ()


def test_human_roles_see_the_table_minus_decisions() -> None:
    assert allowed_next("under_review", "reviewer") == (
        "needs_info",
        "accepted",
        "declined",
        "redirected",
        "withdrawn",
    )
    for role in ("coordinator", "admin"):
        assert allowed_next("under_review", role) == ("needs_info", "withdrawn")
        assert allowed_next("declined", role) == ("closed",)


@pytest.mark.parametrize(
    ("current", "target", "role", "code"),
    [
        ("nope", "closed", "admin", "unknown_status"),
        ("received", "nope", "admin", "unknown_status"),
        ("received", "under_review", "janitor", "unknown_role"),
        ("under_review", "under_review", "admin", "same_status"),
    ],
)
def test_unknown_values(current: str, target: str, role: str, code: str) -> None:
    with pytest.raises(TransitionError) as caught:
        check_transition(current, target, role=role)
    assert caught.value.code == code
    assert isinstance(caught.value, ValueError)


def test_allowed_next_unknown_values() -> None:
    with pytest.raises(TransitionError):
        allowed_next("nope", "admin")
    with pytest.raises(TransitionError):
        allowed_next("received", "janitor")


def test_labels_and_fhir_cover_every_status() -> None:
    assert set(STATUS_LABELS) == set(ALL_STATUSES)
    assert all(label and "_" not in label for label in STATUS_LABELS.values())
    assert set(FHIR_TASK_STATUS) == set(ALL_STATUSES)
    task_codes = {
        "draft", "requested", "received", "accepted", "rejected", "ready", "cancelled",
        "in-progress", "on-hold", "failed", "completed", "entered-in-error",
    }  # fmt: skip
    assert {status for status, _ in FHIR_TASK_STATUS.values()} <= task_codes


def test_fhir_mapping_follows_domain_table() -> None:
    assert FHIR_TASK_STATUS["received"] == ("requested", None)
    assert FHIR_TASK_STATUS["under_review"] == ("received", None)
    assert FHIR_TASK_STATUS["needs_info"] == ("in-progress", "awaiting-information")
    assert FHIR_TASK_STATUS["accepted"][0] == "accepted"
    assert FHIR_TASK_STATUS["consult_scheduled"] == ("in-progress", "appointment-booked")
    assert FHIR_TASK_STATUS["declined"][0] == "rejected"
    assert FHIR_TASK_STATUS["redirected"][0] == "rejected"
    assert FHIR_TASK_STATUS["withdrawn"][0] == "cancelled"
    assert FHIR_TASK_STATUS["closed"] == ("completed", None)
    assert fhir_task_status("closed", previous="declined") == FHIR_TASK_STATUS["declined"]
    assert fhir_task_status("closed", previous="consult_scheduled") == ("completed", None)


def test_notification_sets_follow_decision_9() -> None:
    assert (
        frozenset({"received", "needs_info", "accepted", "consult_scheduled", "closed"})
        == FAMILY_NOTIFY
    )
    assert frozenset({"declined", "redirected"}) == REFERRER_ONLY_NOTIFY
    assert not FAMILY_NOTIFY & REFERRER_ONLY_NOTIFY
