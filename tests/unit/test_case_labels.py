"""Labels the coordinator's case page shows instead of codes, and the confirmation texts of
final moves (pure domain tables)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from intake.domain import statuses
from intake.domain.triage import HARD_FLAG_LABELS, triage
from tests.unit.test_triage import BASE, CAL, R6_CODES


def test_every_hard_flag_triage_can_raise_has_a_label() -> None:
    everything = replace(
        BASE,
        cns_status="cns3",
        uncontrolled_infection="yes",
        had_hsct="yes",
        hsct_date=date(2025, 1, 1),
        gvhd_grade=3,
        systemic_immunosuppression="yes",
        dli_date=date(2026, 11, 1),
        hiv_hbv_hcv="yes",
        pregnancy="yes",
        performance_score=30,
    )
    raised = set(triage(everything, CAL).hard_flags)
    assert raised == R6_CODES
    assert set(HARD_FLAG_LABELS) == raised
    for code, label in HARD_FLAG_LABELS.items():
        assert label and "_" not in label and label[0].isupper(), code


def test_final_moves_and_decisions_need_confirmation() -> None:
    assert statuses.CONFIRM_REQUIRED == {
        "accepted",
        "declined",
        "redirected",
        "withdrawn",
        "closed",
        "closed_no_response",
    }
    assert statuses.TERMINAL | statuses.REVIEWER_ONLY == statuses.CONFIRM_REQUIRED
    assert statuses.REASON_ALLOWED == {"declined", "redirected", "withdrawn"}


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("withdrawn", "nobody is emailed; this is final and cannot be undone."),
        ("closed_no_response", "nobody is emailed; this is final and cannot be undone."),
        (
            "closed",
            "the referrer and the family (if they agreed to email) are emailed; this is final "
            "and cannot be undone.",
        ),
        (
            "accepted",
            "the referrer and the family (if they agreed to email) are emailed; afterwards the "
            "case can only move to Consultation scheduled, Withdrawn or Closed.",
        ),
        ("declined", "the referrer is emailed; afterwards the case can only move to Closed."),
        ("redirected", "the referrer is emailed; afterwards the case can only move to Closed."),
    ],
)
def test_confirmation_text_says_who_is_emailed_and_what_is_final(target: str, says: str) -> None:
    assert statuses.confirmation_text(target) == says


def test_confirmation_text_refuses_an_unknown_status() -> None:
    with pytest.raises(statuses.TransitionError):
        statuses.confirmation_text("deleted")
