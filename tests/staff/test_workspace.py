"""Work queue, case detail, role scope, case actions, downloads and the audit trail."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake.domain import statuses
from intake.domain.reference import format_reference
from intake.extensions import db
from intake.models import Alert, AuditEvent, BreakGlassGrant, Document, Notification, Referral, User
from intake.services import audit, notifications
from intake.services.uploads import _path
from tests.referral_data import PHI_VALUES
from tests.samples import tiny_pdf
from tests.staff.helpers import (
    audit_count,
    get_referral,
    make_referral,
    make_user,
    set_referral,
    sign_in,
)


@pytest.fixture
def coordinator(app: Flask, client: FlaskClient):  # type: ignore[no-untyped-def]
    account = make_user(app, "coord@program.test")
    sign_in(app, client, account)
    return account


def test_queue_lists_cases_by_priority_with_counts_and_time_left(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    p2 = make_referral(app)
    p1 = make_referral(
        app, urgent=True, urgency_reason="Rising blasts", rising_peripheral_blasts="y"
    )
    assert get_referral(app, p1).triage_priority == "P1"
    html = client.get("/coordinator/").get_data(as_text=True)
    assert html.index(p1[:4]) < html.index(p2[:4] + "-" + p2[4:8])
    assert "Being reviewed" in html
    assert " left" in html or "overdue" in html
    assert 'class="count">2<' in html
    # A case still missing its flow report has no review clock yet: the row counts down to
    # the acknowledgement deadline and names what is missing.
    incomplete = make_referral(app, flow_report=False, patient_given_name="Ines")
    assert get_referral(app, incomplete).review_due_at is None
    html = client.get("/coordinator/").get_data(as_text=True)
    row = html[html.index("Ines") : html.index("</tr>", html.index("Ines"))]
    assert "acknowledge: " in row and "Flow cytometry report" in row


def test_queue_filters_and_search(app: Flask, client: FlaskClient, coordinator: object) -> None:
    mateo = make_referral(app)
    other = make_referral(app, patient_given_name="Ana", patient_family_name="Silva")
    html = client.get("/coordinator/?q=silva").get_data(as_text=True)
    assert other[:4] in html and mateo[:4] + "-" + mateo[4:8] not in html
    html = client.get(f"/coordinator/?q={mateo.lower()}").get_data(as_text=True)
    assert "Mateo" in html and "Silva" not in html
    assert "No cases match" in client.get("/coordinator/?status=accepted").get_data(as_text=True)
    assert "No cases match" in client.get("/coordinator/?assignee=me").get_data(as_text=True)
    assert "Mateo" in client.get("/coordinator/?assignee=none").get_data(as_text=True)
    assert "Mateo" in client.get("/coordinator/?kind=physician_referral").get_data(as_text=True)
    assert "No cases match" in client.get("/coordinator/?priority=P1").get_data(as_text=True)
    set_referral(app, mateo, review_due_at=datetime.now(UTC) - timedelta(days=1))
    overdue = client.get("/coordinator/?overdue=1").get_data(as_text=True)
    assert "Mateo" in overdue and "Silva" not in overdue


def test_queue_keyset_pagination_visits_every_case_once(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    app.config["QUEUE_PAGE_SIZE"] = 2
    references = {make_referral(app) for _ in range(5)}
    seen: list[str] = []
    url = "/coordinator/"

    for _ in range(5):
        html = client.get(url).get_data(as_text=True)
        seen += [r.replace("-", "") for r in re.findall(r'class="case-link">([0-9A-Z-]+)<', html)]
        found = re.search(r'href="([^"]+)" rel="next"', html)
        if not found:
            break
        url = found.group(1).replace("&amp;", "&")
    assert sorted(seen) == sorted(references)


def test_case_detail_shows_everything_and_writes_one_audit_row(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    reference = make_referral(app)
    before = audit_count(app, action="R", resource_type="referral", resource_id=reference)
    rows_before = audit_count(app)
    response = client.get(f"/coordinator/referrals/{reference}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for text in (
        "About you (the referring clinician)",
        "Relapse history",
        "Mateo",
        "Riverside Children",
        "rules version",
        "Timeline",
        "Missing items",
        # Choice answers read as the form showed them, not as stored codes.
        "B-cell acute lymphoblastic leukemia (B-ALL)",
    ):
        assert text in html, text

    assert re.search(r"<strong>R\d</strong> <code>", html), "triage reasons carry rule ids"
    after = audit_count(app, action="R", resource_type="referral", resource_id=reference)
    assert after == before + 1
    assert audit_count(app) == rows_before + 1  # exactly one row for one view, nothing else
    with app.app_context():
        row = db.session.scalar(
            sa.select(AuditEvent)
            .where(AuditEvent.resource_id == reference)
            .order_by(AuditEvent.id.desc())
        )
        assert row is not None and row.user_email == "coord@program.test" and row.request_id
        # No PHI values in the trail.
        assert "Mateo" not in str([row.detail, row.resource_id, row.resource_type])


def test_family_cases_are_shown_grouped_as_on_their_own_form(app: Flask) -> None:
    from tests.families.family_data import CHILD_GIVEN, second_opinion

    sent = app.test_client().post(
        "/second-opinion",
        data={"submission_id": str(uuid.uuid4()), **second_opinion()},
        content_type="multipart/form-data",
    )
    assert sent.status_code == 303
    with app.app_context():
        reference = db.session.scalar(
            sa.select(Referral.reference).where(Referral.kind == "second_opinion")
        )
    admin = make_user(app, "family-admin@program.test", role="admin")
    client = app.test_client()
    sign_in(app, client, admin)
    page = html.unescape(client.get(f"/coordinator/referrals/{reference}").get_data(as_text=True))
    for heading in ("Your child's illness", "Your child's doctors", "Your questions"):
        assert f"<h2>{heading}</h2>" in page, heading
    assert CHILD_GIVEN in page and "Relapse history" not in page


def test_out_of_scope_case_is_404_with_logged_denial(app: Flask) -> None:
    reference = make_referral(app)
    outsider = make_user(app, "outsider@program.test", queues=["second_opinion"])
    reviewer = make_user(app, "reviewer@program.test", role="reviewer")
    admin = make_user(app, "admin@program.test", role="admin")
    clients = {}
    for account in (outsider, reviewer, admin):
        clients[account.email] = app.test_client()
        sign_in(app, clients[account.email], account)
    for email in ("outsider@program.test", "reviewer@program.test"):
        c = clients[email]
        assert c.get(f"/coordinator/referrals/{reference}").status_code == 404
        assert (
            c.post(f"/coordinator/referrals/{reference}/notes", data={"body": "x"}).status_code
            == 404
        )
        assert (
            c.post(
                f"/coordinator/referrals/{reference}/status", data={"target": "withdrawn"}
            ).status_code
            == 404
        )
        assert "Mateo" not in c.get("/coordinator/").get_data(as_text=True)
    assert audit_count(app, action="denied", user_id=outsider.id) >= 3
    assert get_referral(app, reference).status == "under_review"
    assert (
        clients["admin@program.test"].get(f"/coordinator/referrals/{reference}").status_code == 200
    )
    set_referral(app, reference, reviewer_id=reviewer.id)
    assert (
        clients["reviewer@program.test"].get(f"/coordinator/referrals/{reference}").status_code
        == 200
    )


def _restricted_urls(app: Flask, role: str) -> list[tuple[str, str]]:
    """Every (method, URL) whose view is limited to roles that exclude ``role``."""
    found = []
    for rule in app.url_map.iter_rules():
        roles = getattr(app.view_functions[rule.endpoint], "staff_roles", ())
        if not roles or role in roles:
            continue
        url = re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>", "1", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, url))
    return found


def test_break_glass_is_time_boxed_needs_a_reason_alerts_and_audits_every_use(
    app: Flask,
) -> None:
    reference = make_referral(app)
    outsider = make_user(app, "glass@program.test", queues=["second_opinion"])
    admin = make_user(app, "glass-admin@program.test", role="admin")
    client, boss = app.test_client(), app.test_client()
    sign_in(app, client, outsider)
    sign_in(app, boss, admin)
    case = f"/coordinator/referrals/{reference}"
    assert client.get(case).status_code == 404
    short = client.post("/coordinator/break-glass", data={"reference": reference, "reason": "x"})
    assert short.status_code == 400 and client.get(case).status_code == 404
    reason = "Family called the night line; their coordinator is off sick."
    ask = {"reference": reference, "reason": reason}
    granted = client.post("/coordinator/break-glass", data=ask)
    assert granted.status_code == 303 and granted.headers["Location"] == case
    with app.app_context():
        alert = db.session.scalar(sa.select(Alert).where(Alert.code == "break_glass"))
        assert alert is not None and "glass@program.test" in alert.message
        assert "night line" not in alert.message  # the free-text reason stays out of alerts
    rows = audit_count(app)
    assert client.get(case).status_code == 200
    assert audit_count(app) == rows + 1  # one view, one row, marked as emergency access
    assert audit_count(app, action="break_glass", user_id=outsider.id, detail="view") == 1
    note = client.post(f"{case}/notes", data={"body": "Called the family back."})
    assert note.status_code == 303
    assert audit_count(app, action="break_glass", user_id=outsider.id) == 3  # grant, view, use
    assert reason in boss.get("/coordinator/admin/audit").get_data(as_text=True)
    # The grant expires; then the case is out of scope again.
    with app.app_context():
        db.session.execute(
            sa.update(BreakGlassGrant).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        db.session.commit()
    assert client.get(case).status_code == 404
    # Admins see everything already; the page is for coordinators and reviewers.
    assert boss.get("/coordinator/break-glass").status_code == 403


def test_coordinator_cannot_reach_admin_pages(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    restricted = _restricted_urls(app, "coordinator")
    urls = {url for _method, url in restricted}
    assert {"/coordinator/admin/users", "/coordinator/metrics/export.csv"} <= urls
    for method, url in restricted:
        assert client.open(url, method=method).status_code == 403, (method, url)
    assert client.post("/coordinator/admin/users", data={"email": "x@y.z"}).status_code == 403
    assert audit_count(app, action="denied", resource_type="page") >= 5


def test_extra_form_fields_change_nothing(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    reference = make_referral(app)
    other = make_referral(app)
    before = get_referral(app, reference)
    tamper = {
        "status": "closed",
        "assignee_id": "999",
        "id": "1",
        "created_at": "2000-01-01",
        "reviewer_id": "999",
        "reference": other,
    }
    client.post(
        f"/coordinator/referrals/{reference}/notes", data={"body": "Called the clinic.", **tamper}
    )
    client.post(
        f"/coordinator/referrals/{reference}/assign",
        data={"assignee": "", "reviewer": "", **tamper},
    )
    after = get_referral(app, reference)
    assert (after.status, after.assignee_id, after.reviewer_id, after.id, after.created_at) == (
        before.status,
        before.assignee_id,
        before.reviewer_id,
        before.id,
        before.created_at,
    )
    assert get_referral(app, other).status == "under_review"


def test_assign_to_me_and_note(app: Flask, client: FlaskClient, coordinator) -> None:  # type: ignore[no-untyped-def]
    reference = make_referral(app)
    response = client.post(
        f"/coordinator/referrals/{reference}/assign",
        data={"assignee": "", "reviewer": "", "assign_to_me": "1"},
    )
    assert response.status_code == 303
    referral = get_referral(app, reference)
    # Decision 4: assigning is not contact with the referrer or family.
    assert referral.assignee_id == coordinator.id and referral.acknowledged_at is None
    assert (
        client.post(f"/coordinator/referrals/{reference}/notes", data={"body": ""}).status_code
        == 400
    )
    client.post(f"/coordinator/referrals/{reference}/notes", data={"body": "Spoke to Dr. Okafor."})
    assert get_referral(app, reference).acknowledged_at is None  # a plain note is not contact
    html = client.get(f"/coordinator/referrals/{reference}").get_data(as_text=True)
    assert "Spoke to Dr. Okafor." in html and "assigned" in html
    assert 'id="case-ack-due"' in html and "note-contact" not in html
    bad = client.post(f"/coordinator/referrals/{reference}/assign", data={"assignee": "424242"})
    assert bad.status_code == 400


def _expected_refusal(current: str, target: str, role: str, reason: str | None) -> str:
    try:
        statuses.check_transition(current, target, role=role, reason_code=reason)
    except statuses.TransitionError as error:
        return error.message
    raise AssertionError(f"{current} -> {target} is allowed")


def test_state_machine_through_the_workspace(app: Flask) -> None:
    """Every allowed transition works; every other one is refused with the state machine's
    own message. Driven by statuses.TRANSITIONS; moves to needs_info go through 'Request more
    information' (it sends the link and pauses the clock), as in the UI."""
    coordinator = make_user(app, "sm-coord@program.test")
    reviewer = make_user(app, "sm-rev@program.test", role="reviewer")
    as_coord, as_rev = app.test_client(), app.test_client()
    sign_in(app, as_coord, coordinator)
    sign_in(app, as_rev, reviewer)
    reference = make_referral(app)
    set_referral(app, reference, reviewer_id=reviewer.id)
    url = f"/coordinator/referrals/{reference}"
    moves = 0
    for current in statuses.ALL_STATUSES:
        for target in statuses.ALL_STATUSES:
            set_referral(app, reference, status=current, clock_paused_at=None)
            reviewer_move = target in statuses.REVIEWER_ONLY
            client = as_rev if reviewer_move else as_coord
            role = "reviewer" if reviewer_move else "coordinator"
            reason = "other" if target in statuses.REASON_REQUIRED else None
            if target == statuses.NEEDS_INFO:
                ask = {"items": ["insurance_card"], "audience": "referrer"}
                response = client.post(f"{url}/request-info", data=ask)
            else:
                move = {"target": target, "reason_code": reason or "", "confirm": "y"}
                response = client.post(f"{url}/status", data=move)
            allowed = target in statuses.TRANSITIONS[current]
            after = get_referral(app, reference)
            if allowed:
                assert response.status_code == 303, (current, target, response.status_code)
                assert after.status == target, (current, target)
                if target == statuses.NEEDS_INFO:
                    assert after.clock_paused_at is not None
                moves += 1
            else:
                assert response.status_code == 409, (current, target, response.status_code)
                assert after.status == current, (current, target)
                message = _expected_refusal(current, target, role, reason)
                assert message in html.unescape(response.get_data(as_text=True)), (current, target)
    assert moves == sum(len(targets) for targets in statuses.TRANSITIONS.values())
    # needs_info through the plain status form is refused, pointing at the right action.
    set_referral(app, reference, status=statuses.UNDER_REVIEW)
    response = as_coord.post(f"{url}/status", data={"target": "needs_info"})
    assert response.status_code == 409
    assert "Request more information" in html.unescape(response.get_data(as_text=True))


