"""Realistic family submissions: a mother asking for a second opinion, a father writing in."""

from __future__ import annotations

import io
import re
from typing import Any

from pypdf import PdfReader

CHILD_GIVEN = "Sofía"
CHILD_FAMILY = "Ramírez-López"
CHILD_DOB = "2015-07-09"
PARENT_NAME = "María López Ramírez"
PARENT_EMAIL = "maria.lopez@example.net"

# Values that must never appear in an email.
FAMILY_PHI = [
    CHILD_GIVEN,
    CHILD_FAMILY,
    CHILD_DOB,
    "07/09/2015",
    PARENT_NAME,
    "Ramírez",
    "leukemia",
    "Leucemia",
    "B-ALL",
    "Dr. Hannah Whitfield",
    "Lakeside Children's Hospital",
    "615-555-0142",
]


def second_opinion(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "requester_name": PARENT_NAME,
        "requester_relationship": "mother",
        "legal_authority": "y",
        "family_email": PARENT_EMAIL,
        "family_email_consent": "y",
        "family_phone": "615-555-0100",
        "contact_methods": ["email", "text"],
        "preferred_language": "es",
        "interpreter_needed": "no",
        "patient_given_name": CHILD_GIVEN,
        "patient_family_name": CHILD_FAMILY,
        "patient_dob": CHILD_DOB,
        "patient_zip": "37203",
        "diagnosis_lay": "b_all",
        "diagnosis_details": "Diagnosed in 2021, relapsed in October after chemotherapy.",
        "relapsed": "yes",
        "had_hsct": "no",
        "prior_car_t": "no",
        "current_hospital": "Lakeside Children's Hospital",
        "oncologist_name": "Dr. Hannah Whitfield",
        "oncologist_phone": "615-555-0142",
        "oncologist_email": "h.whitfield@lakeside-childrens.org",
        "hopes": "Whether CAR T-cell therapy is an option now.",
        "payer_type": "commercial",
        "payer_name": "BlueCross",
        "member_id": "ZXK123456789",
        "records_choice": "request",
        "authorize_release": "y",
        "signature_name": PARENT_NAME,
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def message(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "requester_name": "Jorge Ramírez",
        "requester_relationship": "father",
        "family_email": "jorge.ramirez@example.net",
        "family_email_consent": "y",
        "preferred_language": "en",
        "patient_given_name": CHILD_GIVEN,
        "patient_family_name": CHILD_FAMILY,
        "patient_dob": CHILD_DOB,
        "topic": "medication",
        "message": "Sofía's prescription for dexamethasone runs out on Friday.",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def pdf_text(data: bytes) -> str:
    """The PDF's text with whitespace collapsed (line wrapping is layout, not content)."""
    reader = PdfReader(io.BytesIO(data))
    text = " ".join(page.extract_text() or "" for page in reader.pages)
    return re.sub(r"\s+", " ", text)


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def assert_every_element(text: str, signed: Any, signer: str, ip: str) -> None:
    """164.508(c) core elements and required statements, as signed."""
    for section in signed.sections:
        assert collapse(section["title"]) in text, section["code"]
        assert collapse(section["body"]) in text, section["code"]
    for detail in (
        "Sofía Ramírez-López",  # the patient
        CHILD_DOB,
        "Lakeside Children's Hospital",  # from whom
        "Dr. Hannah Whitfield",
        "Records to: Cellular Therapy Program",  # to whom
        "Purpose: Second-opinion review",
        f"Expires on: {signed.expires_on.isoformat()}",
        f"Signed electronically by: {signer}",
        "Relationship to the patient: Mother",
        "Legal authority: Confirmed by the signer",
        signed.signed_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        f"IP address: {ip}",
        signed.text_sha256,
        signed.text_version,
    ):
        assert detail in text, detail
    for phrase in ("revoke", "voluntary", "share them again", "copy", "One year"):
        assert phrase in text, phrase
