"""Duplicate-child linking (decision 12): a new request for a child who already has an open
case, from a physician or a family, joins that case, and the coordinator sees both."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake import create_app
from intake.domain.linking import CaseSummary, case_to_link
from intake.extensions import db
from intake.models import Referral, TimelineEvent
from intake.services.referrals import Submission, submit_referral
from tests.conftest import base_config, migrate_to_head
from tests.families.family_data import message, second_opinion
from tests.referral_data import PATIENT_DOB, PATIENT_FAMILY, PATIENT_GIVEN, valid_referral
from tests.staff.helpers import make_user, sign_in

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def test_the_earliest_open_case_is_the_one_to_join() -> None:
    cases = [
        CaseSummary(7, "closed", T0),
        CaseSummary(9, "under_review", T0 + timedelta(days=2)),
        CaseSummary(8, "needs_info", T0 + timedelta(days=1)),
        CaseSummary(10, "withdrawn", T0 + timedelta(days=3)),
    ]
    assert case_to_link(cases) == 8
    assert case_to_link([CaseSummary(7, "closed", T0)]) is None
    assert case_to_link([]) is None


def physician_referral(app: Flask, **overrides: Any) -> int:
    with app.app_context():
        referral, _created = submit_referral(
            Submission(str(uuid.uuid4()), valid_referral(**overrides))
        )
        return referral.id


def family_request(client: FlaskClient, **overrides: Any) -> None:
    child = {
        "patient_given_name": PATIENT_GIVEN,
        "patient_family_name": PATIENT_FAMILY,
        "patient_dob": PATIENT_DOB,
    }
    data = second_opinion(**{**child, **overrides})
    response = client.post(
        "/second-opinion",
        data={"submission_id": str(uuid.uuid4()), **data},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]


def case_of(app: Flask, kind: str) -> Referral:
    with app.app_context():
        referral = db.session.scalars(sa.select(Referral).where(Referral.kind == kind)).one()
        db.session.expunge(referral)
        return referral


def actions(app: Flask, referral_id: int) -> list[tuple[str, Any]]:
    with app.app_context():
        return [
            (event.action, event.detail.get("case_id"))
            for event in db.session.scalars(
                sa.select(TimelineEvent).where(TimelineEvent.referral_id == referral_id)
            )
        ]


def test_physician_then_family_links_the_family_request(app: Flask, client: FlaskClient) -> None:
    physician_id = physician_referral(app)
    # Spelled without accents, in capitals, with a space for the hyphen: the same child.
    family_request(client, patient_given_name="MATEO", patient_family_name="Nunez O'Brien")
    family = case_of(app, "second_opinion")
    assert family.linked_case_id == physician_id
    assert case_of(app, "physician_referral").linked_case_id is None
    assert ("linked_to_case", physician_id) in actions(app, family.id)
    assert ("case_linked", family.id) in actions(app, physician_id)


def test_family_then_physician_links_the_physician_referral(
    app: Flask, client: FlaskClient
) -> None:
    family_request(client)
    family = case_of(app, "second_opinion")
    physician_id = physician_referral(app, patient_given_name="mateo")
    with app.app_context():
        physician = db.session.get(Referral, physician_id)
        assert physician is not None and physician.linked_case_id == family.id
    assert case_of(app, "second_opinion").linked_case_id is None
    assert ("case_linked", physician_id) in actions(app, family.id)


def test_a_third_request_joins_the_first_open_case(app: Flask, client: FlaskClient) -> None:
    first = physician_referral(app)
    family_request(client)
    second = physician_referral(app)
    with app.app_context():
        assert db.session.get(Referral, second).linked_case_id == first  # type: ignore[union-attr]


def test_closed_cases_and_other_children_are_not_linked(app: Flask, client: FlaskClient) -> None:
    closed = physician_referral(app)
    with app.app_context():
        db.session.execute(sa.update(Referral).where(Referral.id == closed).values(status="closed"))
        db.session.commit()
    physician_referral(app, patient_dob="2016-03-15")  # another child: different DOB
    family_request(client)
    assert case_of(app, "second_opinion").linked_case_id is None


def test_a_message_is_not_a_case_new_requests_join(app: Flask, client: FlaskClient) -> None:
    data = message(
        patient_given_name=PATIENT_GIVEN,
        patient_family_name=PATIENT_FAMILY,
        patient_dob=PATIENT_DOB,
    )
    assert (
        client.post("/message", data={"submission_id": str(uuid.uuid4()), **data}).status_code
        == 303
    )
    family_request(client)
    assert case_of(app, "second_opinion").linked_case_id is None


def test_the_coordinator_sees_both_cases_on_each_case_page(app: Flask, client: FlaskClient) -> None:
    physician_id = physician_referral(app)
    family_request(client)
    family = case_of(app, "second_opinion")
    with app.app_context():
        physician = db.session.get(Referral, physician_id)
        assert physician is not None
        physician_reference = physician.reference
    account = make_user(app, "coord@program.test", queues=["physician_referral", "second_opinion"])
    sign_in(app, client, account)
    for shown, other in (
        (family.reference, physician_reference),
        (physician_reference, family.reference),
    ):
        page = client.get(f"/coordinator/referrals/{shown}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert "Linked cases" in html
        assert f"/coordinator/referrals/{other}" in html


@pytest.fixture(params=["database", "sqlite"])
def any_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The test database (PostgreSQL when reachable) and the embedded default, SQLite."""
    if request.param == "database":
        yield request.getfixturevalue("app")
        return
    url = f"sqlite:///{tmp_path / 'intake.sqlite'}"
    migrate_to_head(url, tmp_path)
    app = create_app(base_config(url, tmp_path))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_simultaneous_requests_for_one_child_make_one_case_and_links(any_app: Flask) -> None:
    """Physicians and a parent submitting for the same child at the same moment: one case is
    the first, every other joins it (a per-child lock on PostgreSQL, the write lock on SQLite)."""
    app = any_app
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            start.wait(timeout=10)
            physician_referral(app)
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with app.app_context():
        rows = db.session.execute(sa.select(Referral.id, Referral.linked_case_id)).all()
    assert len(rows) == 6
    first = [case_id for case_id, linked in rows if linked is None]
    assert len(first) == 1, rows
    assert all(linked == first[0] for case_id, linked in rows if case_id != first[0])