def test_only_reviewers_record_declined_and_need_a_reason(app: Flask) -> None:
    coordinator = make_user(app, "d-coord@program.test")
    reviewer = make_user(app, "d-rev@program.test", role="reviewer")
    as_coord, as_rev = app.test_client(), app.test_client()
    sign_in(app, as_coord, coordinator)
    sign_in(app, as_rev, reviewer)
    reference = make_referral(app)
    set_referral(app, reference, reviewer_id=reviewer.id)
    refused = as_coord.post(
        f"/coordinator/referrals/{reference}/status",
        data={"target": "declined", "reason_code": "other"},
    )
    assert refused.status_code == 409
    assert "only a reviewer may record" in refused.get_data(as_text=True)
    no_reason = as_rev.post(
        f"/coordinator/referrals/{reference}/status", data={"target": "declined"}
    )
    assert no_reason.status_code == 409
    assert "needs a reason code" in no_reason.get_data(as_text=True)
    ok = as_rev.post(
        f"/coordinator/referrals/{reference}/status",
        data={"target": "declined", "reason_code": "not_eligible_age", "confirm": "y"},
    )
    assert ok.status_code == 303
    referral = get_referral(app, reference)
    assert referral.status == "declined" and referral.status_reason == "not_eligible_age"


def _attach(app: Flask, reference: str) -> str:
    from intake.services import uploads

    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert referral is not None
        blob = uploads.store(tiny_pdf(), app.config)
        document = Document(
            id="0f5e8a3c-0000-4000-8000-000000000001"
            if not referral.documents
            else "0f5e8a3c-0000-4000-8000-000000000002",
            referral_id=referral.id,
            slot="pathology",
            display_name='path "report".pdf',
            mime_type="application/pdf",
            size_bytes=blob.size_bytes,
            sha256=blob.sha256,
            storage_key=blob.storage_key,
            key_id=blob.key_id,
        )
        db.session.add(document)
        db.session.commit()
        return document.id


