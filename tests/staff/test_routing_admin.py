"""The routing table's admin page (decision 2): who is emailed about new cases and escalations.

Seeded from the environment, then kept by admins: a coordinator who leaves is switched off
without a deploy, a new one switched on, and the page says which cases nobody covers.
"""

from __future__ import annotations

import html
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake import create_app
from intake.extensions import db
from intake.models import Notification, Referral, RoutingRule
from intake.services import notifications, routing
from tests.staff.helpers import (
    audit_count,
    csrf_token,
    make_referral,
    make_user,
    sign_in,
)
from tests.staff.test_family_casework import csrf_sign_in

PAGE = "/coordinator/admin/routing"
EVERYTHING = [f"{kind}:{priority}" for kind, priority in routing.ALL_CELLS]


def active(app: Flask, role: str, email: str) -> set[tuple[str, str]]:
    with app.app_context():
        return {
            (rule.kind, rule.priority)
            for rule in db.session.scalars(
                sa.select(RoutingRule).where(
                    RoutingRule.role == role, RoutingRule.email == email, RoutingRule.active
                )
            )
        }


def admin_client(app: Flask) -> FlaskClient:
    admin = make_user(app, "routing-admin@program.test", role="admin")
    client = app.test_client()
    sign_in(app, client, admin)
    return client


def test_an_admin_adds_narrows_and_switches_off_an_address(app: Flask) -> None:
    client = admin_client(app)
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "Notification routing" in page.get_data(as_text=True)

    added = client.post(
        PAGE,
        data={
            "adding": "1",
            "email": " New.Coord@Hospital.Example.ORG ",
            "role": "coordinator",
            "cells": ["physician_referral:P1", "physician_referral:P2"],
        },
    )
    assert added.status_code == 303
    email = "new.coord@hospital.example.org"
    assert active(app, "coordinator", email) == {
        ("physician_referral", "P1"),
        ("physician_referral", "P2"),
    }
    shown = html.unescape(client.get(PAGE).get_data(as_text=True))
    assert f"{email} (coordinator): 2 switched on, 0 switched off." in shown
    assert f"<strong>{email}</strong>" in shown

    # The row's own form: P1 only.
    narrowed = client.post(
        PAGE, data={"email": email, "role": "coordinator", "cells": ["physician_referral:P1"]}
    )
    assert narrowed.status_code == 303
    assert active(app, "coordinator", email) == {("physician_referral", "P1")}

    # Everything off: the rows stay (switched off, listed) so the history reads.
    off = client.post(PAGE, data={"email": email, "role": "coordinator"})
    assert off.status_code == 303
    assert active(app, "coordinator", email) == set()
    shown = html.unescape(client.get(PAGE).get_data(as_text=True))
    assert f"<strong>{email}</strong> · switched off" in shown
    with app.app_context():
        rows = db.session.scalar(
            sa.select(sa.func.count()).select_from(RoutingRule).where(RoutingRule.email == email)
        )
        assert rows == 2
    assert audit_count(app, resource_type="routing_rule") == 3
    # Each change says which kinds and priorities it switched.
    assert audit_count(app, resource_type="routing_rule", detail="on:PR1,PR2 off:-") == 1
    assert audit_count(app, resource_type="routing_rule", detail="on:- off:PR2") == 1


def test_a_switched_off_coordinator_is_not_emailed_about_the_next_case(app: Flask) -> None:
    client = admin_client(app)
    leaving, staying = "leaving@hospital.example.org", "staying@hospital.example.org"
    for email in (leaving, staying):
        data = {"adding": "1", "email": email, "role": "coordinator", "cells": EVERYTHING}
        assert client.post(PAGE, data=data).status_code == 303
    assert client.post(PAGE, data={"email": leaving, "role": "coordinator"}).status_code == 303

    reference = make_referral(app)
    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert referral is not None
        recipients = db.session.scalar(
            sa.select(Notification.recipients).where(
                Notification.referral_id == referral.id,
                Notification.kind == notifications.COORDINATOR_NEW,
            )
        )
    assert recipients is not None and staying in recipients and leaving not in recipients


def test_the_page_says_which_cases_nobody_covers(
    app_config: dict[str, Any],
    app: Flask,  # the app fixture cleans the database afterwards
) -> None:
    unconfigured = create_app({**app_config, "COORDINATOR_EMAILS": [], "PROGRAM_LEAD_EMAILS": []})
    with unconfigured.app_context():
        db.session.execute(sa.delete(RoutingRule))
        db.session.commit()
    client = admin_client(unconfigured)
    data = {
        "adding": "1",
        "email": "p1-only@hospital.example.org",
        "role": "coordinator",
        "cells": ["physician_referral:P1"],
    }
    assert client.post(PAGE, data=data).status_code == 303
    shown = html.unescape(client.get(PAGE).get_data(as_text=True))
    assert 'id="routing-gaps"' in shown
    assert "no address for Physician referrals P2, Physician referrals P3, Second opinions P1" in (
        shown
    )
    assert "NOBODY is emailed about those new cases" in shown
    assert "those escalations go to the case's coordinators instead" in shown


