"""The referral form: the happy path, Post/Redirect/Get, double submits, and every bad input
of security.md §5 (rows 1–18 and 20–23): a clear field error, the user's input kept, nothing
stored, never a 500."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake.extensions import db
from intake.models import Document, Notification, OutboxEvent, Referral
from tests.referral_data import valid_referral
from tests.samples import tiny_jpeg, tiny_pdf, tiny_png

SUBMISSION_ID = "0b4f8a4e-2a59-4d0c-9a57-5b0d6a2f6c11"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config.update(MAX_UPLOAD_MB=2, MAX_UPLOAD_FILES=3, MAX_CONTENT_LENGTH=8 * 1024 * 1024)
    return app_config


def post(
    client: FlaskClient, data: dict[str, Any], files: dict[str, Any] | None = None, **kwargs: Any
) -> Any:
    form: dict[str, Any] = {"submission_id": SUBMISSION_ID, **data}
    for name, value in (files or {}).items():
        form[name] = value
    return client.post("/refer", data=form, content_type="multipart/form-data", **kwargs)


def stored(app: Flask) -> dict[str, int]:
    with app.app_context():
        counts = {
            model.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (Referral, Document, Notification, OutboxEvent)
        }
    upload_dir = Path(app.config["UPLOAD_DIR"])
    counts["blobs"] = len(list(upload_dir.rglob("*"))) if upload_dir.exists() else 0
    counts["blobs"] = (
        len([p for p in upload_dir.rglob("*") if p.is_file()]) if upload_dir.exists() else 0
    )
    return counts


NOTHING = {"referral": 0, "document": 0, "notification": 0, "outbox_event": 0, "blobs": 0}


def flow(data: bytes | None = None, name: str = "flow.pdf") -> tuple[io.BytesIO, str]:
    return io.BytesIO(tiny_pdf() if data is None else data), name


def test_form_page_has_labels_sections_and_emergency_notice(client: FlaskClient) -> None:
    page = client.get("/refer")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "not for emergencies" in html
    assert "+1 (555) 010-0199" in html
    for name in (
        "referrer_npi",
        "patient_dob",
        "marrow_blasts_pct",
        "cd19_status",
        "doc_flow_cytometry",
        "gvhd_grade",
        "urgency_reason",
    ):
        assert f'for="{name}"' in html or f'id="{name}-group"' in html, name
    assert 'name="submission_id"' in html
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_valid_referral_is_stored_with_outbox_and_redirects_to_confirmation(
    app: Flask, client: FlaskClient
) -> None:
    response = post(client, valid_referral(), {"doc_flow_cytometry": flow()})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/refer/submitted")
    page = client.get("/refer/submitted")
    assert page.status_code == 200
    with app.app_context():
        referral = db.session.scalars(sa.select(Referral)).one()
        assert referral.status == "received"
        assert referral.patient_family_name == "Núñez-O'Brien"
        assert referral.reference.replace("-", "") in page.get_data(as_text=True).replace("-", "")
        assert [d.slot for d in referral.documents] == ["flow_cytometry"]
        events = db.session.scalars(sa.select(OutboxEvent.task_name)).all()
        assert sorted(events) == ["notify.send", "referrals.triage"]
        assert all(
            isinstance(arg, (int, str)) and not str(arg).startswith("Mateo")
            for event in db.session.scalars(sa.select(OutboxEvent))
            for arg in event.args
        )
    counts = stored(app)
    assert counts["referral"] == 1 and counts["blobs"] == 1


def test_uploaded_blob_is_encrypted_and_verified(app: Flask, client: FlaskClient) -> None:
    post(client, valid_referral(), {"doc_flow_cytometry": flow()})
    from intake.services import uploads

    with app.app_context():
        document = db.session.scalars(sa.select(Document)).one()
        blob_path = next(Path(app.config["UPLOAD_DIR"]).rglob(document.storage_key))
        raw = blob_path.read_bytes()
        assert not raw.startswith(b"%PDF"), "blobs are encrypted at rest"
        assert uploads.load(document.storage_key, document.sha256, app.config) == tiny_pdf()
        assert "static" not in str(blob_path)


def test_resubmitting_the_same_submission_returns_the_same_referral(
    app: Flask, client: FlaskClient
) -> None:
    first = post(client, valid_referral(), {"doc_flow_cytometry": flow()})
    second = post(client, valid_referral(), {"doc_flow_cytometry": flow()})
    assert first.status_code == second.status_code == 303
    assert stored(app)["referral"] == 1
    assert stored(app)["notification"] == 1


def test_same_submission_id_with_other_answers_is_a_conflict(
    app: Flask, client: FlaskClient
) -> None:
    post(client, valid_referral())
    response = post(client, valid_referral(marrow_blasts_pct="60"))
    assert response.status_code == 409
    assert "already submitted with different answers" in response.get_data(as_text=True)
    assert stored(app)["referral"] == 1


def test_only_identity_fields_are_required(app: Flask, client: FlaskClient) -> None:
    minimal = {
        key: valid_referral()[key]
        for key in (
            "referrer_name",
            "referrer_country",
            "referrer_npi",
            "referrer_institution",
            "referrer_phone",
            "referrer_email",
            "patient_given_name",
            "patient_family_name",
            "patient_dob",
            "disease",
        )
    }
    assert post(client, minimal).status_code == 303
    assert stored(app)["referral"] == 1


def test_missing_required_fields_are_named(app: Flask, client: FlaskClient) -> None:
    response = post(client, {"patient_given_name": "Ana"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    for name in ("referrer_name", "referrer_email", "patient_dob", "disease"):
        assert f'id="{name}-error"' in html, name
    assert 'value="Ana"' in html, "what the user typed is kept"
    assert stored(app) == NOTHING


def test_npi_required_for_us_referrers_only(app: Flask, client: FlaskClient) -> None:
    response = post(client, valid_referral(referrer_npi=""))
    assert response.status_code == 422
    assert 'id="referrer_npi-error"' in response.get_data(as_text=True)
    ok = post(
        client,
        valid_referral(
            referrer_npi="",
            referrer_country="GB",
            referrer_phone="+44 20 7405 9200",
            referrer_fax="",
        ),
    )
    assert ok.status_code == 303


def test_missing_csrf_token_gives_400_and_a_resubmit_page(
    app_config: dict[str, Any], tmp_path: Path
) -> None:
    from intake import create_app

    app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    client = app.test_client()
    response = post(client, valid_referral(patient_given_name="Keep Me"))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "session expired" in html
    assert 'value="Keep Me"' in html
    assert 'name="csrf_token"' in html
    assert stored(app) == NOTHING
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# security.md §5: (row, field overrides, files, field that must carry the error)
BAD_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("2 over maxlength", {"patient_given_name": "A" * 101}, "patient_given_name"),
    (
        "4 RTL override in name",
        {"patient_family_name": "Smith\u202egnp.exe"},
        "patient_family_name",
    ),
    (
        "5 zero-width in email",
        {"referrer_email": "a.okafor\u200b@riverside.test"},
        "referrer_email",
    ),
    ("6 NUL byte", {"referrer_institution": "Riverside\x00"}, "referrer_institution"),
    ("10 CRLF header injection", {"referrer_name": "Jane\r\nBcc: x@evil.test"}, "referrer_name"),
    ("12 impossible date", {"patient_dob": "2025-02-30"}, "patient_dob"),
    ("12 month 13", {"patient_dob": "2025-13-01"}, "patient_dob"),
    ("12 not ISO", {"patient_dob": "30/02/2025"}, "patient_dob"),
    ("13 future DOB", {"patient_dob": "2999-01-01"}, "patient_dob"),
    ("14 year 0001", {"patient_dob": "0001-01-01"}, "patient_dob"),
    ("14 year 9999", {"patient_dob": "9999-12-31"}, "patient_dob"),
    ("15 negative percent", {"marrow_blasts_pct": "-5"}, "marrow_blasts_pct"),
    ("15 over 100", {"marrow_blasts_pct": "150"}, "marrow_blasts_pct"),
    ("15 NaN", {"marrow_blasts_pct": "NaN"}, "marrow_blasts_pct"),
    ("15 Infinity", {"mrd_value": "Infinity"}, "mrd_value"),
    ("15 1e309", {"marrow_blasts_pct": "1e309"}, "marrow_blasts_pct"),
    ("16 huge integer", {"marrow_relapse_count": "99999999999999999999"}, "marrow_relapse_count"),
    ("bad NPI check digit", {"referrer_npi": "1234567890"}, "referrer_npi"),
    ("bad phone", {"referrer_phone": "12"}, "referrer_phone"),
    ("26 a@b", {"referrer_email": "a@b"}, "referrer_email"),
    ("26 321 chars", {"referrer_email": "a" * 310 + "@example.org"}, "referrer_email"),
    ("bad ICD-10", {"icd10": "91.0C"}, "icd10"),
    ("date before birth", {"hsct_date": "2010-01-01"}, "hsct_date"),
    ("bad choice", {"disease": "leprosy"}, "disease"),
    ("performance not a multiple of 10", {"performance_score": "75"}, "performance_score"),
    # Once a 500: the multiple-of-10 check ran on text the number check had already refused.
    ("performance in words", {"performance_score": "setenta"}, "performance_score"),
    ("performance with decimals", {"performance_score": "70.5"}, "performance_score"),
    ("performance in exponent form", {"performance_score": "1e3"}, "performance_score"),
    ("urgent without reason", {"urgent": "y", "urgency_reason": ""}, "urgency_reason"),
]


@pytest.mark.parametrize(("row", "overrides", "field"), BAD_FIELDS, ids=[r[0] for r in BAD_FIELDS])
def test_bad_field_gets_a_field_error_and_nothing_is_stored(
    app: Flask, client: FlaskClient, row: str, overrides: dict[str, Any], field: str
) -> None:
    response = post(client, valid_referral(**overrides), {"doc_flow_cytometry": flow()})
    html = response.get_data(as_text=True)
    assert 400 <= response.status_code < 500, row
    assert f'id="{field}-error"' in html, f"{row}: the error is next to {field}"
    assert 'href="#' + field + '"' in html, "the summary links to the field"
    assert 'value="Riverside Children&#39;s Hospital"' in html or field == "referrer_institution"
    assert stored(app) == NOTHING


BAD_FILES: list[tuple[str, bytes, str]] = [
    ("18 HTML named .pdf", b"<html><script>alert(1)</script></html>", "referral.pdf"),
    ("20 SVG", b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', "scan.svg"),
    ("20 HTML", b"<!doctype html><p>hi</p>", "page.html"),
    ("20 EXE", b"MZ\x90\x00" + b"\x00" * 100, "setup.exe"),
    ("20 double extension", b"MZ\x90\x00" + b"\x00" * 100, "scan.pdf.exe"),
    ("21 ZIP", b"PK\x03\x04" + b"\x00" * 100, "records.zip"),
    ("21 DOCX", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 100, "summary.docx"),
    ("23 empty", b"", "empty.pdf"),
    ("23 truncated PDF", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "cut.pdf"),
]


@pytest.mark.parametrize(("row", "content", "name"), BAD_FILES, ids=[r[0] for r in BAD_FILES])
def test_bad_file_is_refused_by_content_and_named(
    app: Flask, client: FlaskClient, row: str, content: bytes, name: str
) -> None:
    response = post(client, valid_referral(), {"doc_flow_cytometry": (io.BytesIO(content), name)})
    html = response.get_data(as_text=True)
    assert response.status_code == 422, row
    assert 'id="doc_flow_cytometry-error"' in html
    assert name.split("/")[-1][:20] in html, "the message names the file"
    assert stored(app) == NOTHING


def test_rtl_override_in_filename_is_refused(app: Flask, client: FlaskClient) -> None:
    response = post(
        client, valid_referral(), {"doc_pathology": (io.BytesIO(tiny_pdf()), "report\u202efdp.exe")}
    )
    assert response.status_code == 422
    assert stored(app) == NOTHING


def test_too_many_files_are_refused(app: Flask, client: FlaskClient) -> None:
    files = {"doc_other": [(io.BytesIO(tiny_pdf()), f"page{i}.pdf") for i in range(4)]}
    response = post(client, valid_referral(), files)
    assert response.status_code == 422
    assert "at most 3 files" in response.get_data(as_text=True)
    assert stored(app) == NOTHING


def test_file_over_the_size_cap_is_refused_and_named(app: Flask, client: FlaskClient) -> None:
    big = tiny_pdf()[:-6] + b" " * (2 * 1024 * 1024) + b"%%EOF\n"
    response = post(client, valid_referral(), {"doc_imaging": (io.BytesIO(big), "mri.pdf")})
    assert response.status_code == 422
    assert "mri.pdf" in response.get_data(as_text=True)
    assert stored(app) == NOTHING


def test_row1_oversized_body_is_413(app: Flask, client: FlaskClient) -> None:
    body = io.BytesIO(b"%PDF-" + b"0" * (10 * 1024 * 1024))
    response = post(client, valid_referral(), {"doc_imaging": (body, "huge.pdf")})
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)
    assert stored(app) == NOTHING


def test_row3_too_many_parts_or_too_much_text_is_413(app: Flask, client: FlaskClient) -> None:
    many = valid_referral(**{f"extra{i}": "x" for i in range(5000)})
    assert post(client, many).status_code == 413
    bulky = valid_referral(question="x" * (2 * 1024 * 1024))
    assert post(client, bulky).status_code == 413
    assert stored(app) == NOTHING


def test_row7_8_11_payloads_are_stored_literally_and_escaped(
    app: Flask, client: FlaskClient
) -> None:
    payloads = {
        "referrer_institution": '"><img src=x onerror=alert(1)>',
        "question": "<script>alert(1)</script> {{7*7}} ${7*7}",
        "patient_family_name": "O'Brien'); DROP TABLE referral;--",
    }
    rejected = post(client, valid_referral(**payloads, marrow_blasts_pct="NaN"))
    html = rejected.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "<img src=x" not in html
    assert "49" not in html.split("question")[-1][:200]
    assert post(client, valid_referral(**payloads)).status_code == 303
    with app.app_context():
        referral = db.session.scalars(sa.select(Referral)).one()
        assert referral.patient_family_name == payloads["patient_family_name"]
        assert referral.answers["question"] == payloads["question"]


def test_row5_invisible_characters_are_stripped_from_names(app: Flask, client: FlaskClient) -> None:
    assert post(client, valid_referral(patient_given_name="Ma\u200bteo\ufeff")).status_code == 303
    with app.app_context():
        assert db.session.scalars(sa.select(Referral)).one().patient_given_name == "Mateo"


def test_row14_adult_age_is_accepted_for_triage_to_route(app: Flask, client: FlaskClient) -> None:
    assert post(client, valid_referral(patient_dob="1990-06-01")).status_code == 303


def test_row17_duplicate_parameters_are_refused(app: Flask, client: FlaskClient) -> None:
    from werkzeug.datastructures import MultiDict

    data = MultiDict([*valid_referral().items(), ("submission_id", SUBMISSION_ID)])
    data.add("patient_dob", "2015-01-01")
    response = client.post("/refer", data=data, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "sent more than once" in response.get_data(as_text=True)
    assert stored(app) == NOTHING


def test_row17_extra_fields_are_ignored(app: Flask, client: FlaskClient) -> None:
    extra = {
        "status": "accepted",
        "assignee_id": "1",
        "id": "999",
        "created_at": "2000-01-01",
        "triage_priority": "P1",
        "reference": "AAAAAAAAAAA",
    }
    assert post(client, valid_referral(**extra)).status_code == 303
    with app.app_context():
        referral = db.session.scalars(sa.select(Referral)).one()
        assert referral.status == "received"
        assert referral.id != 999 and referral.reference != "AAAAAAAAAAA"
        assert referral.triage_priority is None
        assert referral.created_at.year > 2000
        assert "status" not in referral.answers


def test_row22_traversal_filename_is_stored_under_a_random_name(
    app: Flask, client: FlaskClient
) -> None:
    name = "../../etc/passwd.pdf"
    assert (
        post(client, valid_referral(), {"doc_other": (io.BytesIO(tiny_pdf()), name)}).status_code
        == 303
    )
    with app.app_context():
        document = db.session.scalars(sa.select(Document)).one()
        assert "/" not in document.display_name and ".." not in document.display_name
        assert document.storage_key not in document.display_name
    assert not (Path(app.config["UPLOAD_DIR"]).parent / "etc").exists()


def test_png_and_jpeg_are_accepted(app: Flask, client: FlaskClient) -> None:
    files = {
        "doc_imaging": [(io.BytesIO(tiny_png()), "scan.png"), (io.BytesIO(tiny_jpeg()), "x.jpg")]
    }
    assert post(client, valid_referral(), files).status_code == 303
    with app.app_context():
        mimes = sorted(db.session.scalars(sa.select(Document.mime_type)))
    assert mimes == ["image/jpeg", "image/png"]


def test_honeypot_submission_is_refused(app: Flask, client: FlaskClient) -> None:
    assert post(client, valid_referral(website="http://spam.test")).status_code == 400
    assert stored(app) == NOTHING


def test_rate_limit_answers_429_with_retry_after(app_config: dict[str, Any]) -> None:
    from intake import create_app

    app = create_app(
        {
            **app_config,
            "RATELIMIT_ENABLED": True,
            "REFERRAL_RATE_LIMIT": "2 per minute",
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    client = app.test_client()
    codes = [post(client, {"patient_given_name": "x"}).status_code for _ in range(3)]
    assert codes[:2] == [422, 422] and codes[2] == 429
    last = post(client, valid_referral(patient_given_name="Xiomara"))
    assert last.status_code == 429 and int(last.headers["Retry-After"]) > 0
    # A shared hospital address can reach the limit: the form comes back with what was typed.
    page = last.get_data(as_text=True)
    assert "Too many forms were sent from your network" in page
    assert 'value="Xiomara"' in page
    assert stored(app) == NOTHING
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_database_unavailable_answers_503_and_keeps_the_form(app_config: dict[str, Any]) -> None:
    from intake import create_app

    app = create_app(
        {
            **app_config,
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none",
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 1}},
        }
    )
    client = app.test_client()
    response = post(client, valid_referral(patient_given_name="Keep"))
    assert response.status_code == 503
    html = response.get_data(as_text=True)
    assert "Nothing was saved" in html and 'value="Keep"' in html


def test_healthz_reports_database_and_broker(client: FlaskClient) -> None:
    response = client.get("/healthz")
    body = response.get_json()
    assert body["database"] == "ok"
    assert set(body) >= {
        "broker",
        "outbox_oldest_pending_seconds",
        "dead_letters",
        "worker_heartbeat_age_seconds",
    }


def test_every_problem_is_named_at_once(app: Flask, client: FlaskClient) -> None:
    """A missing NPI does not hide a date before the date of birth (no check short-circuits)."""
    response = post(
        client,
        valid_referral(referrer_npi="", performance_score="abc", diagnosis_date="2001-01-01"),
        {"doc_flow_cytometry": flow()},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    for field in ("referrer_npi", "performance_score", "diagnosis_date"):
        assert f'id="{field}-error"' in html, field
    assert stored(app) == NOTHING


@pytest.mark.parametrize(
    ("typed", "shown", "not_shown"),
    [
        ("2025-02-30", "This date does not exist", "Use the date format"),
        ("2025-13-01", "This date does not exist", "Use the date format"),
        ("2025-00-10", "This date does not exist", "Use the date format"),
        ("30/02/2025", "Use the date format YYYY-MM-DD", "does not exist"),
        ("2025-2-3", "Use the date format YYYY-MM-DD", "does not exist"),
    ],
)
def test_an_impossible_date_is_told_apart_from_a_wrong_format(
    app: Flask, client: FlaskClient, typed: str, shown: str, not_shown: str
) -> None:
    response = post(client, valid_referral(patient_dob=typed), {"doc_flow_cytometry": flow()})
    error = re.search(r'id="patient_dob-error">(.*?)</p>', response.get_data(as_text=True))
    assert response.status_code == 422 and error is not None
    assert shown in error.group(1) and not_shown not in error.group(1)
    assert stored(app) == NOTHING


@pytest.mark.parametrize(
    ("overrides", "group"),
    [
        ({"is_treating_oncologist": "maybe"}, "is_treating_oncologist"),
        ({"genetics": ["x"]}, "genetics"),
    ],
)
def test_error_summary_links_of_choice_groups_land_on_the_group(
    client: FlaskClient, overrides: dict[str, Any], group: str
) -> None:
    html = post(client, valid_referral(**overrides), {"doc_flow_cytometry": flow()}).get_data(
        as_text=True
    )
    assert f'href="#{group}"' in html
    assert re.search(rf'<fieldset id="{group}"[ >]', html)
    # Every link of the summary lands on an element of the page.
    for target in re.findall(r'<a href="#([\w-]+)">', html):
        assert f'id="{target}"' in html, target


def test_the_form_and_the_413_page_give_both_size_limits(client: FlaskClient) -> None:
    # app_config: 2 MB per file, 3 files, 8 MB for the whole request.
    hint = client.get("/refer").get_data(as_text=True)
    assert "each file up to 2 MB, at most 3 files and 8 MB in all" in hint
    body = io.BytesIO(b"%PDF-" + b"0" * (9 * 1024 * 1024))
    response = post(client, valid_referral(), {"doc_imaging": (body, "huge.pdf")})
    assert response.status_code == 413
    text = response.get_data(as_text=True)
    assert "Each file can be up to 2 MB" in text and "up to 8 MB in all" in text
    assert "the size shown on the form" not in text


def test_a_refused_form_says_its_files_must_be_attached_again(
    app: Flask, client: FlaskClient
) -> None:
    notice = "The files you attached were not kept. Attach them again before you send the form."
    with_file = post(client, valid_referral(referrer_phone="12"), {"doc_flow_cytometry": flow()})
    assert with_file.status_code == 422
    assert notice in with_file.get_data(as_text=True)
    without = post(client, valid_referral(referrer_phone="12"), {})
    assert without.status_code == 422
    assert notice not in without.get_data(as_text=True)
