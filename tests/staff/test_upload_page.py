"""The upload page behind an information request's emailed link, as its reader meets it: in the
email's language, with an answer field for every requested item that is not a document, the
document categories that fit who was asked, an honest page after a timeout or a lost form
token, and the right phone number when the link cannot be used."""

from __future__ import annotations

import io
import re
import time
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake import create_app
from intake.extensions import db
from intake.models import (
    AuditEvent,
    Document,
    InfoRequest,
    Notification,
    Referral,
    TimelineEvent,
    User,
)
from intake.services import info_requests, notifications
from intake.staff.upload_views import SESSION_SECONDS
from tests.i18n.catalogue import english_left, ensure_compiled, visible_text
from tests.samples import tiny_pdf
from tests.staff.helpers import (
    csrf_token,
    get_referral,
    info_request_of,
    make_referral,
    make_user,
    sign_in,
)

SCORE = "performance_score"
SCORE_FIELD = f"answer_{SCORE}"


@pytest.fixture(autouse=True, scope="module")
def _compiled() -> None:
    ensure_compiled()


@pytest.fixture
def coordinator(app: Flask) -> Any:
    return make_user(app, "upload-coord@program.test")


def _family_case(app: Flask) -> str:
    """A physician referral whose family chose Spanish and agreed to email."""
    return _case(app, family_email="familia@example.org", family_email_consent=True)


def _case(app: Flask, **overrides: Any) -> str:
    """A referral missing its flow report, performance score and CNS status."""
    return make_referral(
        app, flow_report=False, performance_score="", cns_status="unknown", **overrides
    )


def _ask(app: Flask, coordinator: Any, reference: str, items: list[str], audience: str) -> str:
    """Send a request through the service; the /upload/<token> path of its emailed link."""
    with app.app_context(), app.test_request_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        user = db.session.get(User, coordinator.id)
        assert referral is not None and user is not None
        info = info_requests.request_info(referral, user, items, audience)
        return f"/upload/{info_requests.token_for(info)}"


def _link(app: Flask, reference: str) -> InfoRequest:
    return info_request_of(app, reference)


