"""Family requests through HTTP, a real worker, PostgreSQL, Redis and a real SMTP server:
stored, triaged (second opinion) or routed to the care team (message, R0), acknowledged
without PHI, and the signed authorization's PDF produced with every required element."""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from intake.services import uploads
from tests import services
from tests.families.family_data import (
    FAMILY_PHI,
    PARENT_EMAIL,
    PARENT_NAME,
    assert_every_element,
    message,
    pdf_text,
    second_opinion,
)
from tests.samples import tiny_pdf
from tests.stack import SmtpServer, Stack, wait_for

pytestmark = pytest.mark.integration

SECOND_OPINION_DESK = "second-opinions@program.test"
CARE_TEAM = "care-team@program.test"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def stack(pg_template: str | None, tmp_path: Path, smtp: SmtpServer) -> Iterator[Stack]:
    services.require(pg_template is not None, "PostgreSQL")
    services.require(services.redis_available(), "Redis")
    url = services.create_database(template=pg_template)
    stack = Stack(
        url,
        services.REDIS_URL,
        tmp_path,
        smtp.port,
        extra_env={"SECOND_OPINION_EMAILS": SECOND_OPINION_DESK, "CARE_TEAM_EMAILS": CARE_TEAM},
    )
    stack.flask("seed-routing")
    yield stack
    stack.stop()
    services.drop_database(url)


def send_form(
    base: str, path: str, data: dict[str, Any], files: dict[str, Any] | None = None
) -> str:
    """GET the form, POST it with its CSRF token; returns the reference on the confirmation."""
    session = requests.Session()
    page = session.get(f"{base}{path}", timeout=10)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    submission = re.search(r'name="submission_id" type="hidden" value="([^"]+)"', page.text)
    assert token and submission
    form = {**data, "csrf_token": token.group(1), "submission_id": submission.group(1)}
    response = session.post(f"{base}{path}", data=form, files=files, timeout=30)
    assert response.status_code == 200, response.text[:3000]
    shown = re.search(r'class="reference">([0-9A-Z-]+)<', response.text)
    assert shown, "the confirmation page shows the reference"
    return shown.group(1).replace("-", "")


def test_second_opinion_and_message_end_to_end(stack: Stack, smtp: SmtpServer) -> None:
    base = stack.start_web()
    stack.start_worker()
    stack.start_beat()

    request_reference = send_form(
        base,
        "/second-opinion",
        second_opinion(records_choice="upload"),
        files={"doc_records": ("treatment-summary.pdf", tiny_pdf(), "application/pdf")},
    )
    message_reference = send_form(
        base, "/message", message(case_reference=request_reference, preferred_language="es")
    )

    engine = sa.create_engine(stack.database_url)
    try:
        with engine.connect() as connection:

            def row(sql: str, **params: Any) -> Any:
                connection.rollback()
                return connection.execute(sa.text(sql), params).first()

            request_case = wait_for(
                lambda: row(
                    "SELECT * FROM referral WHERE reference = :r AND triaged_at IS NOT NULL",
                    r=request_reference,
                ),
                60,
                "the second opinion to be triaged",
            )
            assert request_case.kind == "second_opinion"
            assert request_case.status == "under_review"
            assert request_case.triage_priority in ("P1", "P2", "P3")
            assert request_case.triage_category == "needs_info"  # clinical gaps (R1), not R2
            assert "oncologist_contact" not in request_case.missing_items

            message_case = wait_for(
                lambda: row(
                    "SELECT * FROM referral WHERE reference = :r AND triaged_at IS NOT NULL",
                    r=message_reference,
                ),
                60,
                "the message to be routed",
            )
            assert message_case.kind == "existing_patient_message"
            assert message_case.triage_category == "care_team"
            assert message_case.triage_priority is None
            assert message_case.linked_case_id == request_case.id
            matched = row("SELECT * FROM family_message WHERE referral_id = :i", i=message_case.id)
            assert (matched.match_method, matched.matched_case_id) == ("reference", request_case.id)

            signed = wait_for(
                lambda: row(
                    "SELECT * FROM records_authorization "
                    "WHERE referral_id = :i AND document_id IS NOT NULL",
                    i=request_case.id,
                ),
                60,
                "the authorization PDF",
            )
            document = row("SELECT * FROM document WHERE id = :d", d=signed.document_id)
            assert document.slot == "authorization"
            assert document.referral_id == request_case.id
            slots = {
                r.slot
                for r in connection.execute(
                    sa.text("SELECT slot FROM document WHERE referral_id = :i"),
                    {"i": request_case.id},
                )
            }
            assert slots == {"authorization", "records"}

            wait_for(lambda: len(smtp.messages) >= 4, 60, "four emails at the SMTP server")
            wait_for(
                lambda: row("SELECT count(*) AS n FROM notification WHERE status = 'sent'").n == 4,
                30,
                "notifications marked sent",
            )
    finally:
        engine.dispose()

    data = uploads.load(
        document.storage_key,
        document.sha256,
        {
            "UPLOAD_DIR": str(stack.instance_dir / "uploads"),
            "INSTANCE_DIR": str(stack.instance_dir),
        },
    )
    as_signed = types.SimpleNamespace(
        sections=signed.sections,
        expires_on=signed.expires_on,
        signed_at=signed.signed_at.astimezone(UTC),
        text_sha256=signed.text_sha256,
        text_version=signed.text_version,
    )
    assert signed.signer_name == PARENT_NAME and signed.signer_relationship == "mother"
    assert_every_element(pdf_text(data), as_signed, PARENT_NAME, "127.0.0.1")

    messages = smtp.messages
    assert len(messages) == 4, [m["Subject"] for m in messages]
    by_recipient = {m["To"]: m for m in messages}
    assert set(by_recipient) == {
        PARENT_EMAIL,
        SECOND_OPINION_DESK,
        "jorge.ramirez@example.net",
        CARE_TEAM,
    }
    for recipient, reference in (
        (PARENT_EMAIL, request_reference),
        (SECOND_OPINION_DESK, request_reference),
        ("jorge.ramirez@example.net", message_reference),
        (CARE_TEAM, message_reference),
    ):
        formatted = f"{reference[:4]}-{reference[4:8]}-{reference[8:]}"
        assert formatted in by_recipient[recipient]["Subject"], recipient
    for family in (PARENT_EMAIL, "jorge.ramirez@example.net"):
        body = by_recipient[family].get_body(("plain",)).get_content()
        assert "http://intake.test/status" in body
    for sent in messages:
        # Headers and the decoded bodies: an encoded body must not hide a leak.
        seen = " ".join(
            [sent.as_string(), str(sent["Subject"])]
            + [sent.get_body((kind,)).get_content() for kind in ("plain", "html")]
        ).casefold()
        for value in FAMILY_PHI:
            assert value.casefold() not in seen, f"{value!r} leaked into an email"
