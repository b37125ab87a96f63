"""Requests for information to a family: only what a parent can provide, in plain words (and
Spanish); clinical items go to the oncologist. The confirmation and the status emails say who
was actually asked."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake.extensions import db
from intake.models import Notification, Referral, User
from intake.services import info_requests, notifications
from tests.i18n.catalogue import ensure_compiled, without_random_parts
from tests.staff.helpers import get_referral, info_request_of, make_user, sign_in
from tests.staff.test_family_casework import second_opinion_case

CLINICAL = ("cns_status", "mrd_result", "performance_score", "primary_refractory")


@pytest.fixture(autouse=True, scope="module")
def _compiled() -> None:
    ensure_compiled()


@pytest.fixture
def coordinator(app: Flask, client: FlaskClient) -> Any:
    account = make_user(app, "family-req-coord@program.test")
    sign_in(app, client, account)
    return account


def _boxes(page: str) -> dict[str, bool]:
    """The item checkboxes offered: code -> ticked."""
    found = re.findall(r'<input[^>]*name="items"[^>]*>', page)
    return {
        re.search(r'value="([^"]+)"', tag).group(1): "checked" in tag  # type: ignore[union-attr]
        for tag in found
    }


def _ask(client: FlaskClient, reference: str, items: list[str], audience: str) -> Any:
    return client.post(
        f"/coordinator/referrals/{reference}/request-info",
        data={"items": items, "audience": audience},
    )


def _status_texts(app: Flask, reference: str) -> dict[str, str]:
    """The needs_info status emails, rendered: audience -> text."""
    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert referral is not None
        rows = db.session.scalars(
            sa.select(Notification).where(
                Notification.referral_id == referral.id, Notification.kind.like("status.%")
            )
        ).all()
        texts: dict[str, str] = {}
        for row in rows:
            audience = row.kind.rsplit(".", 1)[-1]
            texts[audience] = texts.get(audience, "") + notifications.render(row, referral).text
        return texts


def test_a_family_without_an_oncologist_email_is_offered_only_what_a_parent_can_give(
    app: Flask, client: FlaskClient, coordinator: Any
) -> None:
    reference = second_opinion_case(app, oncologist_email="")
    missing = get_referral(app, reference).missing_items
    assert {"cns_status", "mrd_result", "performance_score"} <= set(missing)
    page = client.get(f"/coordinator/referrals/{reference}").get_data(as_text=True)
    boxes = _boxes(page)
    for code in CLINICAL:
        assert code not in boxes, code
    assert boxes["insurance_card"] is False and boxes["pathology_report"] is False
    assert all(info_requests.family_can_answer(code) for code, ticked in boxes.items() if ticked)
    hint = html.unescape(re.search(r'id="info-family-hint">(.*?)</p>', page, re.S).group(1))  # type: ignore[union-attr]
    assert "CNS status (CNS1/2/3)" in hint and "MRD result" in hint
    # Plain words for the family on the staff page too.
    assert "Your child's insurance card (front and back)" in html.unescape(page)

    refused = _ask(client, reference, ["insurance_card", "cns_status"], "family")
    assert refused.status_code == 400
    done = _ask(client, reference, ["insurance_card", "treatment_summary"], "family")
    assert done.status_code == 303
    shown = client.get(f"/coordinator/referrals/{reference}").get_data(as_text=True)
    assert "Request sent: the family gets an email" in html.unescape(shown)
    assert "the referrer gets" not in shown

    link = info_request_of(app, reference)
    with app.app_context():
        referral = db.session.get(Referral, link.referral_id)
        assert referral is not None
        request_email = db.session.scalar(
            sa.select(Notification).where(Notification.kind == f"info_request.{link.id}")
        )
        assert request_email is not None and request_email.language == "es"
        text = notifications.render(request_email, referral).text
    # The family chose Spanish: the plain-language labels, in Spanish.
    assert "La tarjeta del seguro médico de su hijo/a" in text
    assert "Un resumen del tratamiento del hospital de su hijo/a" in text
    # The reference and the link's token are random: they could hold the letters CNS.
    assert "CNS" not in without_random_parts(text) and "Insurance card" not in text


def test_clinical_items_are_the_oncologists_when_both_can_be_asked(
    app: Flask, client: FlaskClient, coordinator: Any
) -> None:
    reference = second_opinion_case(app)  # the family named the oncologist's email
    page = html.unescape(client.get(f"/coordinator/referrals/{reference}").get_data(as_text=True))
    boxes = _boxes(page)
    assert boxes["cns_status"] is True  # the clinician is asked first: every missing item
    assert "CNS status (CNS1/2/3) (clinician only)" in page
    refused = _ask(client, reference, ["cns_status", "insurance_card"], "family")
    assert refused.status_code == 400
    body = html.unescape(refused.get_data(as_text=True))
    assert "The family is asked only for what a parent can provide" in body
    assert "ask the referring clinician for them instead" in body
    assert get_referral(app, reference).status == "under_review"

    assert _ask(client, reference, ["cns_status", "mrd_result"], "referrer").status_code == 303
    shown = html.unescape(client.get(f"/coordinator/referrals/{reference}").get_data(as_text=True))
    assert "Request sent: the referring clinician gets an email" in shown
    texts = _status_texts(app, reference)
    # The family (Spanish) is told their child's doctor was asked, not to expect a message.
    assert "Hemos pedido al médico de su hijo/a" in texts["family"]
    assert "otro mensaje" not in texts["family"]
    assert "A separate message explains what to send" in texts["referrer"]


def test_the_oncologist_is_not_told_of_a_message_that_went_to_the_family(
    app: Flask, client: FlaskClient, coordinator: Any
) -> None:
    reference = second_opinion_case(app)
    assert _ask(client, reference, ["insurance_card"], "family").status_code == 303
    texts = _status_texts(app, reference)
    assert "We have asked the family for more information" in texts["referrer"]
    assert "separate message" not in texts["referrer"]
    assert "Hemos pedido" not in texts["family"]


def test_the_service_refuses_clinical_items_for_the_family(app: Flask, coordinator: Any) -> None:
    reference = second_opinion_case(app)
    with app.app_context(), app.test_request_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        user = db.session.get(User, coordinator.id)
        assert referral is not None and user is not None
        with pytest.raises(ValueError):
            info_requests.request_info(referral, user, ["mrd_result"], "family")


def test_the_queue_says_whom_a_paused_case_waits_on(
    app: Flask, client: FlaskClient, coordinator: Any
) -> None:
    """Not "waiting on referrer" for a case whose question went to the family."""
    asked_family = second_opinion_case(app)
    asked_doctor = second_opinion_case(app, patient_given_name="Lucia")
    assert _ask(client, asked_family, ["insurance_card"], "family").status_code == 303
    assert _ask(client, asked_doctor, ["cns_status"], "referrer").status_code == 303
    page = html.unescape(client.get("/coordinator/").get_data(as_text=True))
    rows = {
        reference: re.search(rf"{reference[-4:]}.*?</tr>", page, re.S).group(0)  # type: ignore[union-attr]
        for reference in (asked_family, asked_doctor)
    }
    assert "paused (waiting on the family)" in rows[asked_family]
    assert "paused (waiting on the referrer)" in rows[asked_doctor]