def test_document_download_is_authorized_attachment_and_verified(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    reference = make_referral(app)
    other = make_referral(app)
    document_id = _attach(app, reference)
    rows_before = audit_count(app)
    response = client.get(f"/coordinator/referrals/{reference}/documents/{document_id}")
    assert response.status_code == 200
    assert response.data == tiny_pdf()
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert audit_count(app, action="R", resource_type="document", resource_id=document_id) == 1
    assert audit_count(app) == rows_before + 1  # one download, one row
    assert response.headers["X-Document-SHA256"] == hashlib.sha256(tiny_pdf()).hexdigest()
    # The document through another case's URL (IDOR) is a 404 with a logged denial.
    assert client.get(f"/coordinator/referrals/{other}/documents/{document_id}").status_code == 404
    assert audit_count(app, action="denied", resource_type="document") == 1
    # A tampered blob is refused rather than served.
    with app.app_context():
        stored = db.session.get(Document, document_id)
        assert stored is not None
        path = _path(app.config, stored.storage_key)
        raw = bytearray(path.read_bytes())
        raw[-1] ^= 1
        path.write_bytes(bytes(raw))
    assert (
        client.get(f"/coordinator/referrals/{reference}/documents/{document_id}").status_code == 404
    )
    with app.app_context():
        alert = db.session.scalar(sa.select(Alert).where(Alert.code == "document_integrity"))
        assert alert is not None and document_id in alert.message
    assert audit_count(app, resource_id=document_id, outcome="failure") == 1


def test_audit_table_rejects_update_and_delete(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    with app.app_context():
        audit.record(audit.READ, "referral", "X", commit=True)
        for statement in (
            sa.update(AuditEvent).values(outcome="tampered"),
            sa.delete(AuditEvent),
        ):
            with pytest.raises(sa.exc.DBAPIError) as caught:
                db.session.execute(statement)
                db.session.commit()
            db.session.rollback()
            assert "append-only" in str(caught.value)
        if db.engine.dialect.name == "postgresql":
            with pytest.raises(sa.exc.DBAPIError):
                db.session.execute(sa.text("TRUNCATE audit_event"))
            db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) >= 1


def test_audit_purge_writes_its_own_row(app: Flask, coordinator) -> None:  # type: ignore[no-untyped-def]
    from intake.domain.retention import years_before
    from intake.models import User, utcnow

    with app.app_context():
        admin = db.session.get(User, coordinator.id)
        assert admin is not None
        # Only rows past the 6-year retention floor go (H-11; tests/staff/test_audit_retention.py).
        db.session.add(
            AuditEvent(
                at=years_before(utcnow(), 7),
                action="R",
                resource_type="referral",
                outcome="success",
            )
        )
        db.session.commit()
        recent = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) - 1
        assert recent >= 1
        removed = audit.purge(years_before(utcnow(), 6), admin)
        assert removed == 1
        rows = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)).all()
        assert len(rows) == recent + 1
        assert rows[-1].action == "D" and rows[-1].detail == f"purged:{removed}"