def _browser(app: Flask, language: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    return client


def _lang(html: str) -> str:
    found = re.search(r'<html lang="(\w+)">', html)
    assert found, html[:200]
    return found.group(1)


def _post(client: FlaskClient, **fields: Any) -> Any:
    data = {
        name: (io.BytesIO(value), f"{name}.pdf") if isinstance(value, bytes) else value
        for name, value in fields.items()
    }
    return client.post("/upload", data=data, content_type="multipart/form-data")


def _no_english(html: str, app: Flask, where: str) -> None:
    assert _lang(html) == "es", where
    left = english_left(visible_text(html), allowed=(app.config["PROGRAM_NAME"],))
    assert left == [], f"English left on {where}: {left}"


# -- 1. the language of the email ----------------------------------------------------------


def test_the_page_reads_in_the_language_the_email_was_written_in(
    app: Flask, coordinator: Any
) -> None:
    reference = _family_case(app)
    path = _ask(app, coordinator, reference, ["insurance_card"], "family")
    with app.app_context():
        language = db.session.scalar(
            sa.select(Notification.language).where(Notification.kind.like("info_request.%"))
        )
    assert language == "es"  # the family chose Spanish on the form

    # A family on an English browser still reads Spanish, on every page of the link.
    family = _browser(app, "en-US,en;q=0.9")
    assert family.get(path).status_code == 303
    page = family.get("/upload").get_data(as_text=True)
    _no_english(page, app, "/upload opened from a Spanish email")
    done = _post(family, doc_insurance_card=tiny_pdf())
    assert done.status_code == 303
    _no_english(family.get("/upload/thanks").get_data(as_text=True), app, "/upload/thanks")

    # The switch still wins, and is remembered.
    family.get("/status?lang=en")
    assert _lang(family.get("/status").get_data(as_text=True)) == "en"


def test_an_explicit_choice_wins_over_the_email_language(app: Flask, coordinator: Any) -> None:
    reference = _family_case(app)
    path = _ask(app, coordinator, reference, ["insurance_card"], "family")
    # On the link itself.
    chose_now = _browser(app, "es")
    assert chose_now.get(f"{path}?lang=en").status_code == 303
    assert _lang(chose_now.get("/upload").get_data(as_text=True)) == "en"
    # Earlier in this browser session.
    chose_before = _browser(app, "es")
    chose_before.get("/?lang=en")
    chose_before.get(path)
    assert _lang(chose_before.get("/upload").get_data(as_text=True)) == "en"
    # Switching on the page itself.
    switched = _browser(app, "en")
    switched.get(path)
    assert _lang(switched.get("/upload").get_data(as_text=True)) == "es"
    assert _lang(switched.get("/upload?lang=en").get_data(as_text=True)) == "en"
    assert _lang(switched.get("/upload").get_data(as_text=True)) == "en"
    switched.get(path)  # opening the link again keeps the visitor's choice
    assert _lang(switched.get("/upload").get_data(as_text=True)) == "en"


def test_a_link_from_an_english_email_opens_in_english(app: Flask, coordinator: Any) -> None:
    reference = make_referral(app, flow_report=False)
    path = _ask(app, coordinator, reference, ["flow_report"], "referrer")
    doctor = _browser(app, "es-MX,es;q=0.9")  # no explicit choice: the email's language
    doctor.get(path)
    assert _lang(doctor.get("/upload").get_data(as_text=True)) == "en"


def test_status_links_in_spanish_emails_open_the_spanish_page(app: Flask, coordinator: Any) -> None:
    reference = _family_case(app)
    base = app.config["PUBLIC_BASE_URL"]
    with app.app_context(), app.test_request_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert referral is not None
        event = TimelineEvent(
            referral_id=referral.id, action="status_changed", to_status="accepted"
        )
        db.session.add(event)
        db.session.flush()
        rendered = {}
        status_kinds = [f"status.{event.id}.family", f"status.{event.id}.referrer"]
        for kind in (notifications.REFERRER_ACK, notifications.FAMILY_ACK, *status_kinds):
            for language in ("es", "en"):
                notification = Notification(
                    id="n",
                    referral_id=referral.id,
                    kind=kind,
                    recipients=["x@example.org"],
                    language=language,
                    message_id="<m@intake.test>",
                )
                rendered[(kind, language)] = notifications.render(notification, referral)
        db.session.rollback()
    for (kind, language), email in rendered.items():
        assert email.html is not None
        if language == "es":
            assert f"{base}/status?lang=es" in email.text, kind
            assert f'href="{base}/status?lang=es"' in email.html, kind
        else:
            assert "?lang=" not in email.text and "?lang=" not in email.html, kind
            assert f"{base}/status" in email.text, kind
    reader = _browser(app, "en-US")
    page = reader.get("/status?lang=es").get_data(as_text=True)
    assert _lang(page) == "es"


# -- 2. answers in words, and the family's own categories ----------------------------------


def test_items_that_are_not_documents_are_answered_in_words(
    app: Flask, client: FlaskClient, coordinator: Any
) -> None:
    reference = _case(app)
    path = _ask(app, coordinator, reference, [SCORE, "flow_report"], "referrer")
    doctor = app.test_client()
    doctor.get(path)
    page = doctor.get("/upload").get_data(as_text=True)
    assert f'name="{SCORE_FIELD}"' in page
    assert re.search(r'<label for="answer_performance_score">Lansky/Karnofsky performance', page)
    assert 'name="doc_flow_cytometry"' in page

    # A file alone no longer closes the request: the question is required.
    missing = _post(doctor, doc_flow_cytometry=tiny_pdf())
    html = missing.get_data(as_text=True)
    assert missing.status_code == 400
    assert 'id="answer_performance_score-error"' in html
    assert "attach your files again" in html
    # Validated like the form's other text fields.
    for bad in ("80\x00", "x" * 1001, "80\u202e"):
        refused = _post(doctor, doc_flow_cytometry=tiny_pdf(), **{SCORE_FIELD: bad})
        assert refused.status_code == 400, bad
    # An answer without the requested document is refused too.
    assert _post(doctor, **{SCORE_FIELD: "Lansky 80"}).status_code == 400
    assert _link(app, reference).spent_at is None

    answer = "Lansky 80 (clinic visit 2026-11-20)\nplays most of the day"
    done = _post(doctor, doc_flow_cytometry=tiny_pdf(), **{SCORE_FIELD: answer})
    assert done.status_code == 303 and done.headers["Location"] == "/upload/thanks"
    thanks = doctor.get("/upload/thanks").get_data(as_text=True)
    assert "we received what you sent" in thanks

    after = get_referral(app, reference)
    assert after.status == "under_review"
    link = _link(app, reference)
    assert link.spent_at is not None
    [entry] = after.answers[info_requests.ANSWERS_KEY]
    assert entry["info_request"] == link.id and entry["answers"] == {SCORE: answer}
    with app.app_context():
        received = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert received is not None
        [event] = [e for e in received.events if e.action == "info_received"]
        assert event.detail["answered"] == [SCORE] and event.detail["documents"] == 1
        assert answer not in str(event.detail)  # the timeline keeps codes, not answers

    sign_in(app, client, coordinator)
    case = client.get(f"/coordinator/referrals/{reference}").get_data(as_text=True)
    answers = case[case.index(f'id="info-answers-{link.id}"') :]
    assert "Lansky/Karnofsky performance score" in answers[:300]
    assert "Lansky 80 (clinic visit 2026-11-20)" in answers[:400]
    assert "answered in words: Lansky/Karnofsky performance score" in case
    assert "Info answers" not in case  # not dumped among the form's other answers


def test_a_request_without_documents_is_answered_without_a_file(
    app: Flask, coordinator: Any
) -> None:
    reference = _case(app)
    path = _ask(app, coordinator, reference, [SCORE, "cns_status"], "referrer")
    doctor = app.test_client()
    doctor.get(path)
    page = doctor.get("/upload").get_data(as_text=True)
    assert "Optional: add a document if it helps answer." in page
    half = _post(doctor, **{SCORE_FIELD: "Karnofsky 70"})
    assert half.status_code == 400 and 'id="answer_cns_status-error"' in half.get_data(as_text=True)
    assert "Karnofsky 70" in half.get_data(as_text=True)  # what was typed stays
    done = _post(doctor, **{SCORE_FIELD: "Karnofsky 70", "answer_cns_status": "CNS1"})
    assert done.status_code == 303
    after = get_referral(app, reference)
    assert after.status == "under_review" and after.clock_paused_at is None
    assert after.answers[info_requests.ANSWERS_KEY][0]["answers"] == {
        SCORE: "Karnofsky 70",
        "cns_status": "CNS1",
    }
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Document)) == 0
        kinds = set(
            db.session.scalars(
                sa.select(AuditEvent.resource_type).where(AuditEvent.detail.like("upload_link:%"))
            )
        )
    assert kinds == {"info_answer"}  # no document row claims an upload


