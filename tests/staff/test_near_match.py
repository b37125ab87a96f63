"""Near matches (decision 12): open cases that may be the same child are offered on the case
page; a coordinator links them or says they are different children. Scope (decision 10), roles
and CSRF apply to every action."""

from __future__ import annotations

import html
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake import create_app
from intake.extensions import db
from intake.models import Referral
from tests.staff.helpers import (
    Account,
    audit_count,
    csrf_token,
    get_referral,
    make_referral,
    make_user,
    sign_in,
)
from tests.staff.test_family_casework import csrf_sign_in, events, second_opinion_case

DOB = "2015-03-04"


@pytest.fixture
def coordinator(app: Flask, client: FlaskClient) -> Account:
    account = make_user(app, "near-coord@program.test")
    sign_in(app, client, account)
    return account


def child(app: Flask, given: str, family: str = "Smith", dob: str = DOB) -> str:
    return make_referral(app, patient_given_name=given, patient_family_name=family, patient_dob=dob)


def page(client: FlaskClient, reference: str) -> str:
    response = client.get(f"/coordinator/referrals/{reference}")
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def offered(client: FlaskClient, reference: str) -> str:
    """The "Possible same child" section of the page, or "" when there is none."""
    shown = page(client, reference)
    start = shown.find('id="near-matches"')
    return "" if start < 0 else shown[start : shown.index("</section>", start)]


def decide(client: FlaskClient, reference: str, action: str, candidate: str, **extra: str) -> Any:
    return client.post(
        f"/coordinator/referrals/{reference}/near-match/{action}",
        data={"candidate": candidate, **extra},
    )


def set_values(app: Flask, reference: str, **values: Any) -> None:
    with app.app_context():
        db.session.execute(
            sa.update(Referral).where(Referral.reference == reference).values(**values)
        )
        db.session.commit()


