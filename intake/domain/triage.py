"""Referral triage rules R0-R8 and priorities P1-P3 (domain.md section 2.4).

Pure and versioned: no I/O, stdlib only. ``triage()`` returns a *routing suggestion* for
coordinators (category, priority, reasons tagged with rule ids, missing items, hard flags,
due times). It never declines: only a program physician records ``declined``/``redirected``.
Store ``RULES_VERSION`` with every result and re-run triage whenever the data changes.
Reason texts carry thresholds only, never patient values, so they are safe to show anywhere.

Rules, in order (the first *category* rule that matches wins):

* **R0** ``existing_patient_message`` -> ``care_team``; no priority, no flags, no review clock
  (the acknowledgement clock still runs: the family is promised contact within 1 business day).
* **R1** a starred item is missing or "unknown" -> ``needs_info`` with the list of gaps.
  Starred items (stable codes, in this order):

  - every disease: ``date_of_birth``, ``disease``, ``flow_report`` (no flow cytometry report
    attached), ``performance_score``, ``uncontrolled_infection``, ``prior_car_t``;
  - leukemias (``b_all``, ``t_all``, ``aml``) also: ``cd19_status`` (``b_all`` only;
    "unknown" is missing), ``primary_refractory``, ``marrow_relapse_count``, ``had_hsct``
    ("unknown" is missing, "no" is an answer), ``hsct_date``, ``relapse_date`` and
    ``gvhd_grade`` (these three only when ``had_hsct == "yes"``; ``relapse_date`` is not
    asked when no relapse at all is recorded, i.e. zero marrow relapses and no relapse
    site), ``marrow_blasts_pct``, ``mrd_result`` ("not_done" is an answer), ``cns_status``
    ("unknown" is missing).

  For yes/no/unknown answers, "unknown" counts as missing; ``inpatient``/``icu`` are booleans
  and never missing.
* **R2** ``second_opinion`` without the treating oncologist's contact -> ``needs_info``
  (item ``oncologist_contact``). R1 and R2 gaps are reported together.
* **R3** age at projected infusion (local receipt date + ``infusion_projection_weeks``) over
  ``max_age_years`` -> ``likely_ineligible_age`` (adult program; check trials).
* **R4** B-ALL, CD19 positive (dim is R5), prior CAR T "no", prior gene therapy not "yes",
  and any of: primary refractory; >= 2 marrow relapses; a marrow relapse after allo-HSCT
  (``relapse_date > hsct_date``); Ph+ after ``tki_lines_for_ph_positive`` TKI lines ->
  ``likely_eligible_commercial``. One reason per basis met; marrow blasts below
  ``commercial_min_marrow_blasts_pct`` add an informational R4 reason (label criterion).
* **R5** -> ``possible_trial``, one reason per cause: any non-B-ALL disease; prior CAR T;
  prior gene therapy; and, for relapsed/refractory B-ALL, CD19 dim or negative, first marrow
  relapse (not after HSCT, not refractory), isolated extramedullary relapse (the
  ``isolated_extramedullary`` site, or relapse sites without marrow and no marrow relapse).
* **R8** anything else (no refractory disease or qualifying relapse) ->
  ``likely_ineligible_redirect``.

Flags evaluated on whatever data is present for every kind except R0; they never change the
category:

* **R6** hard flags for physician review: ``cns3``, ``uncontrolled_infection``,
  ``gvhd_grade_2_4``, ``systemic_immunosuppression``, ``recent_dli`` (fewer than
  ``dli_washout_weeks`` elapsed since the DLI at receipt, future dates included),
  ``hiv_hbv_hcv``, ``pregnancy``, ``low_performance_score``.
* **R7** ``young_age``: younger than ``young_age_flag_years`` at receipt (flag only).
* **P1** triggers (one reason each): ``high_marrow_blasts``, ``rising_peripheral_blasts``,
  ``icu`` or ``inpatient``, ``early_post_hsct_relapse``, ``new_cns_symptoms``,
  ``referrer_marked_urgent`` (only with a non-blank reason).

Priority: P1 if any trigger fired; else P2 for ``likely_eligible_commercial`` and
``possible_trial``; else P3. Due times (business calendar): acknowledgement 1 business day
after receipt; review P1 same business day, P2 1, P3 2 business days from the moment the packet
is complete (``packet_complete_at``, default ``received_at``), and ``None`` while the category
is ``needs_info`` (decision 4). Pausing the review clock is the caller's job.

Dates: ages are whole years on the program-local receipt date (a 29 Feb birthday counts on
1 Mar in common years). Months are calendar months: ``add_months`` keeps the day of month,
clamped to the month's end (31 Aug + 6 months = 28/29 Feb), and ``whole_months_between`` is
the largest ``m`` with ``add_months(start, m) <= end``. "Relapse within 6 months of HSCT"
therefore means ``hsct_date < relapse_date`` and fewer than 6 whole months between them.
"""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, Literal

