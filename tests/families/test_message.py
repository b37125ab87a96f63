"""Messages from existing patients' families: validation, matching to the child's case, rule
R0 (the care team's queue, never eligibility triage) and the family's acknowledgement."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake.domain.reference import format_reference, is_valid_reference
from intake.extensions import db
from intake.models import FamilyMessage, Notification, OutboxEvent, Referral
from intake.services import referrals
from intake.services.referrals import Submission, submit_referral
from tests.families.family_data import CHILD_DOB, CHILD_FAMILY, CHILD_GIVEN, message
from tests.i18n.catalogue import ensure_compiled
from tests.referral_data import valid_referral


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["CARE_TEAM_EMAILS"] = ["care-team@program.test"]
    return app_config


def post(client: FlaskClient, data: dict[str, Any]) -> Any:
    return client.post("/message", data={"submission_id": str(uuid.uuid4()), **data})


def count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def existing_case(app: Flask, **overrides: Any) -> Referral:
    """A physician referral for the same child, as the family's existing case."""
    answers = valid_referral(
        patient_given_name=CHILD_GIVEN,
        patient_family_name=CHILD_FAMILY,
        patient_dob=CHILD_DOB,
        **overrides,
    )
    with app.app_context():
        referral, _created = submit_referral(Submission(str(uuid.uuid4()), answers))
        db.session.expunge(referral)
        return referral


def the_message(app: Flask) -> tuple[Referral, FamilyMessage]:
    with app.app_context():
        case = db.session.scalars(
            sa.select(Referral).where(Referral.kind == "existing_patient_message")
        ).one()
        row = db.session.scalars(sa.select(FamilyMessage)).one()
        db.session.expunge_all()
        return case, row


def test_page_says_not_for_emergencies(client: FlaskClient) -> None:
    html = client.get("/message").get_data(as_text=True)
    assert "not for emergencies" in html and "+1 (555) 010-0199" in html
    for name in ("patient_dob", "case_reference", "mrn", "topic", "message"):
        assert f'id="{name}-group"' in html, name


def test_message_goes_to_the_care_team_without_eligibility_triage(
    app: Flask, client: FlaskClient
) -> None:
    response = post(client, message())
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/message/sent")
    assert "reference" in client.get("/message/sent").get_data(as_text=True)
    case, row = the_message(app)
    assert case.kind == "existing_patient_message"
    assert case.disease == "" and case.referrer_email == ""
    assert row.topic == "medication" and row.state == "new"
    assert row.match_method == "unmatched" and row.matched_case_id is None
    with app.app_context():
        assert [e.task_name for e in db.session.scalars(sa.select(OutboxEvent))].count(
            "referrals.triage"
        ) == 1
        assert referrals.run_triage(case.id) == "triaged"
        triaged = db.session.get(Referral, case.id)
        assert triaged is not None
        assert triaged.triage_category == "care_team"
        assert triaged.triage_priority is None
        assert triaged.missing_items == [] and triaged.hard_flags == []
        assert [r["rule_id"] for r in triaged.triage_reasons] == ["R0"]
        assert triaged.review_due_at is None
        # The family is promised contact within 1 business day: the acknowledgement clock runs.
        assert triaged.ack_due_at is not None and triaged.ack_due_at > triaged.created_at
        kinds = {n.kind: n for n in db.session.scalars(sa.select(Notification))}
        assert set(kinds) == {"family_message_acknowledgement", "family_message_new"}
        assert kinds["family_message_new"].recipients == ["care-team@program.test"]
        assert kinds["family_message_acknowledgement"].recipients == ["jorge.ramirez@example.net"]
        assert kinds["family_message_acknowledgement"].language == "en"


def test_reference_and_date_of_birth_match_the_family_case(app: Flask, client: FlaskClient) -> None:
    case = existing_case(app)
    typed = format_reference(case.reference).lower()
    assert post(client, message(case_reference=typed)).status_code == 303
    message_case, row = the_message(app)
    assert row.match_method == "reference"
    assert row.matched_case_id == case.id
    assert message_case.linked_case_id == case.id


