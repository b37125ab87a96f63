"""Documents that reach the program by fax, email or post, attached to the case by a
coordinator: the same checks as the forms' files, audited, and triage run again on them."""

from __future__ import annotations

import io
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake import create_app
from intake.extensions import db
from intake.models import Document, TimelineEvent
from tests.samples import tiny_pdf
from tests.staff.helpers import (
    Account,
    audit_count,
    csrf_token,
    get_referral,
    make_referral,
    make_user,
    sign_in,
)
from tests.staff.test_family_casework import csrf_sign_in, send_message


@pytest.fixture
def coordinator(app: Flask, client: FlaskClient) -> Account:
    account = make_user(app, "docs-coord@program.test")
    sign_in(app, client, account)
    return account


def post(client: FlaskClient, reference: str, files: list[tuple[bytes, str]], **data: Any) -> Any:
    form: dict[str, Any] = {"document_slot": "flow_cytometry", "arrived_by": "fax", **data}
    form["staff_documents"] = [(io.BytesIO(content), name) for content, name in files]
    return client.post(
        f"/coordinator/referrals/{reference}/documents",
        data=form,
        content_type="multipart/form-data",
    )


def documents(app: Flask, reference: str) -> list[Document]:
    with app.app_context():
        rows = list(
            db.session.scalars(
                sa.select(Document).where(Document.referral_id == get_referral(app, reference).id)
            )
        )
        db.session.expunge_all()
        return rows


def test_a_faxed_report_is_attached_and_completes_the_packet(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = make_referral(app, flow_report=False)
    before = get_referral(app, reference)
    assert "flow_report" in before.missing_items and before.review_due_at is None
    page = client.get(f"/coordinator/referrals/{reference}").get_data(as_text=True)
    assert 'id="add-documents"' in page

    response = post(client, reference, [(tiny_pdf(), "faxed-flow.pdf")])
    assert response.status_code == 303
    [document] = documents(app, reference)
    assert (document.slot, document.display_name, document.mime_type) == (
        "flow_cytometry",
        "faxed-flow.pdf",
        "application/pdf",
    )
    after = get_referral(app, reference)
    assert "flow_report" not in after.missing_items
    assert after.review_due_at is not None  # the complete packet starts the review clock
    with app.app_context():
        [event] = db.session.scalars(
            sa.select(TimelineEvent).where(
                TimelineEvent.referral_id == after.id, TimelineEvent.action == "documents_added"
            )
        ).all()
        assert event.detail == {"documents": 1, "slots": ["flow_cytometry"], "arrived_by": "fax"}
        assert event.actor == coordinator.email
    assert audit_count(app, resource_type="document", detail="staff:fax:1") == 1
    shown = client.get(f"/coordinator/referrals/{reference}").get_data(as_text=True)
    assert "faxed-flow.pdf" in shown
    download = client.get(f"/coordinator/referrals/{reference}/documents/{document.id}")
    assert download.status_code == 200 and download.data == tiny_pdf()


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ([], "Choose at least one file."),
        ([(b"MZ\x90\x00 not a document", "report.pdf")], "report.pdf"),
    ],
)
def test_a_refused_file_stores_nothing_and_says_why(
    app: Flask,
    client: FlaskClient,
    coordinator: Account,
    files: list[tuple[bytes, str]],
    error: str,
) -> None:
    reference = make_referral(app, flow_report=False)
    response = post(client, reference, files, arrived_by="email")
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert error in body and 'id="staff_documents-error"' in body
    assert '<option selected value="email">' in body or 'value="email" selected' in body
    assert documents(app, reference) == []
    assert audit_count(app, resource_type="document") == 0


def test_a_tampered_slot_or_channel_is_refused(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = make_referral(app, flow_report=False)
    pdf = [(tiny_pdf(), "x.pdf")]
    assert post(client, reference, pdf, document_slot="../../etc").status_code == 400
    assert post(client, reference, pdf, arrived_by="pigeon").status_code == 400
    assert documents(app, reference) == []


def test_only_the_care_team_with_the_case_in_scope_and_a_csrf_token(
    app_config: dict[str, Any], app: Flask
) -> None:
    reference = make_referral(app, flow_report=False)
    pdf = [(tiny_pdf(), "x.pdf")]
    reviewer = make_user(app, "docs-reviewer@program.test", role="reviewer")
    as_reviewer = app.test_client()
    sign_in(app, as_reviewer, reviewer)
    assert post(as_reviewer, reference, pdf).status_code == 403
    outsider = make_user(app, "docs-outsider@program.test", queues=["second_opinion"])
    as_outsider = app.test_client()
    sign_in(app, as_outsider, outsider)
    assert post(as_outsider, reference, pdf).status_code == 404
    # A family's message has no documents to add.
    coordinator = make_user(app, "docs-csrf@program.test")
    signed_in = app.test_client()
    sign_in(app, signed_in, coordinator)
    message_case = send_message(app)
    assert 'id="add-documents"' not in signed_in.get(
        f"/coordinator/referrals/{message_case}"
    ).get_data(as_text=True)
    assert post(signed_in, message_case, pdf).status_code == 409

    with_csrf = create_app({**app_config, "WTF_CSRF_ENABLED": True}).test_client()
    csrf_sign_in(app, with_csrf, coordinator)
    assert post(with_csrf, reference, pdf).status_code == 400
    assert documents(app, reference) == []
    token = csrf_token(with_csrf.get(f"/coordinator/referrals/{reference}").get_data(as_text=True))
    assert post(with_csrf, reference, pdf, csrf_token=token).status_code == 303
    assert len(documents(app, reference)) == 1


def test_the_kind_of_document_must_be_chosen(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = make_referral(app, flow_report=False)
    response = post(client, reference, [(tiny_pdf(), "card.pdf")], document_slot="")
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Choose what the documents are." in body and 'id="action-error"' in body
    assert documents(app, reference) == []


def test_a_late_fax_on_a_decided_case_is_kept_but_changes_nothing(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    from tests.staff.helpers import set_referral

    reference = make_referral(app, flow_report=False)
    set_referral(app, reference, status="accepted")
    assert post(client, reference, [(tiny_pdf(), "late.pdf")]).status_code == 303
    after = get_referral(app, reference)
    assert len(documents(app, reference)) == 1
    assert "flow_report" in after.missing_items and after.review_due_at is None


def test_a_case_waiting_for_information_waits_until_moved_back(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = make_referral(app, flow_report=False)
    asked = client.post(
        f"/coordinator/referrals/{reference}/request-info",
        data={"items": ["flow_report"], "audience": "referrer"},
    )
    assert asked.status_code == 303
    response = post(client, reference, [(tiny_pdf(), "faxed.pdf")])
    assert response.status_code == 303
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "if this is it, move the case back to review" in shown
    after = get_referral(app, reference)
    assert after.status == "needs_info" and "flow_report" not in after.missing_items