def test_admin_changes_a_role_and_the_account_signs_in_again(app: Flask) -> None:
    admin = make_user(app, "roles-admin@program.test", role="admin")
    staff = make_user(app, "roles-staff@program.test")
    as_admin, as_staff = app.test_client(), app.test_client()
    sign_in(app, as_admin, admin)
    sign_in(app, as_staff, staff)
    page = as_admin.get("/coordinator/admin/users").get_data(as_text=True)
    assert f'id="role-{staff.id}"' in page
    changed = as_admin.post(
        f"/coordinator/admin/users/{staff.id}", data={"action": "change_role", "role": "reviewer"}
    )
    assert changed.status_code == 303
    with app.app_context():
        account = db.session.get(User, staff.id)
        assert account is not None and account.role == "reviewer"
    assert as_staff.get("/coordinator/").status_code == 302  # signed out by the change
    assert audit_count(app, detail="role:reviewer", user_id=admin.id) == 1
    # No admin can demote themself.
    as_admin.post(
        f"/coordinator/admin/users/{admin.id}", data={"action": "change_role", "role": "reviewer"}
    )
    with app.app_context():
        me = db.session.get(User, admin.id)
        assert me is not None and me.role == "admin"


def test_admin_browses_audit_and_access_report(app: Flask) -> None:
    admin = make_user(app, "boss@program.test", role="admin")
    client = app.test_client()
    sign_in(app, client, admin)
    reference = make_referral(app)
    client.get(f"/coordinator/referrals/{reference}")
    html = client.get("/coordinator/admin/audit").get_data(as_text=True)
    assert reference in html and "sign-in" in html
    report = client.get(f"/coordinator/admin/audit/users/{admin.id}").get_data(as_text=True)
    assert reference in report