def test_a_reference_with_another_date_of_birth_is_not_a_match(
    app: Flask, client: FlaskClient
) -> None:
    other = existing_case(app)
    data = message(
        case_reference=format_reference(other.reference),
        patient_given_name="Lucas",
        patient_family_name="Ortega",
        patient_dob="2012-01-30",
    )
    assert post(client, data).status_code == 303
    _case, row = the_message(app)
    assert row.match_method == "unmatched" and row.matched_case_id is None


def test_without_a_reference_the_same_child_open_case_is_matched(
    app: Flask, client: FlaskClient
) -> None:
    case = existing_case(app)
    # Accents, case and spacing differ: the normalized name still matches (decision 12).
    data = message(patient_given_name="SOFIA", patient_family_name="ramirez  lopez")
    assert post(client, data).status_code == 303
    _message_case, row = the_message(app)
    assert row.match_method == "same_child"
    assert row.matched_case_id == case.id


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"message": None}, "message", "Write your message"),
        ({"message": "x" * 2001}, "message", "2000 characters"),
        ({"topic": None}, "topic", "Choose one"),
        ({"topic": "refill-now"}, "topic", "Not a valid choice"),
        ({"patient_dob": "09/07/2015"}, "patient_dob", "YYYY-MM-DD"),
        ({"case_reference": "NOT-A-REF"}, "case_reference", "Check the reference"),
        ({"family_email": "jorge\r\nBcc: x@evil.test"}, "family_email", "hidden characters"),
        ({"requester_name": "Jorge\x00"}, "requester_name", "null byte"),
    ],
)
def test_bad_message_input_is_refused_and_nothing_stored(
    app: Flask, client: FlaskClient, overrides: dict[str, Any], field: str, text: str
) -> None:
    response = post(client, message(**overrides))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f'href="#{field}"' in html and text in html
    assert "Jorge Ramírez" in html or "requester_name" in overrides
    assert count(app, Referral) == 0
    assert count(app, FamilyMessage) == 0
    assert count(app, OutboxEvent) == 0


def test_reference_hint_and_error_give_a_real_reference_as_the_example(
    client: FlaskClient,
) -> None:
    example = re.compile(r"for example ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{3})\.")
    hint = example.search(client.get("/message").get_data(as_text=True))
    assert hint is not None and is_valid_reference(hint.group(1))
    html = post(client, message(case_reference="ABCD-EFGH-JK")).get_data(as_text=True)
    assert "it has 11 letters and numbers, like 7K3M-Q9TX-2HF" in html
    assert is_valid_reference("7K3M-Q9TX-2HF")
    assert "10 letters" not in html and "ABCD-EFGH-JK." not in html


def test_the_other_topic_reads_as_a_topic_in_spanish_not_an_illness(
    client: FlaskClient,
) -> None:
    ensure_compiled()
    html = client.get("/message?lang=es").get_data(as_text=True)
    topic = re.search(r'<select[^>]* id="topic".*?</select>', html, re.S)
    assert topic is not None
    assert '<option value="other">Otro tema</option>' in topic.group(0)
    assert "Otra enfermedad" not in topic.group(0)
    illness = client.get("/second-opinion").get_data(as_text=True)
    assert '<option value="other">Otra enfermedad</option>' in illness


@pytest.mark.parametrize("language", ["en", "es"])
def test_footer_speaks_to_parents_with_the_urgent_number(
    app: Flask, client: FlaskClient, language: str
) -> None:
    ensure_compiled()
    wording = {
        "en": "If your child needs urgent care, call",
        "es": "Si su hijo/a necesita atención urgente, llame al",
    }[language]
    for path in ("/message", "/second-opinion"):
        footer = _footer(client.get(f"{path}?lang={language}").get_data(as_text=True))
        assert wording in footer and app.config["URGENT_PHONE"] in footer, path
        assert "urgent referral" not in footer and "derivación urgente" not in footer, path
    clinicians = _footer(client.get("/refer").get_data(as_text=True))
    assert app.config["URGENT_PHONE"] in clinicians and wording not in clinicians


def _footer(html: str) -> str:
    found = re.search(r'<footer class="site-footer">(.*?)</footer>', html, re.S)
    assert found is not None
    return found.group(1)
