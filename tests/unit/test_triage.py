"""Triage rules R0-R8 and priorities P1-P3: a rule table plus gaps, due times and invariants."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from intake.domain.calendar import BusinessCalendar
from intake.domain.triage import (
    CATEGORIES,
    CATEGORY_LABELS,
    MISSING_ITEM_LABELS,
    PRIORITY_LABELS,
    RULES_VERSION,
    Answer,
    Kind,
    Thresholds,
    TriageInput,
    TriageResult,
    add_months,
    age_in_years,
    missing_items,
    triage,
    whole_months_between,
)

NY = ZoneInfo("America/New_York")
CAL = BusinessCalendar(holidays=frozenset({date(2026, 11, 26), date(2026, 11, 27)}))
RECEIVED = datetime(2026, 11, 18, 10, 0, tzinfo=NY)  # Wednesday, business hours

# A complete physician referral that R4 calls likely eligible (second marrow relapse).
BASE = TriageInput(
    kind="physician_referral",
    received_at=RECEIVED,
    date_of_birth=date(2016, 5, 1),
    disease="b_all",
    cd19_status="positive",
    cd22_status="positive",
    primary_refractory="no",
    marrow_relapse_count=2,
    relapse_sites=frozenset({"marrow"}),
    had_hsct="no",
    relapse_date=date(2026, 10, 1),
    prior_car_t="no",
    prior_gene_therapy="no",
    marrow_blasts_pct=20.0,
    mrd_result="positive",
    cns_status="cns1",
    performance_score=80,
    uncontrolled_infection="no",
    hiv_hbv_hcv="no",
    systemic_immunosuppression="no",
    pregnancy="no",
    has_flow_report=True,
)
# First marrow relapse after an allo-HSCT 16 months earlier: R4, not early.
POST_HSCT = replace(
    BASE, marrow_relapse_count=1, had_hsct="yes", hsct_date=date(2025, 6, 1), gvhd_grade=0
)
NO_RELAPSE: dict[str, Any] = {
    "marrow_relapse_count": 0,
    "relapse_sites": frozenset(),
    "relapse_date": None,
}
NOT_LEUKEMIA: dict[str, Any] = {
    "cd19_status": None,
    "cd22_status": None,
    "primary_refractory": None,
    "marrow_relapse_count": None,
    "relapse_sites": frozenset(),
    "had_hsct": None,
    "relapse_date": None,
    "marrow_blasts_pct": None,
    "mrd_result": None,
    "cns_status": None,
}

COMMERCIAL = "likely_eligible_commercial"
TRIAL = "possible_trial"
REDIRECT = "likely_ineligible_redirect"
AGE = "likely_ineligible_age"
NEEDS_INFO = "needs_info"
R4_BASE = "second_or_later_relapse"
R6_CODES = {
    "cns3",
    "uncontrolled_infection",
    "gvhd_grade_2_4",
    "systemic_immunosuppression",
    "recent_dli",
    "hiv_hbv_hcv",
    "pregnancy",
    "low_performance_score",
}


def case(
    case_id: str,
    category: str,
    priority: str | None,
    rules: set[str],
    codes: set[str],
    base: TriageInput = BASE,
    **changes: Any,
) -> Any:
    return pytest.param(replace(base, **changes), category, priority, rules, codes, id=case_id)


CASES = [
    case("baseline-second-relapse", COMMERCIAL, "P2", {"R4"}, {R4_BASE}),
    # R0: no triage at all, even with flags and urgency present.
    case(
        "r0-existing-patient",
        "care_team",
        None,
        {"R0"},
        {"existing_patient"},
        kind="existing_patient_message",
        inpatient=True,
        cns_status="cns3",
    ),
    # R1: each kind of gap.
    case("r1-no-dob", NEEDS_INFO, "P3", {"R1"}, {"missing_items"}, date_of_birth=None),
    case("r1-no-flow-report", NEEDS_INFO, "P3", {"R1"}, {"missing_items"}, has_flow_report=False),
    case("r1-cd19-unknown", NEEDS_INFO, "P3", {"R1"}, {"missing_items"}, cd19_status="unknown"),
    case("r1-hsct-unknown", NEEDS_INFO, "P3", {"R1"}, {"missing_items"}, had_hsct="unknown"),
    case("r1-hsct-yes-no-dates", NEEDS_INFO, "P3", {"R1"}, {"missing_items"}, had_hsct="yes"),
    case("r1-cns-unknown", NEEDS_INFO, "P3", {"R1"}, {"missing_items"}, cns_status="unknown"),
    case("r1-no-performance", NEEDS_INFO, "P3", {"R1"}, {"missing_items"}, performance_score=None),
    case("r1-no-mrd", NEEDS_INFO, "P3", {"R1"}, {"missing_items"}, mrd_result=None),
    case(
        "r1-with-p1-icu",
        NEEDS_INFO,
        "P1",
        {"R1", "P1"},
        {"missing_items", "icu"},
        date_of_birth=None,
        icu=True,
    ),
    case(
        "r1-with-r6-cns3",
        NEEDS_INFO,
        "P3",
        {"R1", "R6"},
        {"missing_items", "cns3"},
        has_flow_report=False,
        cns_status="cns3",
    ),
    # R2: family requests need the oncologist's contact.
    case(
        "r2-no-oncologist",
        NEEDS_INFO,
        "P3",
        {"R2"},
        {"no_oncologist_contact"},
        kind="second_opinion",
        has_oncologist_contact=False,
    ),
    case(
        "r1-and-r2",
        NEEDS_INFO,
        "P3",
        {"R1", "R2"},
        {"missing_items", "no_oncologist_contact"},
        kind="second_opinion",
        has_oncologist_contact=False,
        date_of_birth=None,
    ),
    case("r2-with-oncologist", COMMERCIAL, "P2", {"R4"}, {R4_BASE}, kind="second_opinion"),
    # R3: age at receipt + 6 weeks (infusion projected 2026-12-30).
    case("r3-age-26", AGE, "P3", {"R3"}, {"age_over_max"}, date_of_birth=date(2000, 1, 1)),
    case(
        "r3-turns-26-before-infusion",
        AGE,
        "P3",
        {"R3"},
        {"age_over_max"},
        date_of_birth=date(2000, 12, 15),
    ),
    case(
        "r3-still-25-at-infusion",
        COMMERCIAL,
        "P2",
        {"R4"},
        {R4_BASE},
        date_of_birth=date(2001, 1, 15),
    ),
    case(
        "r3-with-r6-and-p1",
        AGE,
        "P1",
        {"R3", "R6", "P1"},
        {"age_over_max", "pregnancy", "inpatient"},
        date_of_birth=date(1999, 3, 1),
        pregnancy="yes",
        inpatient=True,
    ),
    # R4: each qualifying basis.
    case(
        "r4-primary-refractory",
        COMMERCIAL,
        "P2",
        {"R4"},
        {"primary_refractory"},
        primary_refractory="yes",
        **NO_RELAPSE,
    ),
    case("r4-relapse-after-hsct", COMMERCIAL, "P2", {"R4"}, {"relapse_after_hsct"}, POST_HSCT),
    case(
        "r4-ph-after-two-tkis",
        COMMERCIAL,
        "P2",
        {"R4"},
        {"ph_positive_after_tkis"},
        ph_positive=True,
        tki_lines_failed=2,
        **NO_RELAPSE,
    ),
    case(
        "r4-low-blasts-note",
        COMMERCIAL,
        "P2",
        {"R4"},
        {R4_BASE, "low_marrow_blasts"},
        marrow_blasts_pct=3.0,
    ),
    case(
        "r4-gene-therapy-unknown",
        COMMERCIAL,
        "P2",
        {"R4"},
        {R4_BASE},
        prior_gene_therapy="unknown",
    ),
    # R5: each trial route.
    case("r5-first-relapse", TRIAL, "P2", {"R5"}, {"first_relapse"}, marrow_relapse_count=1),
    case(
        "r5-first-relapse-before-hsct",
        TRIAL,
        "P2",
        {"R5"},
        {"first_relapse"},
        POST_HSCT,
        hsct_date=date(2026, 10, 15),
    ),
    case("r5-cd19-dim", TRIAL, "P2", {"R5"}, {"cd19_dim"}, cd19_status="dim"),
    case("r5-cd19-negative", TRIAL, "P2", {"R5"}, {"cd19_negative"}, cd19_status="negative"),
    case("r5-prior-car-t", TRIAL, "P2", {"R5"}, {"prior_car_t"}, prior_car_t="yes"),
    case(
        "r5-prior-gene-therapy",
        TRIAL,
        "P2",
        {"R5"},
        {"prior_gene_therapy"},
        prior_gene_therapy="yes",
    ),
    case(
        "r5-isolated-extramedullary",
        TRIAL,
        "P2",
        {"R5"},
        {"isolated_extramedullary_relapse"},
        **{**NO_RELAPSE, "relapse_sites": frozenset({"isolated_extramedullary"})},
    ),
    case(
        "r5-isolated-cns-relapse",
        TRIAL,
        "P2",
        {"R5"},
        {"isolated_extramedullary_relapse"},
        **{**NO_RELAPSE, "relapse_sites": frozenset({"cns"})},
    ),
    case(
        "r5-first-relapse-cd19-dim",
        TRIAL,
        "P2",
        {"R5"},
        {"first_relapse", "cd19_dim"},
        marrow_relapse_count=1,
        cd19_status="dim",
    ),
    case(
        "r5-t-all",
        TRIAL,
        "P2",
        {"R5"},
        {"non_b_all_disease"},
        disease="t_all",
        cd19_status=None,
    ),
    case("r5-aml", TRIAL, "P2", {"R5"}, {"non_b_all_disease"}, disease="aml"),
    case(
        "r5-solid-tumor",
        TRIAL,
        "P2",
        {"R5"},
        {"non_b_all_disease"},
        disease="solid_tumor",
        **NOT_LEUKEMIA,
    ),
    case(
        "r5-cns-tumor",
        TRIAL,
        "P2",
        {"R5"},
        {"non_b_all_disease"},
        disease="cns_tumor",
        **NOT_LEUKEMIA,
    ),
    case("r5-b-nhl", TRIAL, "P2", {"R5"}, {"non_b_all_disease"}, disease="b_nhl", **NOT_LEUKEMIA),
    # R8: nothing qualifies.
    case("r8-no-relapse", REDIRECT, "P3", {"R8"}, {"no_qualifying_relapse"}, **NO_RELAPSE),
    case(
        "r8-cd19-negative-no-relapse",
        REDIRECT,
        "P3",
        {"R8"},
        {"no_qualifying_relapse"},
        cd19_status="negative",
        **NO_RELAPSE,
    ),
    case(
        "r8-ph-one-tki",
        REDIRECT,
        "P3",
        {"R8"},
        {"no_qualifying_relapse"},
        ph_positive=True,
        tki_lines_failed=1,
        **NO_RELAPSE,
    ),
    case(
        "r8-with-p1",
        REDIRECT,
        "P1",
        {"R8", "P1"},
        {"no_qualifying_relapse", "rising_peripheral_blasts"},
        rising_peripheral_blasts=True,
        **NO_RELAPSE,
    ),
    # R6: every hard flag, none of which changes the category.
    case("r6-cns3", COMMERCIAL, "P2", {"R4", "R6"}, {R4_BASE, "cns3"}, cns_status="cns3"),
    case(
        "r6-infection",
        COMMERCIAL,
        "P2",
        {"R4", "R6"},
        {R4_BASE, "uncontrolled_infection"},
        uncontrolled_infection="yes",
    ),
    case("r6-gvhd-2", COMMERCIAL, "P2", {"R4", "R6"}, {R4_BASE, "gvhd_grade_2_4"}, gvhd_grade=2),
    case("r6-gvhd-4", COMMERCIAL, "P2", {"R4", "R6"}, {R4_BASE, "gvhd_grade_2_4"}, gvhd_grade=4),
    case("r6-gvhd-1-no-flag", COMMERCIAL, "P2", {"R4"}, {R4_BASE}, gvhd_grade=1),
    case(
        "r6-immunosuppression",
        COMMERCIAL,
        "P2",
        {"R4", "R6"},
        {R4_BASE, "systemic_immunosuppression"},
        systemic_immunosuppression="yes",
    ),
    case(
        "r6-dli-3-weeks",
        COMMERCIAL,
        "P2",
        {"R4", "R6"},
        {R4_BASE, "recent_dli"},
        dli_date=date(2026, 10, 28),
    ),
    case(
        "r6-dli-41-days",
        COMMERCIAL,
        "P2",
        {"R4", "R6"},
        {R4_BASE, "recent_dli"},
        dli_date=date(2026, 10, 8),
    ),
    case("r6-dli-6-weeks-no-flag", COMMERCIAL, "P2", {"R4"}, {R4_BASE}, dli_date=date(2026, 10, 7)),
    case(
        "r6-hiv-hbv-hcv",
        COMMERCIAL,
        "P2",
        {"R4", "R6"},
        {R4_BASE, "hiv_hbv_hcv"},
        hiv_hbv_hcv="yes",
    ),
    case("r6-pregnancy", COMMERCIAL, "P2", {"R4", "R6"}, {R4_BASE, "pregnancy"}, pregnancy="yes"),
    case(
        "r6-performance-40",
        COMMERCIAL,
        "P2",
        {"R4", "R6"},
        {R4_BASE, "low_performance_score"},
        performance_score=40,
    ),
    case("r6-performance-50-no-flag", COMMERCIAL, "P2", {"R4"}, {R4_BASE}, performance_score=50),
    case(
        "r6-flag-on-trial",
        TRIAL,
        "P2",
        {"R5", "R6"},
        {"prior_car_t", "pregnancy"},
        prior_car_t="yes",
        hiv_hbv_hcv="unknown",  # unknown is not a flag
        pregnancy="yes",
    ),
    # R7: flag only.
    case(
        "r7-age-2",
        COMMERCIAL,
        "P2",
        {"R4", "R7"},
        {R4_BASE, "young_age"},
        date_of_birth=date(2024, 6, 1),
    ),
    case("r7-age-3-no-flag", COMMERCIAL, "P2", {"R4"}, {R4_BASE}, date_of_birth=date(2023, 11, 18)),
    # P1: every trigger; P2 just below the thresholds.
    case(
        "p1-blasts-50",
        COMMERCIAL,
        "P1",
        {"R4", "P1"},
        {R4_BASE, "high_marrow_blasts"},
        marrow_blasts_pct=50.0,
    ),
    case("p2-blasts-49.9", COMMERCIAL, "P2", {"R4"}, {R4_BASE}, marrow_blasts_pct=49.9),
    case(
        "p1-rising-blasts",
        COMMERCIAL,
        "P1",
        {"R4", "P1"},
        {R4_BASE, "rising_peripheral_blasts"},
        rising_peripheral_blasts=True,
    ),
    case("p1-inpatient", COMMERCIAL, "P1", {"R4", "P1"}, {R4_BASE, "inpatient"}, inpatient=True),
    case(
        "p1-icu",
        COMMERCIAL,
        "P1",
        {"R4", "P1"},
        {R4_BASE, "icu"},
        inpatient=True,
        icu=True,
    ),
    case(
        "p1-early-post-hsct-relapse",
        COMMERCIAL,
        "P1",
        {"R4", "P1"},
        {"relapse_after_hsct", "early_post_hsct_relapse"},
        POST_HSCT,
        hsct_date=date(2026, 5, 2),
    ),
    case(
        "p2-relapse-exactly-6-months-post-hsct",
        COMMERCIAL,
        "P2",
        {"R4"},
        {"relapse_after_hsct"},
        POST_HSCT,
        hsct_date=date(2026, 4, 1),
    ),
    case(
        "p1-new-cns-symptoms",
        COMMERCIAL,
        "P1",
        {"R4", "P1"},
        {R4_BASE, "new_cns_symptoms"},
        new_cns_symptoms=True,
    ),
    case(
        "p1-referrer-urgent-with-reason",
        COMMERCIAL,
        "P1",
        {"R4", "P1"},
        {R4_BASE, "referrer_marked_urgent"},
        referrer_marked_urgent=True,
        urgency_reason="Counts rising despite bridging",
    ),
    case(
        "p2-referrer-urgent-blank-reason",
        COMMERCIAL,
        "P2",
        {"R4"},
        {R4_BASE},
        referrer_marked_urgent=True,
        urgency_reason="   ",
    ),
    case(
        "p1-on-trial-candidate",
        TRIAL,
        "P1",
        {"R5", "P1"},
        {"first_relapse", "new_cns_symptoms"},
        marrow_relapse_count=1,
        new_cns_symptoms=True,
    ),
    case(
        "p1-several-triggers",
        COMMERCIAL,
        "P1",
        {"R4", "P1"},
        {R4_BASE, "high_marrow_blasts", "icu"},
        marrow_blasts_pct=85.0,
        icu=True,
    ),
]


@pytest.mark.parametrize(("facts", "category", "priority", "rules", "codes"), CASES)
def test_rule_table(
    facts: TriageInput,
    category: str,
    priority: str | None,
    rules: set[str],
    codes: set[str],
) -> None:
    result = triage(facts, CAL)
    assert result.category == category
    assert result.priority == priority
    assert {reason.rule_id for reason in result.reasons} == rules
    assert {reason.code for reason in result.reasons} == codes
    assert set(result.hard_flags) == codes & R6_CODES
    assert result.rules_version == RULES_VERSION


def test_rule_table_is_large_enough() -> None:
    assert len(CASES) >= 30
    ids = [param.id for param in CASES]
    assert len(ids) == len(set(ids))


# -- missing items -----------------------------------------------------------------------

COMMON = ["date_of_birth", "disease", "flow_report", "performance_score"]
COMMON += ["uncontrolled_infection", "prior_car_t"]
LEUKEMIA = ["primary_refractory", "marrow_relapse_count", "had_hsct"]
LEUKEMIA_TAIL = ["marrow_blasts_pct", "mrd_result", "cns_status"]


def blank(**changes: Any) -> TriageInput:
    return TriageInput(kind="physician_referral", received_at=RECEIVED, **changes)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (blank(), COMMON),
        (
            blank(disease="b_all"),
            [c for c in COMMON if c != "disease"] + ["cd19_status", *LEUKEMIA, *LEUKEMIA_TAIL],
        ),
        (blank(disease="t_all"), [c for c in COMMON if c != "disease"] + LEUKEMIA + LEUKEMIA_TAIL),
        (blank(disease="solid_tumor"), [c for c in COMMON if c != "disease"]),
        (
            replace(BASE, had_hsct="yes", relapse_date=None),
            ["hsct_date", "relapse_date", "gvhd_grade"],
        ),
        (
            # Transplanted and refractory, never relapsed: no relapse date to ask for.
            replace(BASE, had_hsct="yes", primary_refractory="yes", **NO_RELAPSE),
            ["hsct_date", "gvhd_grade"],
        ),
        (replace(BASE, had_hsct="no", mrd_result="not_done"), []),  # answers, not gaps
        (
            replace(BASE, prior_car_t="unknown", uncontrolled_infection="unknown"),
            ["uncontrolled_infection", "prior_car_t"],
        ),
        (
            replace(
                BASE, kind="second_opinion", has_oncologist_contact=False, performance_score=None
            ),
            ["performance_score", "oncologist_contact"],
        ),
        (replace(BASE, kind="existing_patient_message", date_of_birth=None), []),
    ],
    ids=[
        "blank",
        "blank-b-all",
        "blank-t-all-no-cd19",
        "blank-solid-tumor",
        "hsct-yes",
        "hsct-yes-never-relapsed",
        "no-and-not-done-are-answers",
        "unknown-is-missing",
        "second-opinion",
        "existing-patient",
    ],
)
def test_missing_items(facts: TriageInput, expected: list[str]) -> None:
    result = triage(facts, CAL)
    assert list(result.missing_items) == expected
    assert missing_items(facts) == result.missing_items
    assert all(code in MISSING_ITEM_LABELS for code in expected)


def test_r1_reason_lists_labels() -> None:
    result = triage(blank(disease="aml"), CAL)
    (reason,) = [r for r in result.reasons if r.rule_id == "R1"]
    assert MISSING_ITEM_LABELS["flow_report"] in reason.text
    assert MISSING_ITEM_LABELS["cns_status"] in reason.text


# -- due times ---------------------------------------------------------------------------


def at_ny(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


@pytest.mark.parametrize(
    ("facts", "ack", "review"),
    [
        (BASE, at_ny(2026, 11, 19, 10), at_ny(2026, 11, 19, 10)),  # P2: 1 business day
        (replace(BASE, icu=True), at_ny(2026, 11, 19, 10), at_ny(2026, 11, 18, 17)),  # P1
        (replace(BASE, **NO_RELAPSE), at_ny(2026, 11, 19, 10), at_ny(2026, 11, 20, 10)),  # P3
        (replace(BASE, date_of_birth=None), at_ny(2026, 11, 19, 10), None),  # needs_info
        # Acknowledgement from receipt, no review clock.
        (replace(BASE, kind="existing_patient_message"), at_ny(2026, 11, 19, 10), None),
        (
            # Friday evening P1: same business day means Monday's close.
            replace(BASE, icu=True, received_at=at_ny(2026, 11, 20, 18)),
            at_ny(2026, 11, 24, 8),
            at_ny(2026, 11, 23, 17),
        ),
        (
            # Wednesday before Thanksgiving + Friday holiday, P3.
            replace(BASE, received_at=at_ny(2026, 11, 25, 10), **NO_RELAPSE),
            at_ny(2026, 11, 30, 10),
            at_ny(2026, 12, 1, 10),
        ),
        (
            # Review clock from packet completion, acknowledgement from receipt.
            replace(
                BASE,
                received_at=at_ny(2026, 11, 16, 9),
                packet_complete_at=at_ny(2026, 11, 18, 14),
            ),
            at_ny(2026, 11, 17, 9),
            at_ny(2026, 11, 19, 14),
        ),
    ],
    ids=[
        "p2",
        "p1",
        "p3",
        "needs-info",
        "care-team",
        "friday-evening-p1",
        "holidays-p3",
        "packet-complete",
    ],
)
def test_due_times(facts: TriageInput, ack: datetime | None, review: datetime | None) -> None:
    result = triage(facts, CAL)
    assert result.ack_due_at == ack
    assert result.review_due_at == review
    for due in (result.ack_due_at, result.review_due_at):
        assert due is None or due.tzinfo is UTC


# -- thresholds, dates and validation ----------------------------------------------------


def test_thresholds_are_configurable() -> None:
    strict = Thresholds(max_age_years=21, high_blasts_pct=15.0, dli_washout_weeks=8)
    facts = replace(BASE, date_of_birth=date(2004, 1, 1))
    assert triage(facts, CAL).category == COMMERCIAL
    assert triage(facts, CAL, strict).category == AGE
    result = triage(replace(BASE, dli_date=date(2026, 10, 1)), CAL, strict)
    assert result.priority == "P1"  # 20% blasts >= 15%
    assert result.hard_flags == ("recent_dli",)


def test_age_uses_program_local_receipt_date() -> None:
    # 03:00Z on 19 Nov is still 18 Nov in New York: the child is 2, not yet 3.
    received = datetime(2026, 11, 19, 3, 0, tzinfo=UTC)
    facts = replace(BASE, received_at=received, date_of_birth=date(2023, 11, 19))
    assert "young_age" in {r.code for r in triage(facts, CAL).reasons}


def test_reason_texts_carry_no_patient_values() -> None:
    facts = replace(POST_HSCT, hsct_date=date(2026, 5, 2), urgency_reason="Secret detail")
    facts = replace(facts, referrer_marked_urgent=True, date_of_birth=date(2024, 6, 1))
    texts = " ".join(r.text for r in triage(facts, CAL).reasons)
    for value in ("2024", "2026", "Secret detail"):
        assert value not in texts


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 15), 6, date(2026, 7, 15)),
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2027, 8, 31), 6, date(2028, 2, 29)),
        (date(2026, 1, 15), -1, date(2025, 12, 15)),
        (date(2026, 12, 31), 2, date(2027, 2, 28)),
    ],
)
def test_add_months(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2026, 1, 15), date(2026, 7, 14), 5),
        (date(2026, 1, 15), date(2026, 7, 15), 6),
        (date(2026, 8, 31), date(2027, 2, 28), 6),
        (date(2026, 1, 31), date(2026, 2, 28), 1),
        (date(2026, 7, 15), date(2026, 1, 15), -6),
        (date(2026, 1, 15), date(2026, 1, 15), 0),
    ],
)
def test_whole_months_between(start: date, end: date, expected: int) -> None:
    assert whole_months_between(start, end) == expected


@pytest.mark.parametrize(
    ("born", "on", "expected"),
    [
        (date(2016, 5, 1), date(2026, 4, 30), 9),
        (date(2016, 5, 1), date(2026, 5, 1), 10),
        (date(2012, 2, 29), date(2026, 2, 28), 13),
        (date(2012, 2, 29), date(2026, 3, 1), 14),
    ],
)
def test_age_in_years(born: date, on: date, expected: int) -> None:
    assert age_in_years(born, on) == expected


@pytest.mark.parametrize(
    "changes",
    [
        {"received_at": datetime(2026, 11, 18, 10, 0)},
        {"packet_complete_at": datetime(2026, 11, 18, 10, 0)},
        {"kind": "family_message"},
        {"disease": "B-ALL"},
        {"cd19_status": "pos"},
        {"had_hsct": "maybe"},
        {"relapse_sites": frozenset({"liver"})},
        {"performance_score": 101},
        {"gvhd_grade": 5},
        {"marrow_blasts_pct": -1.0},
        {"marrow_relapse_count": -1},
    ],
    ids=lambda changes: next(iter(changes)),
)
def test_invalid_input_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        replace(BASE, **changes)


def test_relapse_sites_accept_any_iterable() -> None:
    facts = replace(BASE, relapse_sites={"marrow", "cns"})  # type: ignore[arg-type]
    assert facts.relapse_sites == frozenset({"marrow", "cns"})
    hash(facts)


# -- invariants over many combinations ---------------------------------------------------


def combinations() -> list[TriageInput]:
    kinds: list[Kind] = ["physician_referral", "second_opinion", "existing_patient_message"]
    car_t_answers: list[Answer] = ["yes", "no", "unknown"]
    hsct_answers: list[Answer] = ["yes", "no"]
    grid = itertools.product(
        kinds,
        ["b_all", "t_all", "aml", "b_nhl", "solid_tumor", None],
        ["positive", "dim", "negative", "unknown"],
        [0, 1, 2, None],
        car_t_answers,
        hsct_answers,
        [False, True],  # an urgent trigger
        [False, True],  # a hard flag
        [date(2016, 5, 1), date(1990, 1, 1), date(2025, 1, 1)],
    )
    facts = []
    for kind, disease, cd19, relapses, car_t, hsct, urgent, flag, born in grid:
        facts.append(
            replace(
                BASE,
                kind=kind,
                disease=disease,
                cd19_status=cd19,
                marrow_relapse_count=relapses,
                prior_car_t=car_t,
                had_hsct=hsct,
                hsct_date=date(2026, 6, 1) if hsct == "yes" else None,
                gvhd_grade=0,
                inpatient=urgent,
                pregnancy="yes" if flag else "no",
                has_oncologist_contact=not flag,
                date_of_birth=born,
            )
        )
    return facts


def check_invariants(facts: TriageInput, result: TriageResult) -> None:
    assert result.category in CATEGORIES
    assert "declin" not in result.category
    assert result.category in CATEGORY_LABELS
    assert result.rules_version == RULES_VERSION
    rule_ids = {reason.rule_id for reason in result.reasons}
    if facts.kind == "existing_patient_message":
        assert result.category == "care_team"
        assert rule_ids == {"R0"}
        assert result.priority is None and result.ack_due_at is not None
        assert result.review_due_at is None
        return
    assert result.priority in PRIORITY_LABELS
    assert result.ack_due_at is not None
    assert (result.review_due_at is None) == (result.category == NEEDS_INFO)
    assert (result.category == NEEDS_INFO) == bool(result.missing_items)
    assert (result.priority == "P1") == ("P1" in rule_ids)
    category_rules = rule_ids & {"R0", "R1", "R2", "R3", "R4", "R5", "R8"}
    assert category_rules and (category_rules <= {"R1", "R2"} or len(category_rules) == 1)
    assert set(result.hard_flags) <= R6_CODES
    assert set(result.missing_items) <= set(MISSING_ITEM_LABELS)


def test_no_combination_is_ever_declined() -> None:
    seen: set[str] = set()
    all_facts = combinations()
    assert len(all_facts) > 10_000
    for facts in all_facts:
        result = triage(facts, CAL)
        check_invariants(facts, result)
        seen.add(result.category)
    assert seen == set(CATEGORIES)
