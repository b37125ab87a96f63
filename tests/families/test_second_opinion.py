"""The second-opinion form: what it shows, what it stores, and every way it refuses input
(a field error, the family's answers kept, nothing stored, never a 500)."""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake.extensions import db
from intake.models import (
    Authorization,
    Document,
    Notification,
    OutboxEvent,
    Referral,
)
from intake.services import authorization, referrals, uploads
from tests.families.family_data import (
    CHILD_DOB,
    PARENT_EMAIL,
    PARENT_NAME,
    assert_every_element,
    collapse,
    pdf_text,
    second_opinion,
)
from tests.i18n.catalogue import ensure_compiled
from tests.samples import tiny_pdf

SUBMISSION_ID = "7c0e4f1a-0d3b-4c1e-9a55-2f6b2b9d7e10"


def post(client: FlaskClient, data: dict[str, Any], **kwargs: Any) -> Any:
    form = {"submission_id": SUBMISSION_ID, **data}
    return client.post("/second-opinion", data=form, content_type="multipart/form-data", **kwargs)


def stored(app: Flask) -> dict[str, int]:
    with app.app_context():
        counts = {
            model.__tablename__: int(
                db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0
            )
            for model in (Referral, Document, Notification, OutboxEvent, Authorization)
        }
    upload_dir = Path(app.config["UPLOAD_DIR"])
    counts["blobs"] = (
        len([p for p in upload_dir.rglob("*") if p.is_file()]) if upload_dir.exists() else 0
    )
    return counts


NOTHING = {
    "referral": 0,
    "document": 0,
    "notification": 0,
    "outbox_event": 0,
    "records_authorization": 0,
    "blobs": 0,
}


def test_page_is_plain_says_not_for_emergencies_and_shows_the_whole_authorization(
    client: FlaskClient,
) -> None:
    page = client.get("/second-opinion")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "not for emergencies" in html
    assert "+1 (555) 010-0199" in html
    assert 'name="submission_id"' in html
    for name in (
        "requester_name",
        "requester_relationship",
        "legal_authority",
        "family_email_consent",
        "preferred_language",
        "interpreter_needed",
        "patient_dob",
        "patient_zip",
        "diagnosis_lay",
        "oncologist_name",
        "oncologist_phone",
        "hopes",
        "payer_type",
        "records_choice",
        "doc_records",
        "authorize_release",
        "signature_name",
    ):
        assert f'id="{name}-group"' in html, name
    for section in authorization.sections("en", "Cellular Therapy Program"):
        assert section["title"] in html
        assert collapse(section["body"]).replace("'", "&#39;") in collapse(html)
    assert page.headers["Cache-Control"] == "no-store"