def test_the_service_refuses_answers_that_do_not_match_the_questions(
    app: Flask, coordinator: Any
) -> None:
    reference = _case(app)
    _ask(app, coordinator, reference, [SCORE], "referrer")
    link = _link(app, reference)
    with app.app_context():
        for answers in ({}, {SCORE: "  "}, {SCORE: "80", "disease": "B-ALL"}):
            with pytest.raises(ValueError):
                info_requests.receive_upload(link.id, [], answers)
    assert _link(app, reference).spent_at is None


def test_a_family_sees_its_own_document_categories(app: Flask, coordinator: Any) -> None:
    reference = _family_case(app)
    path = _ask(app, coordinator, reference, ["pathology_report"], "family")
    family = _browser(app, "en")
    family.get(f"{path}?lang=en")
    page = family.get("/upload").get_data(as_text=True)
    assert 'name="doc_records"' in page and "Medical records" in page
    assert 'name="doc_insurance_card"' in page
    for clinical in ("doc_flow_cytometry", "doc_marrow_mrd", "doc_pathology", "Flow cytometry"):
        assert clinical not in page, clinical
    # A clinical slot is not read from a family's page.
    ignored = _post(family, doc_pathology=tiny_pdf())
    assert ignored.status_code == 400
    assert "Attach at least one document." in ignored.get_data(as_text=True)
    assert _post(family, doc_records=tiny_pdf()).status_code == 303
    with app.app_context():
        slots = set(db.session.scalars(sa.select(Document.slot)))
    assert "records" in slots


def test_the_answer_page_reads_in_spanish(app: Flask, coordinator: Any) -> None:
    # A family is asked only what a parent can answer (a performance score is the doctor's).
    reference = _case(
        app, family_email="familia@example.org", family_email_consent=True, prior_car_t="unknown"
    )
    path = _ask(app, coordinator, reference, ["prior_car_t", "insurance_card"], "family")
    family = _browser(app, "en")
    family.get(path)
    page = family.get("/upload").get_data(as_text=True)
    _no_english(page, app, "/upload with a question")
    assert "¿Su hijo/a ya recibió terapia de células CAR T? (sí o no)" in page
    refused = _post(family, answer_prior_car_t="")
    _no_english(refused.get_data(as_text=True), app, "/upload with a missing answer")
    answered = _post(family, doc_insurance_card=tiny_pdf(), answer_prior_car_t="No lo sé")
    assert answered.status_code == 303
    _no_english(family.get("/upload/thanks").get_data(as_text=True), app, "thanks for answers")