from intake.domain.calendar import BusinessCalendar
from intake.domain.text import N_

__all__ = [
    "ANSWERS",
    "ANTIGEN_STATUSES",
    "CARE_TEAM",
    "CATEGORIES",
    "CATEGORY_LABELS",
    "CNS_STATUSES",
    "DEFAULT_THRESHOLDS",
    "DISEASES",
    "HARD_FLAG_LABELS",
    "KINDS",
    "LEUKEMIAS",
    "LIKELY_ELIGIBLE_COMMERCIAL",
    "LIKELY_INELIGIBLE_AGE",
    "LIKELY_INELIGIBLE_REDIRECT",
    "MISSING_ITEM_LABELS",
    "MRD_RESULTS",
    "NEEDS_INFO",
    "POSSIBLE_TRIAL",
    "PRIORITY_LABELS",
    "RELAPSE_SITES",
    "REVIEW_BUSINESS_DAYS",
    "RULES_VERSION",
    "Answer",
    "Kind",
    "Reason",
    "Thresholds",
    "TriageInput",
    "TriageResult",
    "add_months",
    "age_in_years",
    "missing_items",
    "triage",
    "whole_months_between",
]

RULES_VERSION: Final = "2026.11-1"

Answer = Literal["yes", "no", "unknown"]
Kind = Literal["physician_referral", "second_opinion", "existing_patient_message"]

KINDS: Final = frozenset({"physician_referral", "second_opinion", "existing_patient_message"})
ANSWERS: Final = frozenset({"yes", "no", "unknown"})
DISEASES: Final = frozenset({"b_all", "t_all", "aml", "b_nhl", "cns_tumor", "solid_tumor", "other"})
LEUKEMIAS: Final = frozenset({"b_all", "t_all", "aml"})
ANTIGEN_STATUSES: Final = frozenset({"positive", "dim", "negative", "unknown"})
RELAPSE_SITES: Final = frozenset({"marrow", "cns", "testis", "isolated_extramedullary", "other"})
MRD_RESULTS: Final = frozenset({"positive", "negative", "not_done"})
CNS_STATUSES: Final = frozenset({"cns1", "cns2", "cns3", "unknown"})

CARE_TEAM: Final = "care_team"
NEEDS_INFO: Final = "needs_info"
LIKELY_INELIGIBLE_AGE: Final = "likely_ineligible_age"
LIKELY_ELIGIBLE_COMMERCIAL: Final = "likely_eligible_commercial"
POSSIBLE_TRIAL: Final = "possible_trial"
LIKELY_INELIGIBLE_REDIRECT: Final = "likely_ineligible_redirect"

CATEGORIES: Final = (
    CARE_TEAM,
    NEEDS_INFO,
    LIKELY_INELIGIBLE_AGE,
    LIKELY_ELIGIBLE_COMMERCIAL,
    POSSIBLE_TRIAL,
    LIKELY_INELIGIBLE_REDIRECT,
)

CATEGORY_LABELS: dict[str, str] = {
    CARE_TEAM: "Existing patient - care team",
    NEEDS_INFO: "Needs more information",
    LIKELY_INELIGIBLE_AGE: "Likely ineligible here - adult program",
    LIKELY_ELIGIBLE_COMMERCIAL: "Likely eligible - commercial",
    POSSIBLE_TRIAL: "Possible trial candidate",
    LIKELY_INELIGIBLE_REDIRECT: "Likely ineligible - redirect / second opinion",
}

PRIORITY_LABELS: dict[str, str] = {
    "P1": "P1 Urgent - review same business day",
    "P2": "P2 - review within 1 business day",
    "P3": "P3 - review within 2 business days",
}

# Business days from the packet being complete to the review deadline.
REVIEW_BUSINESS_DAYS: dict[str, int] = {"P1": 0, "P2": 1, "P3": 2}
ACK_BUSINESS_DAYS: Final = 1