def test_valid_request_is_stored_with_its_signed_authorization_and_follow_ups(
    app: Flask, client: FlaskClient
) -> None:
    response = post(client, second_opinion(), environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/second-opinion/submitted")
    confirmation = client.get(response.headers["Location"])
    assert confirmation.status_code == 200
    with app.app_context():
        referral = db.session.scalars(sa.select(Referral)).one()
        assert confirmation.get_data(as_text=True).count(referral.reference[:4]) >= 1
        assert referral.kind == "second_opinion"
        assert referral.status == "received"
        assert referral.disease == "b_all"
        assert referral.preferred_language == "es"
        assert referral.patient_dob.isoformat() == CHILD_DOB
        assert referral.referrer_email == "h.whitfield@lakeside-childrens.org"
        assert referral.answers["family_email"] == PARENT_EMAIL
        assert referral.answers["family_email_consent"] is True
        assert referral.answers["contact_methods"] == ["email", "text"]
        assert "signature_name" not in referral.answers

        signed = db.session.scalars(sa.select(Authorization)).one()
        assert signed.referral_id == referral.id
        assert signed.signer_name == PARENT_NAME
        assert signed.signer_relationship == "mother"
        assert signed.signer_ip == "203.0.113.7"
        assert signed.signed_at is not None
        assert (signed.expires_on - authorization.program_date(signed.signed_at)).days == 365
        assert signed.text_version == authorization.TEXT_VERSION
        assert signed.language == "en"  # the language the text was shown in
        assert [s["code"] for s in signed.sections] == list(authorization.ELEMENT_CODES)
        assert signed.text_sha256 == authorization.text_hash(signed.sections)
        assert signed.document_id is None  # the worker makes the PDF

        tasks = sorted(
            (e.task_name, e.args[0])
            for e in db.session.scalars(sa.select(OutboxEvent))
            if e.task_name != "notify.send"
        )
        assert tasks == [
            ("families.authorization_pdf", signed.id),
            ("referrals.triage", referral.id),
        ]
        acknowledgement = db.session.scalars(sa.select(Notification)).one()
        assert acknowledgement.kind == "family_acknowledgement"
        assert acknowledgement.recipients == [PARENT_EMAIL]
        assert acknowledgement.language == "es"


def test_double_submit_returns_the_same_request(app: Flask, client: FlaskClient) -> None:
    first = post(client, second_opinion())
    again = post(client, second_opinion())
    assert first.status_code == again.status_code == 303
    assert stored(app)["referral"] == 1
    assert stored(app)["records_authorization"] == 1
    assert stored(app)["notification"] == 1
    conflict = post(client, second_opinion(hopes="Something else entirely."))
    assert conflict.status_code == 409
    assert stored(app)["referral"] == 1


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"legal_authority": None}, "legal_authority", "legal authority to consent"),
        ({"authorize_release": None}, "authorize_release", "authorize the release"),
        ({"signature_name": None}, "signature_name", "Type your full name to sign"),
        ({"signature_name": "Someone Else"}, "signature_name", "exactly as you entered"),
        ({"requester_name": None}, "requester_name", "This field is required"),
        ({"requester_relationship": None}, "requester_relationship", "Choose one"),
        ({"patient_dob": "2015-02-30"}, "patient_dob", "This date does not exist"),
        ({"patient_dob": "2015-13-01"}, "patient_dob", "This date does not exist"),
        ({"patient_dob": "30/02/2015"}, "patient_dob", "YYYY-MM-DD"),
        ({"patient_dob": "2099-01-01"}, "patient_dob", "not in the future"),
        ({"patient_dob": None}, "patient_dob", "Enter a date"),
        ({"patient_given_name": "Sof\u202eía"}, "patient_given_name", "text-direction"),
        ({"family_email": "maria@example"}, "family_email", "valid email"),
        ({"family_email": None, "family_phone": None}, "family_email", "email address or a phone"),
        ({"family_phone": "12"}, "family_phone", "valid phone"),
        ({"family_phone": None, "contact_methods": ["text"]}, "family_phone", "text messages"),
        ({"patient_zip": "3720"}, "patient_zip", "5-digit ZIP"),
        ({"diagnosis_lay": "ebola"}, "diagnosis_lay", "Not a valid choice"),
        ({"diagnosis_lay": None}, "diagnosis_lay", "Choose one"),
        ({"oncologist_email": "doctor@"}, "oncologist_email", "valid email"),
        ({"hopes": "x" * 2001}, "hopes", "2000 characters"),
        ({"records_choice": "upload"}, "doc_records", "Attach the records"),
        ({"preferred_language": "other"}, "preferred_language_other", "which language"),
        ({"requester_relationship": "self"}, "requester_relationship", "under 18"),
        (
            {"patient_dob": "2001-01-01", "requester_relationship": "mother"},
            "requester_relationship",
            "18 or older",
        ),
    ],
)
def test_bad_input_gets_a_field_error_keeps_answers_and_stores_nothing(
    app: Flask, client: FlaskClient, overrides: dict[str, Any], field: str, message: str
) -> None:
    response = post(client, second_opinion(**overrides))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'class="error-summary"' in html
    assert f'href="#{field}"' in html, field
    assert message in html
    assert f'id="{field}-error"' in html
    assert "Whether CAR T-cell therapy is an option now." in html or "hopes" in overrides
    assert "Lakeside Children&#39;s Hospital" in html
    assert stored(app) == NOTHING


def test_a_file_that_is_not_what_it_claims_is_refused_and_nothing_is_stored(
    app: Flask, client: FlaskClient
) -> None:
    data = second_opinion(records_choice="upload")
    data["doc_records"] = (io.BytesIO(b"<html><script>alert(1)</script></html>"), "scan.pdf")
    response = post(client, data)
    assert response.status_code == 422
    assert "is not a PDF, PNG or JPEG file" in response.get_data(as_text=True)
    assert stored(app) == NOTHING