def test_each_queue_page_viewed_writes_one_audit_row_without_the_search_text(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    make_referral(app)
    make_referral(app, patient_given_name="Ana", patient_family_name="Silva")
    before = audit_count(app, resource_type="queue")
    assert client.get("/coordinator/").status_code == 200
    assert client.get("/coordinator/?q=silva").status_code == 200
    assert audit_count(app, resource_type="queue") == before + 2
    with app.app_context():
        details = list(
            db.session.scalars(
                sa.select(AuditEvent.detail)
                .where(AuditEvent.resource_type == "queue")
                .order_by(AuditEvent.id)
            )
        )
    assert details[-2:] == ["rows:2", "rows:1:search"]
    assert not any("silva" in (detail or "").lower() for detail in details)


def _statements_for(app: Flask, client: FlaskClient, url: str) -> int:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(url).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return len(statements)


def test_queue_page_statement_count_does_not_grow_with_its_rows(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    # An N+1 here (a commit expiring the listed rows before the template reads them) once made
    # the page cost one SELECT per row: bench/README.md "Profiles".
    for _ in range(2):
        make_referral(app, flow_report=False)
    client.get("/coordinator/")
    with_two = _statements_for(app, client, "/coordinator/")
    for _ in range(6):
        make_referral(app, flow_report=False)
    with_eight = _statements_for(app, client, "/coordinator/")
    assert with_eight == with_two


@pytest.mark.parametrize(
    "position",
    [
        ["P1", "2026-01-01T00:00:00", 1],  # no time zone: was a 500 on PostgreSQL
        ["P1", None, 10**30],  # beyond the id column: was a 500
        ["P1", None, -1],
        ["P1", 5, 1],
        ["P1", "not a date", 1],
        "not a list",
    ],
)
def test_a_hand_edited_queue_cursor_starts_from_the_first_page(
    app: Flask, client: FlaskClient, coordinator: object, position: object
) -> None:
    reference = make_referral(app)
    cursor = base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")
    response = client.get(f"/coordinator/?after={cursor}")
    assert response.status_code == 200
    assert reference[:4] in response.get_data(as_text=True)


def test_only_staff_who_can_open_the_case_are_offered_as_its_coordinator(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    reference = make_referral(app)  # a physician referral
    elsewhere = make_user(app, "second-opinions@program.test", queues=["second_opinion"])
    admin = make_user(app, "lead@program.test", role="admin")
    html = client.get(f"/coordinator/referrals/{reference}").get_data(as_text=True)
    assignee_select = html[
        html.index('name="assignee"') : html.index("</select>", html.index('name="assignee"'))
    ]
    assert admin.email in assignee_select and "coord@program.test" in assignee_select
    assert elsewhere.email not in assignee_select
    refused = client.post(
        f"/coordinator/referrals/{reference}/assign",
        data={"assignee": str(elsewhere.id), "reviewer": ""},
    )
    assert refused.status_code == 400
    assert get_referral(app, reference).assignee_id is None


def test_a_reviewer_who_hands_the_review_on_lands_on_the_queue(app: Flask) -> None:
    reference = make_referral(app)
    reviewer = make_user(app, "doctor@program.test", role="reviewer")
    set_referral(app, reference, reviewer_id=reviewer.id)
    doctor = app.test_client()
    sign_in(app, doctor, reviewer)
    response = doctor.post(
        f"/coordinator/referrals/{reference}/assign", data={"assignee": "", "reviewer": ""}
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/coordinator/")
    page = doctor.get("/coordinator/").get_data(as_text=True)
    assert "is no longer in your view" in page
    assert get_referral(app, reference).reviewer_id is None


def test_the_audit_trail_finds_a_case_by_its_reference_as_people_write_it(app: Flask) -> None:
    admin = make_user(app, "auditor@program.test", role="admin")
    client = app.test_client()
    sign_in(app, client, admin)
    reference = make_referral(app)
    client.get(f"/coordinator/referrals/{reference}")
    for written in (format_reference(reference), format_reference(reference).lower(), reference):
        html = client.get("/coordinator/admin/audit", query_string={"resource": written})
        text = html.get_data(as_text=True)
        assert "No events" not in text, written
        assert reference in text, written


def test_an_admin_cannot_deactivate_their_own_account(app: Flask) -> None:
    admin = make_user(app, "only-admin@program.test", role="admin")
    client = app.test_client()
    sign_in(app, client, admin)
    response = client.post(f"/coordinator/admin/users/{admin.id}", data={"action": "deactivate"})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(User, admin.id).active  # type: ignore[union-attr]
    page = client.get("/coordinator/admin/users")
    assert page.status_code == 200
    assert "You cannot deactivate your own account" in page.get_data(as_text=True)


def test_staff_error_pages_keep_the_workspace(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    missing = client.get("/coordinator/referrals/AAAA-BBBB-CCC")
    assert missing.status_code == 404
    html = missing.get_data(as_text=True)
    assert "Back to the work queue" in html and "Sign out" in html
    assert "Go to the home page" not in html
    spanish = client.get("/coordinator/no-such-page", headers={"Accept-Language": "es"})
    assert spanish.status_code == 404
    assert "We could not find that page." in spanish.get_data(as_text=True)


def test_a_reviewer_is_not_offered_assign_to_me(app: Flask) -> None:
    reference = make_referral(app)
    reviewer = make_user(app, "assigned-doctor@program.test", role="reviewer")
    set_referral(app, reference, reviewer_id=reviewer.id)
    doctor = app.test_client()
    sign_in(app, doctor, reviewer)
    html = doctor.get(f"/coordinator/referrals/{reference}").get_data(as_text=True)
    assert "Save assignment" in html and "Assign to me" not in html


def test_a_decided_case_no_longer_counts_down_or_shows_as_overdue(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    reference = make_referral(app, patient_given_name="Lucia")
    set_referral(
        app,
        reference,
        status="accepted",
        review_due_at=datetime.now(UTC) - timedelta(days=1),
        acknowledged_at=datetime.now(UTC) - timedelta(days=2),
    )
    html = client.get("/coordinator/").get_data(as_text=True)
    row = html[html.index("Lucia") : html.index("</tr>", html.index("Lucia"))]
    assert "overdue" not in row and " left" not in row
    assert "Lucia" not in client.get("/coordinator/?overdue=1").get_data(as_text=True)


def test_queue_search_finds_names_as_typed_a_reference_start_and_a_birth_date(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    zoe = make_referral(app, patient_given_name="Zoë", patient_family_name="O'Brien-Núñez")
    make_referral(
        app, patient_given_name="Ana", patient_family_name="Silva", patient_dob="2015-01-02"
    )
    with app.app_context():
        dob = db.session.scalar(
            sa.select(Referral.person_key).where(Referral.reference == zoe)
        ).rsplit("|", 1)[1]
    for typed in ("zoe", "ZOE OBRIEN", "nunez", "obrien nunez", zoe[:4], zoe[:4].lower(), dob):
        html = client.get("/coordinator/", query_string={"q": typed}).get_data(as_text=True)
        assert "Zo&#235;" in html or "Zoë" in html, typed
        assert "Silva" not in html, typed


def test_a_name_searched_for_never_appears_in_a_url(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    for _ in range(3):
        make_referral(app, patient_given_name="Ana", patient_family_name="Silva")
    make_referral(app, patient_given_name="Mateo", patient_family_name="Reyes")
    app.config["QUEUE_PAGE_SIZE"] = 2
    response = client.post("/coordinator/", data={"q": "Silva", "overdue": ""})
    assert response.status_code == 303
    location = response.headers["Location"]
    assert "Silva" not in location and "search=1" in location
    page = client.get(location).get_data(as_text=True)
    assert "Silva" in page and "Mateo" not in page
    assert 'value="Silva"' in page  # the box keeps the text
    following = re.search(r'href="([^"]+)" rel="next"', page)
    assert following and "Silva" not in following.group(1)
    second = client.get(html.unescape(following.group(1))).get_data(as_text=True)
    assert "Silva" in second and "Mateo" not in second


def test_an_admin_moves_a_coordinator_between_queues(app: Flask) -> None:
    admin = make_user(app, "queues-admin@program.test", role="admin")
    nurse = make_user(app, "nurse@program.test", queues=["physician_referral"])
    client = app.test_client()
    sign_in(app, client, admin)
    page = client.get("/coordinator/admin/users").get_data(as_text=True)
    assert f'id="queues-{nurse.id}-second_opinion"' in page
    moved = client.post(
        f"/coordinator/admin/users/{nurse.id}",
        data={"action": "set_queues", "queues": ["second_opinion", "existing_patient_message"]},
    )
    assert moved.status_code == 303
    with app.app_context():
        account = db.session.get(User, nurse.id)
        assert account is not None
        assert account.queues == ["second_opinion", "existing_patient_message"]
    assert audit_count(app, resource_type="staff_user", resource_id=str(nurse.id)) >= 1
    bad = client.post(
        f"/coordinator/admin/users/{nurse.id}", data={"action": "set_queues", "queues": ["x"]}
    )
    assert bad.status_code == 404


def test_the_reviewing_physician_is_emailed_once_when_assigned(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    reference = make_referral(app)
    doctor = make_user(app, "reviewer-mail@program.test", role="reviewer")
    for _ in range(2):  # assigned, unassigned, assigned again: one email
        client.post(
            f"/coordinator/referrals/{reference}/assign",
            data={"assignee": "", "reviewer": str(doctor.id)},
        )
        client.post(
            f"/coordinator/referrals/{reference}/assign", data={"assignee": "", "reviewer": ""}
        )
    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert referral is not None
        sent = list(
            db.session.scalars(
                sa.select(Notification).where(
                    Notification.referral_id == referral.id,
                    Notification.kind.like("review_assigned.%"),
                )
            )
        )
        assert len(sent) == 1 and sent[0].recipients == [doctor.email]
        email = notifications.render(sent[0], referral)
    assert "assigned to you for review" in email.subject
    assert f"/coordinator/referrals/{reference}" in email.text
    for value in PHI_VALUES:
        assert value not in email.text and value not in email.html and value not in email.subject