# English; family-facing pages and emails translate them (N_ marks them for the catalogue).
MISSING_ITEM_LABELS: dict[str, str] = {
    "date_of_birth": N_("Date of birth"),
    "disease": N_("Diagnosis"),
    "flow_report": N_("Flow cytometry report"),
    "performance_score": N_("Lansky/Karnofsky performance score"),
    "uncontrolled_infection": N_("Active or uncontrolled infection (yes/no)"),
    "prior_car_t": N_("Prior CAR T-cell therapy (yes/no)"),
    "cd19_status": N_("CD19 status"),
    "primary_refractory": N_("Primary refractory disease (yes/no)"),
    "marrow_relapse_count": N_("Number of marrow relapses"),
    "had_hsct": N_("Prior allogeneic stem cell transplant (yes/no)"),
    "hsct_date": N_("Transplant (HSCT) date"),
    "relapse_date": N_("Date of most recent relapse"),
    "gvhd_grade": N_("GVHD grade"),
    "marrow_blasts_pct": N_("Marrow blasts (%)"),
    "mrd_result": N_("MRD result"),
    "cns_status": N_("CNS status (CNS1/2/3)"),
    "oncologist_contact": N_("Treating oncologist's contact"),
}

# R6 hard flags as staff read them (English only: shown on the coordinator's case page).
HARD_FLAG_LABELS: dict[str, str] = {
    "cns3": "Active CNS3 disease",
    "uncontrolled_infection": "Uncontrolled infection",
    "gvhd_grade_2_4": "GVHD grade 2-4",
    "systemic_immunosuppression": "On systemic immunosuppression",
    "recent_dli": "Recent donor lymphocyte infusion (DLI)",
    "hiv_hbv_hcv": "HIV, HBV or HCV infection",
    "pregnancy": "Pregnancy",
    "low_performance_score": "Low Lansky/Karnofsky performance score",
}

_DISEASE_LABELS: Final = {
    "b_all": "B-ALL",
    "t_all": "T-ALL",
    "aml": "AML",
    "b_nhl": "B-cell lymphoma",
    "cns_tumor": "CNS tumor",
    "solid_tumor": "Solid tumor",
    "other": "Other diagnosis",
}


@dataclass(frozen=True)
class Thresholds:
    """Configurable rule thresholds (domain.md 2.4); defaults follow the label and payers."""

    max_age_years: int = 25
    infusion_projection_weeks: int = 6
    high_blasts_pct: float = 50.0
    early_post_hsct_relapse_months: int = 6
    dli_washout_weeks: int = 6
    min_performance_score: int = 50
    young_age_flag_years: int = 3
    commercial_min_marrow_blasts_pct: float = 5.0  # used only as a reason note, not an exclusion
    tki_lines_for_ph_positive: int = 2


DEFAULT_THRESHOLDS: Final = Thresholds()


@dataclass(frozen=True)
class TriageInput:
    """The facts triage reads; ``None`` means "not given". Values are validated on creation."""

    kind: Kind
    received_at: datetime
    date_of_birth: date | None = None
    disease: str | None = None  # "b_all","t_all","aml","b_nhl","cns_tumor","solid_tumor","other"
    cd19_status: str | None = None  # "positive","dim","negative","unknown"
    cd22_status: str | None = None
    primary_refractory: Answer | None = None
    marrow_relapse_count: int | None = None
    relapse_sites: frozenset[str] = frozenset()
    had_hsct: Answer | None = None
    hsct_date: date | None = None
    relapse_date: date | None = None  # most recent relapse
    ph_positive: bool = False
    tki_lines_failed: int | None = None
    prior_car_t: Answer | None = None
    prior_gene_therapy: Answer | None = None
    blinatumomab_nonresponse: bool = False
    marrow_blasts_pct: float | None = None
    rising_peripheral_blasts: bool = False
    mrd_result: str | None = None  # "positive","negative","not_done"
    cns_status: str | None = None  # "cns1","cns2","cns3","unknown"
    new_cns_symptoms: bool = False
    performance_score: int | None = None  # Lansky (<16 y) or Karnofsky (>=16 y), 0..100
    uncontrolled_infection: Answer | None = None
    hiv_hbv_hcv: Answer | None = None
    gvhd_grade: int | None = None  # 0..4
    systemic_immunosuppression: Answer | None = None
    dli_date: date | None = None
    pregnancy: Answer | None = None
    inpatient: bool = False
    icu: bool = False
    down_syndrome: bool = False
    referrer_marked_urgent: bool = False
    urgency_reason: str = ""
    has_flow_report: bool = False
    has_oncologist_contact: bool = True  # R2, family requests
    # Decision 4: the review clock starts when the packet is complete (default: receipt).
    packet_complete_at: datetime | None = None

    def __post_init__(self) -> None:
        # Callers may pass any iterable of sites; keep the field hashable.
        object.__setattr__(self, "relapse_sites", frozenset(self.relapse_sites))
        _validate(self)