def test_uploaded_records_are_kept_encrypted_with_the_case(app: Flask, client: FlaskClient) -> None:
    data = second_opinion(records_choice="upload")
    data["doc_records"] = (io.BytesIO(tiny_pdf()), "summary.pdf")
    assert post(client, data).status_code == 303
    with app.app_context():
        document = db.session.scalars(sa.select(Document)).one()
        assert document.slot == "records"
        blob = Path(app.config["UPLOAD_DIR"]) / document.storage_key[:2] / document.storage_key
        assert not blob.read_bytes().startswith(b"%PDF")
        assert uploads.load(document.storage_key, document.sha256, app.config) == tiny_pdf()


def test_honeypot_and_repeated_fields_are_refused(app: Flask, client: FlaskClient) -> None:
    assert post(client, second_opinion(website="http://spam.test")).status_code == 400
    repeated = second_opinion()
    repeated["patient_dob"] = [CHILD_DOB, "2014-01-01"]
    response = post(client, repeated)
    assert response.status_code == 422
    assert "sent more than once" in response.get_data(as_text=True)
    assert stored(app) == NOTHING


def test_extra_fields_cannot_set_status_or_kind(app: Flask, client: FlaskClient) -> None:
    data = second_opinion(status="accepted", kind="physician_referral", assignee_id="1")
    assert post(client, data).status_code == 303
    with app.app_context():
        referral = db.session.scalars(sa.select(Referral)).one()
        assert (referral.status, referral.kind, referral.assignee_id) == (
            "received",
            "second_opinion",
            None,
        )
        assert "status" not in referral.answers


def test_without_email_consent_no_email_is_queued(app: Flask, client: FlaskClient) -> None:
    assert post(client, second_opinion(family_email_consent=None)).status_code == 303
    assert stored(app)["notification"] == 0


def test_missing_csrf_token_shows_the_form_again_with_answers(app_config: dict[str, Any]) -> None:
    from intake import create_app

    app_config["WTF_CSRF_ENABLED"] = True
    app = create_app(app_config)
    response = app.test_client().post(
        "/second-opinion",
        data={"submission_id": SUBMISSION_ID, **second_opinion()},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "session expired" in html
    assert "Lakeside Children&#39;s Hospital" in html
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Referral)) == 0
        db.session.remove()
        db.engine.dispose()


def _submit(app: Flask, client: FlaskClient, **overrides: Any) -> int:
    assert post(client, second_opinion(**overrides)).status_code == 303
    with app.app_context():
        return int(db.session.scalars(sa.select(Referral.id)).one())


def test_triage_r2_asks_for_the_oncologist_when_the_family_gives_no_contact(
    app: Flask, client: FlaskClient
) -> None:
    referral_id = _submit(
        app, client, oncologist_name=None, oncologist_phone=None, oncologist_email=None
    )
    with app.app_context():
        assert referrals.run_triage(referral_id) == "triaged"
        referral = db.session.get(Referral, referral_id)
        assert referral is not None
        assert referral.triage_category == "needs_info"
        assert "oncologist_contact" in referral.missing_items
        assert "R2" in {reason["rule_id"] for reason in referral.triage_reasons}
        coordinator = db.session.scalars(
            sa.select(Notification).where(Notification.kind == "coordinator_new_case")
        ).one()
        assert coordinator.recipients == ["coordinators@program.test"]


def test_triage_with_the_oncologist_contact_has_no_r2(app: Flask, client: FlaskClient) -> None:
    referral_id = _submit(app, client)
    with app.app_context():
        referrals.run_triage(referral_id)
        referral = db.session.get(Referral, referral_id)
        assert referral is not None
        assert referral.triaged_at is not None
        assert "oncologist_contact" not in referral.missing_items
        assert "R2" not in {reason["rule_id"] for reason in referral.triage_reasons}


def test_second_opinions_route_to_their_own_coordinators_when_configured(
    app_config: dict[str, Any],
) -> None:
    from intake import create_app
    from intake.services.routing import seed_routing

    app_config["SECOND_OPINION_EMAILS"] = ["second-opinions@program.test"]
    app = create_app(app_config)
    with app.app_context():
        seed_routing(app.config)
    client = app.test_client()
    try:
        referral_id = _submit(app, client)
        with app.app_context():
            referrals.run_triage(referral_id)
            coordinator = db.session.scalars(
                sa.select(Notification).where(Notification.kind == "coordinator_new_case")
            ).one()
            assert coordinator.recipients == ["second-opinions@program.test"]
    finally:
        with app.app_context():
            from tests.conftest import _empty_tables

            db.session.remove()
            _empty_tables()
            db.engine.dispose()


