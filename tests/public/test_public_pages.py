"""What every public page shares: a way to the status lookup from the home page and from the
footer, in English and Spanish, error-summary links that land on their questions, and upload
hints that give both size limits."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake.extensions import db
from intake.models import Referral, User
from intake.services import info_requests
from tests.i18n.catalogue import ensure_compiled
from tests.staff.helpers import make_referral, make_user

STATUS_LINK = {"en": "Check the status of a request", "es": "Consultar el estado de una solicitud"}


@pytest.fixture(autouse=True, scope="module")
def _compiled() -> None:
    ensure_compiled()


def _links_to_status(html: str) -> list[str]:
    return [
        re.sub(r"\s+", " ", text).strip()
        for text in re.findall(r'<a[^>]* href="/status"[^>]*>(.*?)</a>', html, re.S)
    ]


@pytest.mark.parametrize("language", ["en", "es"])
def test_home_page_leads_to_the_status_lookup(client: FlaskClient, language: str) -> None:
    html = client.get(f"/?lang={language}").get_data(as_text=True)
    links = _links_to_status(html)
    assert len(links) == 2, links  # a button among the others, and the footer
    assert all(text.startswith(STATUS_LINK[language]) for text in links), links
    page = client.get("/status")
    assert page.status_code == 200


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("path", ["/refer", "/second-opinion", "/message", "/status"])
def test_every_public_page_footer_links_to_the_status_lookup(
    client: FlaskClient, path: str, language: str
) -> None:
    html = client.get(f"{path}?lang={language}").get_data(as_text=True)
    footer = re.search(r'<footer class="site-footer">(.*?)</footer>', html, re.S)
    assert footer is not None
    assert _links_to_status(footer.group(1)) == [STATUS_LINK[language]]
    if path == "/status":
        assert 'aria-current="page"' in footer.group(1)


@pytest.mark.parametrize("path", ["/refer", "/second-opinion", "/message", "/status"])
def test_every_error_summary_link_lands_on_its_question(app: Flask, path: str) -> None:
    client = app.test_client()
    # Sent empty, with a choice no question offers, so groups of choices carry errors too.
    data = {"contact_methods": "pigeon", "genetics": "x", "is_treating_oncologist": "maybe"}
    html = client.post(path, data=data).get_data(as_text=True)
    summary = re.search(r'<div class="error-summary".*?</div>', html, re.S)
    assert summary is not None, path
    targets = re.findall(r'<a href="#([\w-]+)">', summary.group(0))
    assert targets, path
    for target in targets:
        assert len(re.findall(rf'\sid="{target}"', html)) == 1, f"{path}: #{target}"


def test_the_upload_page_gives_the_limit_per_file_and_in_all(app: Flask) -> None:
    coordinator = make_user(app, "limits-coord@program.test")
    reference = make_referral(app, flow_report=False)
    with app.app_context(), app.test_request_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        user = db.session.get(User, coordinator.id)
        assert referral is not None and user is not None
        info = info_requests.request_info(referral, user, ["insurance_card"], "referrer")
        path = f"/upload/{info_requests.token_for(info)}"
    client = app.test_client()
    assert client.get(path).status_code == 303
    html = re.sub(r"\s+", " ", client.get("/upload").get_data(as_text=True))
    total = app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
    assert f"up to {app.config['MAX_UPLOAD_MB']} MB each and {total} MB in all" in html