@dataclass(frozen=True)
class Reason:
    """One explanation, tagged with the rule ("R0".."R8") or priority ("P1".."P3") id."""

    rule_id: str
    code: str
    text: str


@dataclass(frozen=True)
class TriageResult:
    """A routing suggestion; never a decision."""

    category: str
    priority: str | None
    reasons: tuple[Reason, ...]
    missing_items: tuple[str, ...]
    hard_flags: tuple[str, ...]
    review_due_at: datetime | None
    ack_due_at: datetime | None
    rules_version: str


# -- validation ---------------------------------------------------------------------------


def _check_choice(name: str, value: str | None, allowed: frozenset[str]) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"{name}: unexpected value {value!r}")


def _check_range(name: str, value: float | None, low: float, high: float | None) -> None:
    if value is not None and (value < low or (high is not None and value > high)):
        raise ValueError(f"{name}: {value!r} out of range")


def _check_aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _validate(f: TriageInput) -> None:
    # Fail loudly on codes the rules do not know: a silent mismatch would misroute a child.
    _check_choice("kind", f.kind, KINDS)
    _check_aware("received_at", f.received_at)
    _check_aware("packet_complete_at", f.packet_complete_at)
    _check_choice("disease", f.disease, DISEASES)
    _check_choice("cd19_status", f.cd19_status, ANTIGEN_STATUSES)
    _check_choice("cd22_status", f.cd22_status, ANTIGEN_STATUSES)
    _check_choice("mrd_result", f.mrd_result, MRD_RESULTS)
    _check_choice("cns_status", f.cns_status, CNS_STATUSES)
    answers = {
        "primary_refractory": f.primary_refractory,
        "had_hsct": f.had_hsct,
        "prior_car_t": f.prior_car_t,
        "prior_gene_therapy": f.prior_gene_therapy,
        "uncontrolled_infection": f.uncontrolled_infection,
        "hiv_hbv_hcv": f.hiv_hbv_hcv,
        "systemic_immunosuppression": f.systemic_immunosuppression,
        "pregnancy": f.pregnancy,
    }
    for name, answer in answers.items():
        _check_choice(name, answer, ANSWERS)
    unknown_sites = f.relapse_sites - RELAPSE_SITES
    if unknown_sites:
        raise ValueError(f"relapse_sites: unexpected values {sorted(unknown_sites)!r}")
    _check_range("marrow_relapse_count", f.marrow_relapse_count, 0, None)
    _check_range("tki_lines_failed", f.tki_lines_failed, 0, None)
    _check_range("marrow_blasts_pct", f.marrow_blasts_pct, 0, 100)
    _check_range("performance_score", f.performance_score, 0, 100)
    _check_range("gvhd_grade", f.gvhd_grade, 0, 4)


# -- date helpers -------------------------------------------------------------------------


def age_in_years(date_of_birth: date, on: date) -> int:
    """Completed years of age on ``on`` (negative if ``on`` precedes the birth date)."""
    before_birthday = (on.month, on.day) < (date_of_birth.month, date_of_birth.day)
    return on.year - date_of_birth.year - int(before_birthday)


