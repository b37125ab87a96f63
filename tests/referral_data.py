"""A complete, realistic physician referral: a child with relapsed B-ALL after transplant."""

from __future__ import annotations

from typing import Any

PATIENT_GIVEN = "Mateo"
PATIENT_FAMILY = "Núñez-O'Brien"
PATIENT_DOB = "2016-03-14"


def valid_referral(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "referrer_name": "Dr. Amelia Okafor",
        "referrer_credentials": "MD",
        "referrer_country": "US",
        "referrer_npi": "1234567893",
        "referrer_institution": "Riverside Children's Hospital",
        "referrer_phone": "215-590-3000",
        "referrer_fax": "215-590-3001",
        "referrer_email": "a.okafor@riverside-childrens.org",
        "coordinator_name": "Sam Lee",
        "coordinator_email": "referrals@riverside-childrens.org",
        "is_treating_oncologist": "yes",
        "patient_given_name": PATIENT_GIVEN,
        "patient_family_name": PATIENT_FAMILY,
        "patient_dob": PATIENT_DOB,
        "patient_sex": "male",
        "patient_country": "US",
        "patient_zip": "19104",
        "patient_language": "es",
        "interpreter_needed": "yes",
        "guardian_name": "Lucía Núñez",
        "guardian_relationship": "mother",
        "guardian_phone": "215-590-3002",
        "guardian_email": "lucia.nunez@example.org",
        "payer_type": "medicaid_chip",
        "member_id": "PA1234567",
        "disease": "b_all",
        "diagnosis_date": "2021-05-02",
        "icd10": "C91.02",
        "cd19_status": "positive",
        "cd22_status": "positive",
        "immunophenotype_date": "2026-10-20",
        "measured_after_targeted_therapy": "yes",
        "primary_refractory": "no",
        "marrow_relapse_count": "2",
        "relapse_sites": ["marrow"],
        "relapse_date": "2026-10-15",
        "had_hsct": "yes",
        "hsct_date": "2025-08-01",
        "blinatumomab": "yes",
        "blinatumomab_response": "no_response",
        "inotuzumab": "no",
        "prior_car_t": "no",
        "prior_gene_therapy": "no",
        "marrow_blasts_pct": "35",
        "marrow_date": "2026-10-15",
        "mrd_result": "positive",
        "mrd_value": "12.5",
        "mrd_date": "2026-10-15",
        "cns_status": "cns1",
        "cns_date": "2026-10-16",
        "extramedullary_disease": "no",
        "performance_score": "80",
        "uncontrolled_infection": "no",
        "hiv_hbv_hcv": "no",
        "gvhd_grade": "0",
        "systemic_immunosuppression": "no",
        "pregnancy": "not_applicable",
        "request_type": "car_t_evaluation",
        "question": "Is he a candidate for tisagenlecleucel, or for a CD22 trial?",
        "family_informed": "yes",
    }
    data.update(overrides)
    return data


# Values that must never appear in an email, a log line or a task argument.
PHI_VALUES = [
    PATIENT_GIVEN,
    PATIENT_FAMILY,
    "Núñez",
    PATIENT_DOB,
    "03/14/2016",
    "B-ALL",
    "b_all",
    "C91.02",
    "Lucía",
    "PA1234567",
]
