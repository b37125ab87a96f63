"""A family's revocation covers their child's records, not one form (decision 16).

The same child can have two cases (the family asked twice; both linked as the same child). A
revocation recorded on either revokes every authorization of the child that was signed before
it reached us; a later signature is a new permission and stands. Another child is untouched.
"""

from __future__ import annotations

import html
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake.extensions import db
from intake.models import InfoRequest, Referral
from intake.services import auth
from tests.staff.helpers import Account, audit_count, get_referral
from tests.staff.test_family_casework import (
    ask_doctors,
    coordinator,  # noqa: F401 (fixture)
    events,
    page,
    program_today,
    revoke,
    second_opinion_case,
    set_authorization,
    the_authorization,
)


def signed_days_ago(app: Flask, reference: str, days: int) -> None:
    set_authorization(app, reference, signed_at=auth.now() - timedelta(days=days))


def open_links(app: Flask, reference: str) -> int:
    with app.app_context():
        return int(
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(InfoRequest)
                .join(Referral, Referral.id == InfoRequest.referral_id)
                .where(Referral.reference == reference, InfoRequest.closed_at.is_(None))
            )
            or 0
        )


def test_a_revocation_reaches_the_same_childs_other_case_and_closes_its_links(
    app: Flask,
    client: FlaskClient,
    coordinator: Account,  # noqa: F811
) -> None:
    first = second_opinion_case(app)
    second = second_opinion_case(app)
    other_child = second_opinion_case(
        app, patient_given_name="Mateo", patient_family_name="Vargas", patient_dob="2014-02-03"
    )
    assert get_referral(app, second).linked_case_id == get_referral(app, first).id
    for reference in (first, second, other_child):
        signed_days_ago(app, reference, 3)
    assert ask_doctors(client, second).status_code == 303
    assert open_links(app, second) == 1

    received = program_today(app) - timedelta(days=1)
    response = revoke(client, first, received_on=received.isoformat(), method="written")
    assert response.status_code == 303
    shown = html.unescape(client.get(response.headers["Location"]).get_data(as_text=True))
    assert "It also revoked the authorization on the same child's other cases: 1." in shown
    assert "also revoked on the same child's other cases: 1" in " ".join(shown.split())

    for reference in (first, second):
        signed = the_authorization(app, reference)
        assert signed.revoked_at is not None and signed.revoked_by == coordinator.id
        assert (signed.revocation_method, signed.revocation_received_on) == ("written", received)
    assert the_authorization(app, other_child).revoked_at is None

    (on_second,) = events(app, second, "authorization_revoked")
    assert on_second["via_case"] == first and on_second["links_closed"] == 1
    (on_first,) = events(app, first, "authorization_revoked")
    assert on_first["also_cases"] == [second] and "via_case" not in on_first
    assert open_links(app, second) == 0
    assert (
        audit_count(
            app, resource_type="records_authorization", detail=f"revoked:written via:{first}"
        )
        == 1
    )

    second_page = page(client, second)
    assert 'id="authorization-revoked"' in second_page
    assert "recorded from another case of the same child" in second_page
    assert "Record a revocation" not in second_page  # nothing left to revoke there
    refused = ask_doctors(client, second)
    assert refused.status_code == 409


def test_an_authorization_signed_after_the_revocation_arrived_stands(
    app: Flask,
    client: FlaskClient,
    coordinator: Account,  # noqa: F811
) -> None:
    first = second_opinion_case(app)
    signed_days_ago(app, first, 10)
    second = second_opinion_case(app)  # signed today: after the revocation reached us
    received = program_today(app) - timedelta(days=5)
    response = revoke(client, first, received_on=received.isoformat(), method="verbal")
    assert response.status_code == 303
    assert the_authorization(app, first).revoked_at is not None
    assert the_authorization(app, second).revoked_at is None
    (on_first,) = events(app, first, "authorization_revoked")
    assert "also_cases" not in on_first
    assert events(app, second, "authorization_revoked") == []
    assert "Record a revocation" in page(client, second)


def test_an_authorization_signed_the_day_the_revocation_arrived_stands(
    app: Flask,
    client: FlaskClient,
    coordinator: Account,  # noqa: F811
) -> None:
    # Which came first that day is unknown; the family signed it knowingly.
    first = second_opinion_case(app)
    signed_days_ago(app, first, 3)
    second = second_opinion_case(app)
    signed_days_ago(app, second, 1)
    received = program_today(app) - timedelta(days=1)
    assert (
        revoke(client, first, received_on=received.isoformat(), method="written").status_code == 303
    )
    assert the_authorization(app, second).revoked_at is None