def add_months(day: date, months: int) -> date:
    """``day`` moved by calendar months, the day of month clamped to the target month's end."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def whole_months_between(start: date, end: date) -> int:
    """Largest ``m`` with ``add_months(start, m) <= end`` (negated when ``end < start``)."""
    if end < start:
        return -whole_months_between(end, start)
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if add_months(start, months) > end:
        months -= 1
    return months


# -- rules --------------------------------------------------------------------------------


def _unanswered(answer: str | None) -> bool:
    return answer is None or answer == "unknown"


def _any_relapse_recorded(f: TriageInput) -> bool:
    return bool(f.marrow_relapse_count) or bool(f.relapse_sites)


def _star_missing(f: TriageInput) -> list[str]:
    """R1 gaps, in a stable order (see the module docstring)."""
    checks: list[tuple[str, bool]] = [
        ("date_of_birth", f.date_of_birth is None),
        ("disease", f.disease is None),
        ("flow_report", not f.has_flow_report),
        ("performance_score", f.performance_score is None),
        ("uncontrolled_infection", _unanswered(f.uncontrolled_infection)),
        ("prior_car_t", _unanswered(f.prior_car_t)),
    ]
    if f.disease in LEUKEMIAS:
        transplanted = f.had_hsct == "yes"
        # relapse_date is only askable once a relapse is recorded (or the count is unknown).
        relapse_date_needed = f.marrow_relapse_count is None or _any_relapse_recorded(f)
        checks += [
            ("cd19_status", f.disease == "b_all" and _unanswered(f.cd19_status)),
            ("primary_refractory", _unanswered(f.primary_refractory)),
            ("marrow_relapse_count", f.marrow_relapse_count is None),
            ("had_hsct", _unanswered(f.had_hsct)),
            ("hsct_date", transplanted and f.hsct_date is None),
            ("relapse_date", transplanted and relapse_date_needed and f.relapse_date is None),
            ("gvhd_grade", transplanted and f.gvhd_grade is None),
            ("marrow_blasts_pct", f.marrow_blasts_pct is None),
            ("mrd_result", f.mrd_result is None),
            ("cns_status", _unanswered(f.cns_status)),
        ]
    return [code for code, missing in checks if missing]


def _r2_missing(f: TriageInput) -> bool:
    return f.kind == "second_opinion" and not f.has_oncologist_contact


def missing_items(facts: TriageInput) -> tuple[str, ...]:
    """Codes of the items a complete packet still needs (R1 and R2); empty for R0."""
    if facts.kind == "existing_patient_message":
        return ()
    items = _star_missing(facts)
    if _r2_missing(facts):
        items.append("oncologist_contact")
    return tuple(items)


def _needs_info_reasons(f: TriageInput, r1_missing: list[str]) -> list[Reason]:
    reasons: list[Reason] = []
    if r1_missing:
        labels = ", ".join(MISSING_ITEM_LABELS[code] for code in r1_missing)
        reasons.append(
            Reason("R1", "missing_items", f"Required for triage but missing or unknown: {labels}.")
        )
    if _r2_missing(f):
        reasons.append(
            Reason(
                "R2",
                "no_oncologist_contact",
                "Family request without the treating oncologist's contact; "
                "the program works through the oncologist.",
            )
        )
    return reasons


def _relapsed_after_hsct(f: TriageInput) -> bool:
    return (
        f.had_hsct == "yes"
        and f.hsct_date is not None
        and f.relapse_date is not None
        and f.relapse_date > f.hsct_date
    )


def _ph_after_tkis(f: TriageInput, th: Thresholds) -> bool:
    return f.ph_positive and (f.tki_lines_failed or 0) >= th.tki_lines_for_ph_positive


def _r4_reasons(f: TriageInput, th: Thresholds) -> list[Reason]:
    if f.disease != "b_all" or f.cd19_status != "positive":
        return []
    if f.prior_car_t != "no" or f.prior_gene_therapy == "yes":
        return []
    relapses = f.marrow_relapse_count or 0
    reasons: list[Reason] = []
    if f.primary_refractory == "yes":
        reasons.append(Reason("R4", "primary_refractory", "CD19+ B-ALL, primary refractory."))
    if relapses >= 2:
        reasons.append(
            Reason("R4", "second_or_later_relapse", "CD19+ B-ALL in second or later relapse.")
        )
    if relapses >= 1 and _relapsed_after_hsct(f):
        reasons.append(
            Reason("R4", "relapse_after_hsct", "CD19+ B-ALL, marrow relapse after allo-HSCT.")
        )
    if _ph_after_tkis(f, th):
        reasons.append(
            Reason(
                "R4",
                "ph_positive_after_tkis",
                f"Ph+ B-ALL after {th.tki_lines_for_ph_positive} or more TKI lines.",
            )
        )
    low_blasts = (
        f.marrow_blasts_pct is not None
        and f.marrow_blasts_pct < th.commercial_min_marrow_blasts_pct
    )
    if reasons and low_blasts:
        reasons.append(
            Reason(
                "R4",
                "low_marrow_blasts",
                f"Marrow blasts below {th.commercial_min_marrow_blasts_pct:g}%: payer criteria "
                "ask for at least that; physician review.",
            )
        )
    return reasons


def _isolated_extramedullary(f: TriageInput) -> bool:
    if "isolated_extramedullary" in f.relapse_sites:
        return True
    return bool(f.relapse_sites) and "marrow" not in f.relapse_sites and not f.marrow_relapse_count


def _r5_reasons(f: TriageInput, th: Thresholds) -> list[Reason]:
    if f.disease != "b_all":
        label = _DISEASE_LABELS.get(f.disease or "other", "Other diagnosis")
        return [
            Reason(
                "R5",
                "non_b_all_disease",
                f"{label}: no commercial CAR T indication here; check CAR T trials.",
            )
        ]
    reasons: list[Reason] = []
    if f.prior_car_t == "yes":
        reasons.append(
            Reason("R5", "prior_car_t", "Prior CAR T: check post-CAR T (e.g. CD22) trials.")
        )
    if f.prior_gene_therapy == "yes":
        reasons.append(
            Reason(
                "R5",
                "prior_gene_therapy",
                "Prior gene therapy: one commercial dose per lifetime; check trials.",
            )
        )
    relapses = f.marrow_relapse_count or 0
    # Antigen and relapse-pattern routes only matter once the disease is relapsed/refractory.
    if not (f.primary_refractory == "yes" or _any_relapse_recorded(f) or _ph_after_tkis(f, th)):
        return reasons
    if f.cd19_status in ("dim", "negative"):
        reasons.append(
            Reason(
                "R5",
                f"cd19_{f.cd19_status}",
                f"CD19 {f.cd19_status}: check CD22 or dual-target trials.",
            )
        )
    if relapses == 1 and not _relapsed_after_hsct(f) and f.primary_refractory != "yes":
        reasons.append(
            Reason(
                "R5",
                "first_relapse",
                "B-ALL in first marrow relapse: off-label, payer-dependent; physician review.",
            )
        )
    if _isolated_extramedullary(f):
        reasons.append(
            Reason(
                "R5",
                "isolated_extramedullary_relapse",
                "Isolated extramedullary relapse: check trials; physician review.",
            )
        )
    return reasons


def _category(
    f: TriageInput, r1_missing: list[str], received_on: date, th: Thresholds
) -> tuple[str, list[Reason]]:
    if r1_missing or _r2_missing(f):
        return NEEDS_INFO, _needs_info_reasons(f, r1_missing)
    infusion_on = received_on + timedelta(weeks=th.infusion_projection_weeks)
    if (
        f.date_of_birth is not None
        and age_in_years(f.date_of_birth, infusion_on) > th.max_age_years
    ):
        return LIKELY_INELIGIBLE_AGE, [
            Reason(
                "R3",
                "age_over_max",
                f"Over {th.max_age_years} at projected infusion "
                f"(receipt + {th.infusion_projection_weeks} weeks): adult program; check trials.",
            )
        ]
    r4 = _r4_reasons(f, th)
    if r4:
        return LIKELY_ELIGIBLE_COMMERCIAL, r4
    r5 = _r5_reasons(f, th)
    if r5:
        return POSSIBLE_TRIAL, r5
    return LIKELY_INELIGIBLE_REDIRECT, [
        Reason(
            "R8",
            "no_qualifying_relapse",
            "No refractory disease or qualifying relapse recorded: physician review for "
            "redirect or second opinion.",
        )
    ]


def _hard_flags(f: TriageInput, received_on: date, th: Thresholds) -> list[Reason]:
    washout = timedelta(weeks=th.dli_washout_weeks)
    checks: list[tuple[bool, str, str]] = [
        (f.cns_status == "cns3", "cns3", "Active CNS3 disease."),
        (f.uncontrolled_infection == "yes", "uncontrolled_infection", "Uncontrolled infection."),
        (
            f.gvhd_grade is not None and f.gvhd_grade >= 2,
            "gvhd_grade_2_4",
            "GVHD grade 2-4.",
        ),
        (
            f.systemic_immunosuppression == "yes",
            "systemic_immunosuppression",
            "On systemic immunosuppression.",
        ),
        (
            f.dli_date is not None and received_on - f.dli_date < washout,
            "recent_dli",
            f"DLI within {th.dli_washout_weeks} weeks.",
        ),
        (f.hiv_hbv_hcv == "yes", "hiv_hbv_hcv", "HIV, HBV or HCV infection."),
        (f.pregnancy == "yes", "pregnancy", "Pregnancy."),
        (
            f.performance_score is not None and f.performance_score < th.min_performance_score,
            "low_performance_score",
            f"Lansky/Karnofsky below {th.min_performance_score}.",
        ),
    ]
    return [
        Reason("R6", code, f"Hard flag - physician review: {text}")
        for hit, code, text in checks
        if hit
    ]


def _young_age_flag(f: TriageInput, received_on: date, th: Thresholds) -> list[Reason]:
    if f.date_of_birth is None:
        return []
    if age_in_years(f.date_of_birth, received_on) >= th.young_age_flag_years:
        return []
    return [
        Reason(
            "R7",
            "young_age",
            f"Under {th.young_age_flag_years} years at receipt: flag only, not an exclusion.",
        )
    ]


def _early_post_hsct_relapse(f: TriageInput, th: Thresholds) -> bool:
    if f.had_hsct == "no" or f.hsct_date is None or f.relapse_date is None:
        return False
    return f.relapse_date > f.hsct_date and (
        whole_months_between(f.hsct_date, f.relapse_date) < th.early_post_hsct_relapse_months
    )


def _p1_reasons(f: TriageInput, th: Thresholds) -> list[Reason]:
    checks: list[tuple[bool, str, str]] = [
        (
            f.marrow_blasts_pct is not None and f.marrow_blasts_pct >= th.high_blasts_pct,
            "high_marrow_blasts",
            f"Marrow blasts {th.high_blasts_pct:g}% or more.",
        ),
        (f.rising_peripheral_blasts, "rising_peripheral_blasts", "Rising peripheral blasts."),
        (f.icu, "icu", "In intensive care."),
        (f.inpatient and not f.icu, "inpatient", "Currently inpatient."),
        (
            _early_post_hsct_relapse(f, th),
            "early_post_hsct_relapse",
            f"Relapse within {th.early_post_hsct_relapse_months} months of allo-HSCT.",
        ),
        (f.new_cns_symptoms, "new_cns_symptoms", "New CNS symptoms."),
        (
            f.referrer_marked_urgent and bool(f.urgency_reason.strip()),
            "referrer_marked_urgent",
            "Referrer marked the referral urgent and gave a reason.",
        ),
    ]
    return [Reason("P1", code, f"Urgent: {text}") for hit, code, text in checks if hit]


def _priority(category: str, urgent: bool) -> str:
    if urgent:
        return "P1"
    if category in (LIKELY_ELIGIBLE_COMMERCIAL, POSSIBLE_TRIAL):
        return "P2"
    return "P3"


def triage(
    facts: TriageInput,
    calendar: BusinessCalendar,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> TriageResult:
    """Apply R0-R8 and P1-P3 to ``facts``; see the module docstring for the rules."""
    if facts.kind == "existing_patient_message":
        # No eligibility triage and no review clock, but the acknowledgement clock runs: the
        # family was told to expect contact within 1 business day (decision 4).
        return TriageResult(
            category=CARE_TEAM,
            priority=None,
            reasons=(
                Reason("R0", "existing_patient", "Existing-patient message: care team, no triage."),
            ),
            missing_items=(),
            hard_flags=(),
            review_due_at=None,
            ack_due_at=calendar.deadline(facts.received_at, ACK_BUSINESS_DAYS),
            rules_version=RULES_VERSION,
        )
    received_on = calendar.local_date(facts.received_at)
    r1_missing = _star_missing(facts)
    category, category_reasons = _category(facts, r1_missing, received_on, thresholds)
    flags = _hard_flags(facts, received_on, thresholds)
    p1 = _p1_reasons(facts, thresholds)
    priority = _priority(category, bool(p1))
    review_due_at = None
    if category != NEEDS_INFO:
        clock_start = facts.packet_complete_at or facts.received_at
        review_due_at = calendar.deadline(clock_start, REVIEW_BUSINESS_DAYS[priority])
    return TriageResult(
        category=category,
        priority=priority,
        reasons=(
            *category_reasons,
            *flags,
            *_young_age_flag(facts, received_on, thresholds),
            *p1,
        ),
        missing_items=missing_items(facts),
        hard_flags=tuple(reason.code for reason in flags),
        review_due_at=review_due_at,
        ack_due_at=calendar.deadline(facts.received_at, ACK_BUSINESS_DAYS),
        rules_version=RULES_VERSION,
    )
