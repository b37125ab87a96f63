"""Spanish everywhere a family or referrer looks: every public page (forms, their errors,
confirmations, the status lookup, error pages, upload pages) and every family or referrer
email, with no English left; the language switch is visible, remembered, and defaults from
Accept-Language."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, abort
from flask.testing import FlaskClient

from intake import create_app
from intake.domain import statuses
from intake.extensions import db
from intake.models import Notification, Referral, TimelineEvent, User
from intake.services import cases, info_requests, notifications
from tests.families import family_data
from tests.i18n.catalogue import english_left, ensure_compiled, visible_text
from tests.referral_data import PATIENT_DOB, PHI_VALUES, valid_referral
from tests.samples import tiny_pdf
from tests.staff.helpers import make_referral, make_user

# Blueprints whose pages the public sees (staff pages are English-only by design).
PUBLIC_BLUEPRINTS = {"public", "families", "upload"}
NOT_PAGES = {"public.healthz"}


@pytest.fixture(autouse=True, scope="module")
def _compiled() -> None:
    ensure_compiled()


@pytest.fixture
def spanish(client: FlaskClient) -> FlaskClient:
    assert client.get("/?lang=es").status_code == 200
    return client


def assert_spanish(html: str, app: Flask, where: str) -> None:
    assert '<html lang="es">' in html, where
    left = english_left(visible_text(html), allowed=(app.config["PROGRAM_NAME"],))
    assert left == [], f"English left on {where}: {left}"


def public_routes(app: Flask, method: str) -> list[str]:
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if (rule.endpoint.split(".")[0] in PUBLIC_BLUEPRINTS)
        and rule.endpoint not in NOT_PAGES
        and method in (rule.methods or ())
        and not rule.arguments
    )


def test_language_switch_is_visible_remembered_and_defaults_from_the_browser(
    client: FlaskClient,
) -> None:
    english = client.get("/status").get_data(as_text=True)
    assert '<html lang="en">' in english
    assert re.search(r'<a href="\?lang=es" lang="es" hreflang="es">Español</a>', english)
    browser_spanish = client.get("/status", headers={"Accept-Language": "es-MX,es;q=0.9"})
    assert '<html lang="es">' in browser_spanish.get_data(as_text=True)
    client.get("/?lang=es")
    remembered = client.get("/status", headers={"Accept-Language": "en-US"})
    assert '<html lang="es">' in remembered.get_data(as_text=True)
    assert 'hreflang="en">English</a>' in remembered.get_data(as_text=True)
    client.get("/?lang=en")
    assert '<html lang="en">' in client.get("/status").get_data(as_text=True)


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("es-419,en;q=0.5", "es"),
        ("es-MX", "es"),
        ("en-US,en;q=0.9,es;q=0.8", "en"),
        ("fr-FR,es;q=0.5", "es"),
        ("fr-FR,de;q=0.5", "en"),
        ("", "en"),
    ],
)
def test_browser_language_picks_the_first_supported_by_primary_tag(
    client: FlaskClient, header: str, language: str
) -> None:
    html = client.get("/", headers={"Accept-Language": header}).get_data(as_text=True)
    assert f'<html lang="{language}">' in html


def test_every_public_page_reads_in_spanish(app: Flask, spanish: FlaskClient) -> None:
    pages = public_routes(app, "GET")
    assert {"/", "/refer", "/status"} <= set(pages)
    for url in pages:
        response = spanish.get(url, follow_redirects=True)
        assert response.status_code in (200, 410), url
        assert_spanish(response.get_data(as_text=True), app, url)


def test_every_public_form_shows_its_errors_in_spanish(app: Flask, spanish: FlaskClient) -> None:
    forms = public_routes(app, "POST")
    assert {"/refer", "/status"} <= set(forms)
    for url in forms:
        response = spanish.post(url, data={"patient_dob": "2016-02-30", "dob": "14/03/2016"})
        html = response.get_data(as_text=True)
        assert response.status_code in (400, 410, 422), url
        assert_spanish(html, app, f"{url} with errors")
    status_errors = spanish.post("/status", data={"reference": "ABC", "dob": "2016-02-30"})
    html = status_errors.get_data(as_text=True)
    assert "Revise el número de referencia" in html and "Esta fecha no existe" in html
    wrong_format = spanish.post("/status", data={"reference": "ABC", "dob": "14/03/2016"})
    assert "AAAA-MM-DD" in wrong_format.get_data(as_text=True)


def test_confirmation_and_status_pages_read_in_spanish(app: Flask, spanish: FlaskClient) -> None:
    data = {"submission_id": "7f1d7c55-3b7e-4d8e-9f65-6f3f7a9b0c21", **valid_referral()}
    data["doc_flow_cytometry"] = (io.BytesIO(tiny_pdf()), "flow.pdf")
    submitted = spanish.post(
        "/refer", data=data, content_type="multipart/form-data", follow_redirects=True
    )
    assert submitted.request.path == "/refer/submitted"
    assert_spanish(submitted.get_data(as_text=True), app, "/refer/submitted")

    reference = make_referral(app)
    found = spanish.post("/status", data={"reference": reference, "dob": PATIENT_DOB})
    assert "Nuestro equipo está revisando la solicitud." in found.get_data(as_text=True)
    assert_spanish(found.get_data(as_text=True), app, "/status result")
    missing = spanish.post("/status", data={"reference": reference, "dob": "2015-01-01"})
    assert_spanish(missing.get_data(as_text=True), app, "/status not found")


@pytest.fixture
def error_app(app_config: dict[str, Any]) -> Iterator[Flask]:
    app = create_app(
        {
            **app_config,
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": "memory://",
            "STATUS_RATE_LIMIT": "1 per minute",
            "MAX_CONTENT_LENGTH": 2048,
        }
    )

    def fail(code: int) -> str:
        if code == 500:
            raise RuntimeError("boom")
        abort(code)

    app.add_url_rule("/test-error/<int:code>", view_func=fail)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_error_pages_read_in_spanish(error_app: Flask) -> None:
    client = error_app.test_client()
    client.get("/?lang=es")
    pages = {
        404: client.get("/no-such-page"),
        413: client.post("/status", data={"reference": "x" * 5000, "dob": "2016-03-14"}),
        400: client.get("/test-error/400"),
        500: client.get("/test-error/500"),
        503: client.get("/test-error/503"),
    }
    client.post("/status", data={"reference": "x", "dob": "x"})
    pages[429] = client.post("/status", data={"reference": "x", "dob": "x"})
    for code, response in pages.items():
        assert response.status_code == code
        assert_spanish(response.get_data(as_text=True), error_app, f"error {code}")


def test_upload_pages_read_in_spanish(app: Flask, spanish: FlaskClient) -> None:
    reference = make_referral(app, flow_report=False)
    coordinator = make_user(app, "coord@program.test")
    with app.app_context(), app.test_request_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        user = db.session.get(User, coordinator.id)
        assert referral is not None and user is not None
        info = info_requests.request_info(referral, user, ["flow_report", "insurance_card"])
        token = info_requests.token_for(info)
    page = spanish.get(f"/upload/{token}", follow_redirects=True)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Tarjeta del seguro médico" in html
    assert_spanish(html, app, "/upload")
    refused = spanish.post("/upload", data={}, content_type="multipart/form-data")
    assert_spanish(refused.get_data(as_text=True), app, "/upload with errors")
    assert_spanish(spanish.get("/upload/not-a-token").get_data(as_text=True), app, "invalid link")
    assert_spanish(spanish.get("/upload/thanks").get_data(as_text=True), app, "/upload/thanks")


def _render(notification: Notification, referral: Referral) -> tuple[str, str, str]:
    email = notifications.render(notification, referral)
    return email.subject, email.text, email.html or ""


def assert_spanish_email(subject: str, text: str, html: str, app: Flask, where: str) -> None:
    allowed = (app.config["PROGRAM_NAME"],)
    for part, content in (("subject", subject), ("text", text), ("html", visible_text(html))):
        assert english_left(content, allowed=allowed) == [], f"English left in {where} {part}"
    for value in PHI_VALUES:
        assert value not in subject + text + html, f"PHI in {where}"
    if not where.startswith("info_request"):  # that one carries the upload link instead
        assert "/status" in text and "/status" in html


def test_every_family_and_referrer_email_reads_in_spanish(app: Flask) -> None:
    reference = make_referral(
        app, flow_report=False, family_email="familia@example.org", family_email_consent=True
    )
    coordinator = make_user(app, "coord2@program.test")
    with app.app_context(), app.test_request_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert referral is not None
        kinds = [notifications.REFERRER_ACK]
        for status in statuses.ALL_STATUSES:
            event = TimelineEvent(
                referral_id=referral.id, action="status_changed", to_status=status
            )
            db.session.add(event)
            db.session.flush()
            kinds += [f"status.{event.id}.family", f"status.{event.id}.referrer"]
        user = db.session.get(User, coordinator.id)
        assert user is not None
        info = info_requests.request_info(referral, user, ["flow_report", "authorization"])
        kinds.append(f"info_request.{info.id}")
        for kind in kinds:
            notification = Notification(
                id="n",
                referral_id=referral.id,
                kind=kind,
                recipients=["x@example.org"],
                language="es",
                message_id="<n@intake.test>",
            )
            subject, text, html = _render(notification, referral)
            assert_spanish_email(subject, text, html, app, kind)


def test_status_emails_go_to_family_and_referrer_each_in_their_language(app: Flask) -> None:
    reference = make_referral(
        app,
        family_email="familia@example.org",
        family_email_consent=True,
        patient_language="es",
    )
    with app.app_context(), app.test_request_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert referral is not None
        cases.change_status(referral, statuses.NEEDS_INFO, actor="user:1", role="coordinator")
        db.session.commit()
        queued = {
            n.kind.rsplit(".", 1)[1]: n
            for n in db.session.scalars(
                sa.select(Notification).where(Notification.kind.like("status.%"))
            )
        }
        assert queued["family"].recipients == ["familia@example.org"]
        assert queued["family"].language == "es"
        assert queued["referrer"].language == "en"
        subject, text, html = _render(queued["family"], referral)
        assert subject.startswith("Novedades sobre la solicitud")
        assert "Necesitamos más información" in text
        assert_spanish_email(subject, text, html, app, "family status email")


def test_family_confirmations_and_acknowledgements_read_in_spanish(
    app: Flask, spanish: FlaskClient
) -> None:
    journeys = (
        ("/second-opinion", family_data.second_opinion(), "/second-opinion/submitted"),
        ("/message", family_data.message(preferred_language="es"), "/message/sent"),
    )
    for url, answers, confirmation in journeys:
        form = {"submission_id": str(uuid.uuid4()), **answers}
        response = spanish.post(
            url, data=form, content_type="multipart/form-data", follow_redirects=True
        )
        assert response.request.path == confirmation
        assert_spanish(response.get_data(as_text=True), app, confirmation)
    with app.app_context():
        acknowledgements = list(
            db.session.scalars(
                sa.select(Notification).where(
                    Notification.kind.in_(
                        [notifications.FAMILY_ACK, notifications.FAMILY_MESSAGE_ACK]
                    )
                )
            )
        )
        assert len(acknowledgements) == 2
        for notification in acknowledgements:
            assert notification.language == "es"
            referral = db.session.get(Referral, notification.referral_id)
            assert referral is not None
            subject, text, html = _render(notification, referral)
            assert_spanish_email(subject, text, html, app, notification.kind)
            for value in family_data.FAMILY_PHI:
                assert value not in subject + text + html