@pytest.mark.parametrize(
    "font",
    ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/nonexistent/NoSuchFont.ttf"],
    ids=["configured", "builtin"],
)
def test_authorization_pdf_carries_every_required_element_and_is_made_once(
    app: Flask, client: FlaskClient, font: str
) -> None:
    # With or without a Unicode TrueType font on the machine (the built-in fonts are Latin-1).
    app.config["PDF_FONT"] = font
    post(client, second_opinion(), environ_base={"REMOTE_ADDR": "198.51.100.23"})
    with app.app_context():
        signed = db.session.scalars(sa.select(Authorization)).one()
        assert authorization.generate_pdf(signed.id) == "generated"
        assert authorization.generate_pdf(signed.id) == "already_generated"
        signed = db.session.scalars(sa.select(Authorization)).one()
        document = db.session.scalars(
            sa.select(Document).where(Document.slot == "authorization")
        ).one()
        assert signed.document_id == document.id
        assert document.mime_type == "application/pdf"
        data = uploads.load(document.storage_key, document.sha256, app.config)
        assert data.startswith(b"%PDF")
        text = pdf_text(data)
        assert_every_element(text, signed, PARENT_NAME, "198.51.100.23")


def test_reconcile_requeues_a_missing_pdf_but_not_a_made_one(
    app: Flask, client: FlaskClient
) -> None:
    post(client, second_opinion())
    later = datetime.now(UTC) + timedelta(minutes=10)

    def pdf_events() -> int:
        return sum(
            1
            for event in db.session.scalars(sa.select(OutboxEvent))
            if event.task_name == authorization.PDF_TASK
        )

    with app.app_context():
        signed_id = db.session.scalars(sa.select(Authorization.id)).one()
        assert pdf_events() == 1
        assert referrals.reconcile(now=later)["authorization_pdfs"] == 1
        assert pdf_events() == 2
        # Queued again just now: the next sweep leaves it alone.
        assert referrals.reconcile(now=later)["authorization_pdfs"] == 0
        authorization.generate_pdf(signed_id)
        assert referrals.reconcile(now=later + timedelta(minutes=10))["authorization_pdfs"] == 0


def test_information_requests_go_only_to_addresses_the_case_has(
    app: Flask, client: FlaskClient
) -> None:
    from intake.services import info_requests

    post(client, second_opinion(oncologist_email=None))
    with app.app_context():
        referral = db.session.scalars(sa.select(Referral)).one()
        assert referral.referrer_email == ""
        assert [code for code, _label in info_requests.audience_choices(referral)] == ["family"]


def test_acknowledgements_to_one_address_are_capped_per_day(
    app: Flask, client: FlaskClient
) -> None:
    app.config["ACK_DAILY_CAP"] = 1
    for given in ("Sofía", "Lucas"):
        data = {"submission_id": str(uuid.uuid4()), **second_opinion(patient_given_name=given)}
        response = client.post("/second-opinion", data=data, content_type="multipart/form-data")
        assert response.status_code == 303
    assert stored(app)["referral"] == 2
    assert stored(app)["notification"] == 1


def test_markup_and_template_syntax_are_stored_literally(app: Flask, client: FlaskClient) -> None:
    payload = '<script>alert(1)</script> {{7*7}} "><img src=x onerror=alert(1)>'
    assert post(client, second_opinion(diagnosis_details=payload)).status_code == 303
    with app.app_context():
        referral = db.session.scalars(sa.select(Referral)).one()
        assert referral.answers["diagnosis_details"] == payload
    shown = post(client, second_opinion(diagnosis_details=payload, legal_authority=None))
    html = shown.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "{{7*7}}" in html


def test_signed_in_spanish_the_authorization_and_its_pdf_are_in_spanish(
    app: Flask, client: FlaskClient
) -> None:
    ensure_compiled()
    page = client.get("/second-opinion?lang=es").get_data(as_text=True)
    assert "Quién puede compartirla" in page
    assert post(client, second_opinion()).status_code == 303
    with app.app_context():
        signed = db.session.scalars(sa.select(Authorization)).one()
        assert signed.language == "es"
        assert signed.sections == authorization.sections("es", "Cellular Therapy Program")
        assert signed.sections != authorization.sections("en", "Cellular Therapy Program")
        authorization.generate_pdf(signed.id)
        document = db.session.scalars(sa.select(Document)).one()
        text = pdf_text(uploads.load(document.storage_key, document.sha256, app.config))
        for section in signed.sections:
            assert collapse(section["body"]) in text, section["code"]
        assert "Sofía Ramírez-López" in text and "Relationship to the patient" not in text