def test_a_misspelled_name_is_offered_and_linked_to_the_earlier_case(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    earlier = child(app, "Jonathan")
    later = child(app, "Jonathon")
    section = offered(client, later)
    assert "Possible same child" in section and earlier in section
    assert "names spelled slightly differently" in section
    assert "Link as the same child" in section and "Not the same child" in section
    assert later in offered(client, earlier)  # both pages offer the pair

    # Decided from the earlier case's page: still the later case points at the earlier one.
    response = decide(client, earlier, "link", later)
    assert response.status_code == 303
    assert get_referral(app, later).linked_case_id == get_referral(app, earlier).id
    assert get_referral(app, earlier).linked_case_id is None
    earlier_id, later_id = get_referral(app, earlier).id, get_referral(app, later).id
    assert [e["case_id"] for e in events(app, later, "linked_to_case")] == [earlier_id]
    assert [e["case_id"] for e in events(app, earlier, "case_linked")] == [later_id]
    assert events(app, later, "linked_to_case")[0]["actor"] == coordinator.email
    assert audit_count(app, detail=f"near_match_link:{earlier}", resource_id=later) == 1

    # No longer offered; listed with the linked cases instead.
    assert offered(client, later) == "" and offered(client, earlier) == ""
    assert f"/coordinator/referrals/{earlier}" in page(client, later)
    again = decide(client, later, "link", earlier)
    assert again.status_code == 409
    assert "no longer offered as possibly the same child" in html.unescape(
        again.get_data(as_text=True)
    )
    assert audit_count(app, detail="near_match:not_offered", outcome="failure") == 1


def test_not_the_same_child_is_recorded_and_not_offered_again(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    first = child(app, "Valentina", "García López", "2015-03-04")
    second = child(app, "Valentina", "García López", "2015-04-03")  # day and month swapped
    assert "day and month of birth swapped" in offered(client, second)
    response = decide(client, second, "dismiss", first)
    assert response.status_code == 303
    first_id, second_id = get_referral(app, first).id, get_referral(app, second).id
    assert [e["case_id"] for e in events(app, second, "near_match_dismissed")] == [first_id]
    assert [e["case_id"] for e in events(app, first, "near_match_dismissed")] == [second_id]
    assert audit_count(app, detail=f"near_match_dismissed:{first}") == 1
    assert offered(client, first) == "" and offered(client, second) == ""
    # A stale page cannot link them afterwards.
    stale = decide(client, first, "link", second)
    assert stale.status_code == 409
    assert get_referral(app, first).linked_case_id is None
    assert get_referral(app, second).linked_case_id is None


def test_twins_exact_matches_closed_cases_and_messages_are_not_offered(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    mateo = child(app, "Mateo", "Núñez")
    child(app, "Lucía", "Núñez")  # a twin: same DOB and family name
    child(app, "Matea", "Núñez")  # another twin
    exact = child(app, "MATEO", "Nunez")  # the same key: linked at intake, not "near"
    assert get_referral(app, exact).linked_case_id == get_referral(app, mateo).id
    closed = child(app, "Mateo", "Nuñes")
    set_values(app, closed, status="closed")
    assert offered(client, mateo) == ""
    assert offered(client, exact) == ""
    # A closed case offers nothing either.
    assert offered(client, closed) == ""


def test_only_cases_in_scope_are_shown_the_others_are_counted(
    app: Flask, client: FlaskClient
) -> None:
    physician = child(app, "Hannah", "Whitfield", "2016-02-11")
    near_physician = child(app, "Hanah", "Whitfield", "2016-02-11")
    family = second_opinion_case(
        app,
        patient_given_name="Hannah",
        patient_family_name="Whitfeld",
        patient_dob="2016-02-11",
    )
    referrals_only = make_user(app, "near-narrow@program.test", queues=["physician_referral"])
    sign_in(app, client, referrals_only)
    section = offered(client, physician)
    assert near_physician in section and family not in section
    assert "1 more possible match is in queues you do not work" in section

    denied = audit_count(app, action="denied")
    assert decide(client, physician, "link", family).status_code == 404
    assert decide(client, family, "dismiss", physician).status_code == 404
    assert audit_count(app, action="denied") == denied + 2
    assert get_referral(app, family).linked_case_id is None
    assert events(app, physician, "near_match_dismissed") == []

    # An admin sees both.
    admin = make_user(app, "near-admin@program.test", role="admin")
    other = app.test_client()
    sign_in(app, other, admin)
    section = offered(other, physician)
    assert near_physician in section and family in section and "more possible" not in section


def test_reviewers_see_the_offer_but_may_not_decide(app: Flask, client: FlaskClient) -> None:
    earlier = child(app, "Jonathan")
    later = child(app, "Jonathon")
    reviewer = make_user(app, "near-reviewer@program.test", role="reviewer")
    set_values(app, earlier, reviewer_id=reviewer.id)
    set_values(app, later, reviewer_id=reviewer.id)
    sign_in(app, client, reviewer)
    section = offered(client, later)
    assert earlier in section and "Link as the same child" not in section
    assert decide(client, later, "link", earlier).status_code == 403
    assert decide(client, later, "dismiss", earlier).status_code == 403
    assert get_referral(app, later).linked_case_id is None
    assert events(app, later, "near_match_dismissed") == []


def test_a_missing_or_unknown_candidate_is_refused(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    earlier = child(app, "Jonathan")
    later = child(app, "Jonathon")
    stranger = child(app, "Olivia", "Brown", "2012-07-30")
    missing = decide(client, later, "link", "")
    assert missing.status_code == 400
    assert "Choose a case under “Possible same child”" in html.unescape(
        missing.get_data(as_text=True)
    )
    assert decide(client, later, "link", "ZZZZ-ZZZZ-ZZZ").status_code == 404
    assert decide(client, later, "link", stranger).status_code == 409
    assert decide(client, later, "link", later).status_code == 409
    assert get_referral(app, later).linked_case_id is None
    assert get_referral(app, stranger).linked_case_id is None
    assert earlier in offered(client, later)


def test_decisions_need_a_csrf_token(app_config: dict[str, Any], app: Flask) -> None:
    earlier = child(app, "Jonathan")
    later = child(app, "Jonathon")
    account = make_user(app, "near-csrf@program.test")
    client = create_app({**app_config, "WTF_CSRF_ENABLED": True}).test_client()
    csrf_sign_in(app, client, account)
    assert decide(client, later, "link", earlier).status_code == 400
    assert decide(client, later, "dismiss", earlier).status_code == 400
    assert get_referral(app, later).linked_case_id is None
    token = csrf_token(page(client, later))
    assert decide(client, later, "link", earlier, csrf_token=token).status_code == 303
    assert get_referral(app, later).linked_case_id == get_referral(app, earlier).id


def test_linking_joins_whole_groups_so_links_stay_one_hop(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    """Decision 12 groups one child's cases under the oldest: linking a near match to a case
    that is itself linked, or a case others point at, never makes a chain."""
    a1 = child(app, "Jonathan")
    a2 = child(app, "Jonathan")  # exact: linked at intake to a1
    b1 = child(app, "Jonathon")
    b2 = child(app, "Jonathon")  # exact: linked at intake to b1
    a1_id = get_referral(app, a1).id
    assert get_referral(app, a2).linked_case_id == a1_id
    assert get_referral(app, b2).linked_case_id == get_referral(app, b1).id

    # One offer per group: a1's group is offered once, by its oldest case.
    section = offered(client, b1)
    assert a1 in section and a2 not in section

    # Decided against the group's member a2: the later group joins a1, members included.
    assert decide(client, b1, "link", a2).status_code == 303
    for reference in (a2, b1, b2):
        assert get_referral(app, reference).linked_case_id == a1_id, reference
    assert get_referral(app, a1).linked_case_id is None
    for reference in (a1, a2, b1, b2):
        linked = page(client, reference)
        assert all(
            f"/coordinator/referrals/{other}" in linked
            for other in (a1, a2, b1, b2)
            if other != reference
        ), reference
        assert offered(client, reference) == ""

    # A new exact request for a member joins the group's root, not the member.
    b3 = child(app, "Jonathon")
    assert get_referral(app, b3).linked_case_id == a1_id
