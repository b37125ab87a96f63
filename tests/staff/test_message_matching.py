"""Matching an unmatched family message to the child's case by hand (decision 11).

A family that writes without a reference that matches, about a child we cannot find by name and
date of birth, leaves an unmatched message. The coordinator who finds the child's case enters
its reference and confirms it is the same child; the message then sits with that case.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from intake import create_app
from intake.domain.reference import format_reference
from intake.models import FamilyMessage
from tests.families.family_data import CHILD_DOB
from tests.staff.helpers import (
    Account,
    audit_count,
    csrf_token,
    get_referral,
    make_referral,
    make_user,
    sign_in,
)
from tests.staff.test_family_casework import (
    count,
    csrf_sign_in,
    events,
    listed,
    matched_message,
    move,
    page,
    send_message,
    the_message,
)

CONFIRMED = {"match_confirmed": "y"}


@pytest.fixture
def coordinator(app: Flask, client: FlaskClient) -> Account:
    account = make_user(app, "match-coord@program.test")
    sign_in(app, client, account)
    return account


def unmatched_message(app: Flask) -> str:
    reference = send_message(app, patient_given_name="Lucas", patient_family_name="Ortega")
    assert the_message(app, reference).match_method == "unmatched"
    return reference


def match(client: FlaskClient, message_case: str, **data: str) -> Any:
    return client.post(f"/coordinator/referrals/{message_case}/match-message", data=data)


def test_an_unmatched_message_is_matched_by_hand_and_then_sits_with_the_childs_case(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    message_case = unmatched_message(app)
    child = make_referral(
        app, patient_given_name="Lucas", patient_family_name="Ortega", patient_dob=CHILD_DOB
    )
    shown = page(client, message_case)
    assert 'id="match-message"' in shown and "Reference of the child's case" in shown

    # The reference as a coordinator might type it: lower case, spaced.
    typed = format_reference(child).lower().replace("-", " ")
    response = match(client, message_case, match_reference=typed, **CONFIRMED)
    assert response.status_code == 303

    message = the_message(app, message_case)
    assert message.match_method == "by_hand"
    assert message.matched_case_id == get_referral(app, child).id
    assert get_referral(app, message_case).linked_case_id == message.matched_case_id
    expected = {
        "actor": coordinator.email,
        "message": message_case,
        "case": child,
        "dob_matches": True,
    }
    assert events(app, message_case, "message_matched") == [expected]
    assert events(app, child, "message_matched") == [expected]
    assert audit_count(app, resource_type="family_message", detail=f"matched:{child}") == 1

    shown = page(client, message_case)
    assert f'href="/coordinator/referrals/{child}"' in shown and "(matched by hand)" in shown
    assert 'id="match-message"' not in shown  # matched once; no second form
    timeline = " ".join(page(client, child).split())
    assert f"<strong>message matched</strong> : message {message_case}" in timeline
    timeline = " ".join(page(client, message_case).split())
    assert f"<strong>message matched</strong> : case {child}" in timeline
    assert f'href="/coordinator/referrals/{message_case}"' in page(client, child)
    assert message_case not in listed(client, message="unmatched")

    # From now on the message's state changes go on the child's case timeline too.
    assert move(client, message_case, "in_progress").status_code == 303
    assert [e["to_state"] for e in events(app, child, "message_state_changed")] == ["in_progress"]


def test_dates_of_birth_that_differ_are_recorded_and_shown(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    # The family mistyped the date; the coordinator checked by phone.
    message_case = unmatched_message(app)
    child = make_referral(app)
    assert match(client, message_case, match_reference=child, **CONFIRMED).status_code == 303
    assert events(app, child, "message_matched")[0]["dob_matches"] is False
    assert "dates of birth differ" in page(client, child)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({**CONFIRMED}, "Enter the reference of the child's case."),
        ({"match_reference": "CHILD"}, "Confirm that you checked it is the same child."),
        ({"match_reference": "x" * 41, **CONFIRMED}, "A case reference is 11 letters and digits."),
        ({"match_reference": "not a reference", **CONFIRMED}, "for example 7K3M-Q9TX-2HF"),
        ({"match_reference": "OTHER", **CONFIRMED}, "is another family message"),
        ({"match_reference": "0000-0000-000", **CONFIRMED}, "No case 0000-0000-000 in your queues"),
    ],
)
def test_a_refused_match_keeps_the_input_says_why_and_changes_nothing(
    app: Flask, client: FlaskClient, coordinator: Account, data: dict[str, str], error: str
) -> None:
    message_case = unmatched_message(app)
    child = make_referral(app)
    other_message = send_message(app, patient_given_name="Ana", patient_family_name="Ruiz")
    typed = {"CHILD": child, "OTHER": other_message}.get(data.get("match_reference", ""))
    if typed:
        data = {**data, "match_reference": typed}
    response = match(client, message_case, **data)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert error in body.replace("&#39;", "'")
    if data.get("match_reference"):
        assert f'value="{data["match_reference"]}"' in body  # what was typed stays
    assert the_message(app, message_case).match_method == "unmatched"
    assert events(app, message_case, "message_matched") == []
    assert audit_count(app, resource_type="family_message", outcome="success") == 0


def test_a_case_outside_the_coordinators_queues_cannot_be_named(
    app: Flask, client: FlaskClient
) -> None:
    message_case = unmatched_message(app)
    child = make_referral(app)
    messages_only = make_user(app, "match-narrow@program.test", queues=["existing_patient_message"])
    sign_in(app, client, messages_only)
    response = match(client, message_case, match_reference=child, **CONFIRMED)
    # The same answer as for a reference that does not exist: nothing about the other case leaks.
    assert response.status_code == 400
    assert f"No case {format_reference(child)} in your queues" in response.get_data(as_text=True)
    assert the_message(app, message_case).match_method == "unmatched"
    # The attempt names the case it tried, for whoever reviews denials.
    assert audit_count(app, resource_type="family_message", detail=f"match:not_found:{child}") == 1


def test_a_message_already_matched_is_not_matched_again(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    message_case, case = matched_message(app)
    assert 'id="match-message"' not in page(client, message_case)
    other = make_referral(app)
    response = match(client, message_case, match_reference=other, **CONFIRMED)
    assert response.status_code == 409
    assert "matched to a case meanwhile" in response.get_data(as_text=True)
    message = the_message(app, message_case)
    assert (message.match_method, message.matched_case_id) == (
        "reference",
        get_referral(app, case).id,
    )
    assert audit_count(app, resource_type="family_message", detail="match:already_matched") == 1


def test_matching_needs_a_signed_in_care_team_member_a_message_and_a_csrf_token(
    app_config: dict[str, Any], app: Flask, client: FlaskClient
) -> None:
    message_case = unmatched_message(app)
    child = make_referral(app)
    data = {"match_reference": child, **CONFIRMED}

    anonymous = match(app.test_client(), message_case, **data)
    assert anonymous.status_code == 302 and "/coordinator/login" in anonymous.headers["Location"]

    reviewer = make_user(app, "match-reviewer@program.test", role="reviewer")
    sign_in(app, client, reviewer)
    assert match(client, message_case, **data).status_code == 403

    coordinator = make_user(app, "match-csrf@program.test")
    signed_in = app.test_client()
    sign_in(app, signed_in, coordinator)
    # A case that is not a message has nothing to match.
    assert match(signed_in, child, match_reference=message_case, **CONFIRMED).status_code == 404
    assert audit_count(app, action="denied", resource_type="family_message") == 1

    with_csrf = create_app({**app_config, "WTF_CSRF_ENABLED": True}).test_client()
    csrf_sign_in(app, with_csrf, coordinator)
    assert match(with_csrf, message_case, **data).status_code == 400
    assert the_message(app, message_case).match_method == "unmatched"
    token = csrf_token(page(with_csrf, message_case))
    assert match(with_csrf, message_case, csrf_token=token, **data).status_code == 303
    assert the_message(app, message_case).match_method == "by_hand"
    assert count(app, FamilyMessage) == 1


def test_the_workspace_stays_english_for_a_spanish_browser(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    message_case = unmatched_message(app)
    client.get("/status?lang=es")  # a Spanish public page earlier in the same browser
    response = client.get(
        f"/coordinator/referrals/{message_case}", headers={"Accept-Language": "es-MX,es;q=0.9"}
    )
    body = response.get_data(as_text=True)
    assert '<html lang="en">' in body
    assert "Match message" in body and "Message state" in body
    assert "Asociar" not in body and "Estado del mensaje" not in body
    # The public pages keep the family's choice.
    assert '<html lang="es">' in client.get("/status").get_data(as_text=True)


def test_the_timelines_do_not_name_a_case_outside_the_viewers_queues(
    app: Flask, client: FlaskClient
) -> None:
    message_case = unmatched_message(app)
    child = make_referral(app)
    admin = make_user(app, "match-admin@program.test", role="admin")
    sign_in(app, client, admin)
    assert match(client, message_case, match_reference=child, **CONFIRMED).status_code == 303

    messages_only = make_user(app, "match-care@program.test", queues=["existing_patient_message"])
    narrow = app.test_client()
    sign_in(app, narrow, messages_only)
    shown = " ".join(page(narrow, message_case).split())
    assert "<strong>message matched</strong> : case outside your queues" in shown
    assert child not in shown and format_reference(child) not in shown

    referrals_only = make_user(app, "match-doctors@program.test", queues=["physician_referral"])
    other = app.test_client()
    sign_in(app, other, referrals_only)
    shown = " ".join(page(other, child).split())
    assert "<strong>message matched</strong> : message outside your queues" in shown
    assert message_case not in shown


def test_a_message_joins_the_childs_group_at_its_root(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    from tests.staff.test_family_casework import second_opinion_case

    message_case = unmatched_message(app)
    first = second_opinion_case(app)
    later = second_opinion_case(app)  # the same child: linked to the first at intake
    root = get_referral(app, first).id
    assert get_referral(app, later).linked_case_id == root
    assert match(client, message_case, match_reference=later, **CONFIRMED).status_code == 303
    assert the_message(app, message_case).matched_case_id == get_referral(app, later).id
    # One hop to the group's root, so every case of the group lists the others.
    assert get_referral(app, message_case).linked_case_id == root