def test_expiry_counts_from_the_programs_date_of_signing(app: Flask) -> None:
    """Signed at 9 p.m. in New York (already tomorrow in UTC): a year from the day the parent
    signed, the date the expiry check reads in."""
    evening = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 25 Nov, 21:00 in New York
    morning = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # 25 Nov, 09:00 in New York
    with app.app_context():
        assert authorization.expiry_date(evening) == authorization.expiry_date(morning)
        assert authorization.expiry_date(evening).isoformat() == "2027-11-25"


def test_every_problem_is_named_at_once(app: Flask, client: FlaskClient) -> None:
    """No contact, no legal authority and no authorization: all three named in one answer."""
    data = second_opinion(family_email="", family_phone="")
    for checkbox in ("legal_authority", "authorize_release"):
        data.pop(checkbox, None)
    response = post(client, data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    for field in ("family_email", "legal_authority", "authorize_release"):
        assert f'id="{field}-error"' in html, field


@pytest.mark.parametrize(
    ("typed_name", "signature"),
    [
        ("María O'Brien", "María O\u2019Brien"),  # iOS smart punctuation
        ("María O'Brien", "Maria O'Brien"),  # no accents on this keyboard
        ("María O\u2019Brien", "maria o`brien"),
        ("María O'Brien", "MARÍA  O\u02bcBRIEN "),
        ("Ana López-Ramírez", "Ana Lopez\u2013Ramirez"),  # an en dash for the hyphen
        ("Ana López-Ramírez", "Ana Lo\u0301pez-Rami\u0301rez"),  # decomposed accents
    ],
)
def test_the_signature_matches_the_name_however_the_keyboard_types_it(
    app: Flask, client: FlaskClient, typed_name: str, signature: str
) -> None:
    data = second_opinion(requester_name=typed_name, signature_name=signature)
    response = post(client, data)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]


@pytest.mark.parametrize("signature", ["Mario O'Brien", "María OBrien", "María O'Brien-Ruiz"])
def test_a_signature_that_is_another_name_is_still_refused(
    app: Flask, client: FlaskClient, signature: str
) -> None:
    response = post(
        client, second_opinion(requester_name="María O'Brien", signature_name=signature)
    )
    assert response.status_code == 422
    assert "exactly as you entered" in response.get_data(as_text=True)
    assert stored(app) == NOTHING


def test_required_checkboxes_are_marked_required_like_the_other_questions(
    client: FlaskClient,
) -> None:
    html = client.get("/second-opinion").get_data(as_text=True)
    for name in ("legal_authority", "authorize_release"):
        label = re.search(rf'<label for="{name}">(.*?)</label>', html, re.S)
        assert label is not None, name
        assert '<span class="req">(required)</span>' in label.group(1), name
    optional = re.search(r'<label for="inpatient">(.*?)</label>', html, re.S)
    assert optional is not None and "(required)" not in optional.group(1)


def test_error_summary_links_of_choice_groups_land_on_the_group(client: FlaskClient) -> None:
    data = second_opinion(
        records_choice="fax", relapsed="maybe", contact_methods=["email", "pigeon"]
    )
    html = post(client, data).get_data(as_text=True)
    for group in ("records_choice", "relapsed", "contact_methods"):
        assert f'href="#{group}"' in html, group
        assert re.search(rf'<fieldset id="{group}"[ >]', html), group


def test_records_hint_gives_the_limit_per_file_and_in_all(app: Flask, client: FlaskClient) -> None:
    html = collapse(client.get("/second-opinion").get_data(as_text=True))
    total = app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
    per_file, count = app.config["MAX_UPLOAD_MB"], app.config["MAX_UPLOAD_FILES"]
    assert f"each file up to {per_file} MB, at most {count} files and {total} MB in all" in html


def test_a_refused_request_says_its_files_must_be_attached_again(
    app: Flask, client: FlaskClient
) -> None:
    data = second_opinion(family_phone="12")
    data["doc_records"] = (io.BytesIO(tiny_pdf()), "records.pdf")
    response = post(client, data)
    assert response.status_code == 422
    assert "Attach them again before you send the form." in response.get_data(as_text=True)