def test_a_bad_address_or_nothing_ticked_is_refused_with_the_input_kept(app: Flask) -> None:
    client = admin_client(app)
    before = audit_count(app, resource_type="routing_rule")
    bad = client.post(
        PAGE,
        data={"adding": "1", "email": "not-an-address", "role": "coordinator", "cells": EVERYTHING},
    )
    assert bad.status_code == 400
    body = bad.get_data(as_text=True)
    assert 'value="not-an-address"' in body and 'id="error-summary"' in body
    nothing = client.post(
        PAGE, data={"adding": "1", "email": "someone@hospital.example.org", "role": "lead"}
    )
    assert nothing.status_code == 400
    assert "Choose at least one kind of case and priority." in nothing.get_data(as_text=True)
    forged = client.post(
        PAGE, data={"email": "x@hospital.example.org", "role": "coordinator", "cells": ["bogus:P1"]}
    )
    assert forged.status_code == 400
    # A row's form (no "adding") only edits an address already in the table.
    stranger = client.post(
        PAGE, data={"email": "stranger@hospital.example.org", "role": "lead", "cells": EVERYTHING}
    )
    assert stranger.status_code == 400
    assert "That address is not in the routing table" in stranger.get_data(as_text=True)
    unknown_role = client.post(
        PAGE, data={"email": "x@hospital.example.org", "role": "superuser", "cells": EVERYTHING}
    )
    assert unknown_role.status_code == 400
    assert active(app, "lead", "someone@hospital.example.org") == set()
    assert audit_count(app, resource_type="routing_rule") == before


def test_only_admins_and_only_with_a_csrf_token(
    app_config: dict[str, Any], app: Flask, client: FlaskClient
) -> None:
    coordinator = make_user(app, "routing-coord@program.test")
    sign_in(app, client, coordinator)
    assert client.get(PAGE).status_code == 403
    address = "x@hospital.example.org"
    data = {"adding": "1", "email": address, "role": "coordinator", "cells": EVERYTHING}
    assert client.post(PAGE, data=data).status_code == 403
    assert app.test_client().get(PAGE).status_code == 302  # to the sign-in page

    admin = make_user(app, "routing-csrf@program.test", role="admin")
    with_csrf = create_app({**app_config, "WTF_CSRF_ENABLED": True}).test_client()
    csrf_sign_in(app, with_csrf, admin)
    assert with_csrf.post(PAGE, data=data).status_code == 400
    assert active(app, "coordinator", "x@hospital.example.org") == set()
    token = csrf_token(with_csrf.get(PAGE).get_data(as_text=True))
    assert with_csrf.post(PAGE, data={**data, "csrf_token": token}).status_code == 303
    assert len(active(app, "coordinator", "x@hospital.example.org")) == len(routing.ALL_CELLS)


def test_reseeding_does_not_switch_back_on_what_an_admin_switched_off(app: Flask) -> None:
    client = admin_client(app)
    seeded = app.config["COORDINATOR_EMAILS"][0]
    assert len(active(app, "coordinator", seeded)) == 9
    assert client.post(PAGE, data={"email": seeded, "role": "coordinator"}).status_code == 303
    with app.app_context():
        assert routing.seed_routing(app.config) == 0
    assert active(app, "coordinator", seeded) == set()


def test_an_upper_case_seeded_address_is_one_address(
    app_config: dict[str, Any], app: Flask
) -> None:
    seeded = create_app({**app_config, "COORDINATOR_EMAILS": ["Intake.Team@Hospital.Example.ORG"]})
    with seeded.app_context():
        db.session.execute(sa.delete(RoutingRule))
        db.session.commit()
        routing.seed_routing(seeded.config)
        assert routing.seed_routing(seeded.config) == 0  # the same address, whatever its case
    client = admin_client(seeded)
    email = "intake.team@hospital.example.org"
    assert f"<strong>{email}</strong>" in client.get(PAGE).get_data(as_text=True)
    assert client.post(PAGE, data={"email": email, "role": "coordinator"}).status_code == 303
    assert active(seeded, "coordinator", email) == set()


def test_a_family_message_has_one_switch(app: Flask) -> None:
    # A message has no priority (rule R0): it is routed as P3, and its seeded P1/P2 rows follow.
    client = admin_client(app)
    seeded = app.config["COORDINATOR_EMAILS"][0]
    page = client.get(PAGE).get_data(as_text=True)
    assert "All (no priority)" in page
    assert 'value="existing_patient_message:P1"' not in page
    cells = [c for c in EVERYTHING if not c.startswith("existing_patient_message")]
    data = {"email": seeded, "role": "coordinator", "cells": cells}
    assert client.post(PAGE, data=data).status_code == 303
    assert not {
        cell for cell in active(app, "coordinator", seeded) if cell[0] == "existing_patient_message"
    }