# -- 3. timeouts, lost tokens and phone numbers --------------------------------------------


def _age_session(client: FlaskClient, seconds: float) -> None:
    with client.session_transaction() as session:
        session["upload_at"] = time.time() - seconds


def test_a_page_left_open_too_long_says_so_while_the_link_works(
    app: Flask, coordinator: Any
) -> None:
    reference = make_referral(app, flow_report=False)
    path = _ask(app, coordinator, reference, ["flow_report"], "referrer")
    doctor = app.test_client()
    doctor.get(path)
    _age_session(doctor, SESSION_SECONDS + 5)
    shown = doctor.get("/upload")
    text = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "This page timed out" in text
    assert "open it again from our email" in text
    assert "already been used" not in text
    late = _post(doctor, doc_flow_cytometry=tiny_pdf())
    assert late.status_code == 400 and "This page timed out" in late.get_data(as_text=True)
    assert _link(app, reference).spent_at is None
    # As the page says: the link opens the page again.
    assert doctor.get(path).status_code == 303
    assert _post(doctor, doc_flow_cytometry=tiny_pdf()).status_code == 303


def test_a_timed_out_page_whose_link_is_used_up_says_the_link_cannot_be_used(
    app: Flask, coordinator: Any
) -> None:
    reference = make_referral(app, flow_report=False)
    path = _ask(app, coordinator, reference, ["flow_report"], "referrer")
    first, second = app.test_client(), app.test_client()
    first.get(path)
    second.get(path)
    assert _post(second, doc_flow_cytometry=tiny_pdf()).status_code == 303
    _age_session(first, SESSION_SECONDS + 5)
    late = first.get("/upload")
    assert late.status_code == 410
    text = late.get_data(as_text=True)
    assert "This link cannot be used" in text and "timed out" not in text


def test_the_unusable_link_page_gives_the_program_line_and_keeps_urgent_for_emergencies(
    app: Flask,
) -> None:
    program, urgent = app.config["PROGRAM_PHONE"], app.config["URGENT_PHONE"]
    assert program != urgent
    text = app.test_client().get("/upload/not-a-token").get_data(as_text=True)
    main = text[text.index("<main") : text.index("</main>")]
    assert "call our coordinators at " + program in main
    assert re.search(r"emergency only: " + re.escape(urgent), main)
    assert "reply to our email" not in main


def test_a_lost_form_token_shows_the_page_again_with_the_answers(
    app_config: dict[str, Any], app: Flask, coordinator: Any
) -> None:
    reference = _case(app)
    path = _ask(app, coordinator, reference, [SCORE, "flow_report"], "referrer")
    csrf_app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    doctor = csrf_app.test_client()
    doctor.get(path)
    refused = _post(doctor, doc_flow_cytometry=tiny_pdf(), **{SCORE_FIELD: "Lansky 90"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "The page expired before it was sent, so nothing was saved." in html
    assert "Lansky 90" in html  # what was typed comes back
    assert _link(app, reference).spent_at is None
    token = csrf_token(html)
    accepted = _post(
        doctor, csrf_token=token, doc_flow_cytometry=tiny_pdf(), **{SCORE_FIELD: "Lansky 90"}
    )
    assert accepted.status_code == 303
    # A lost token on a page left open too long: the timeout page, not a generic 400.
    other = make_referral(app, flow_report=False)
    path = _ask(app, coordinator, other, ["flow_report"], "referrer")
    late = csrf_app.test_client()
    late.get(path)
    _age_session(late, SESSION_SECONDS + 5)
    timed_out = _post(late, doc_flow_cytometry=tiny_pdf())
    assert timed_out.status_code == 400
    assert "This page timed out" in timed_out.get_data(as_text=True)
    # Without any upload session: the link page, not a generic error.
    stranger = csrf_app.test_client().post("/upload", data={})
    assert stranger.status_code == 410


def test_the_timeout_page_reads_in_spanish(app: Flask, coordinator: Any) -> None:
    reference = _family_case(app)
    path = _ask(app, coordinator, reference, ["insurance_card"], "family")
    family = _browser(app, "en")
    family.get(path)
    _age_session(family, SESSION_SECONDS + 5)
    _no_english(family.get("/upload").get_data(as_text=True), app, "timed-out page")
    _no_english(
        app.test_client().get("/upload/not-a-token?lang=es").get_data(as_text=True),
        app,
        "invalid link",
    )
