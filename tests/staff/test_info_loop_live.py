"""The needs-information loop end to end on PostgreSQL, Redis, a real Celery worker and beat,
gunicorn and a real SMTP server: request, email, upload through the emailed link, clock paused
and resumed, case back in review and re-triaged."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.referral_data import PHI_VALUES, valid_referral
from tests.samples import tiny_pdf
from tests.stack import SmtpServer, Stack, wait_for
from tests.staff.live import (
    case_row,
    create_account,
    csrf,
    sign_in,
    submit_referral,
    upload_link,
    wait_for_status,
)

pytestmark = pytest.mark.integration

REFERRER = "a.okafor@riverside-childrens.org"


def _upload_emails(smtp: SmtpServer) -> list[str]:
    found = []
    for message in smtp.messages:
        if REFERRER in str(message["To"]) and "/upload/" in message.as_string():
            found.append(upload_link(message))
    return found


def test_needs_info_loop_with_real_worker_and_smtp(
    pg_stack: Stack,
    smtp: SmtpServer,
    tmp_path: Path,
) -> None:
    stack = pg_stack
    # Beat's sweep every second and a reminder after ~4 s, so the schedule shows within the test.
    stack.extra_env.update(
        {"STAFF_SWEEP_SECONDS": "1", "INFO_REMINDER_HOURS": "0.001", "INFO_MAX_REMINDERS": "1"}
    )
    coordinator = create_account(stack, tmp_path / "accounts", "coord@program.test", "coordinator")
    base = stack.start_web()
    stack.start_worker()
    stack.start_beat()
    engine = sa.create_engine(stack.database_url)
    try:
        # A referral without its flow cytometry report: triage lists it as missing.
        reference = submit_referral(base, valid_referral(), files={})
        triaged = wait_for_status(engine, reference, "under_review")
        assert "flow_report" in triaged.missing_items, stack.logs()
        assert triaged.review_due_at is None  # decision 4: the clock waits for a full packet

        staff = sign_in(base, coordinator)
        case_url = f"{base}/coordinator/referrals/{reference}"
        page = staff.get(case_url, timeout=10)
        assert page.status_code == 200
        response = staff.post(
            f"{case_url}/request-info",
            data={"items": ["flow_report"], "audience": "referrer", "csrf_token": csrf(page.text)},
            timeout=10,
        )
        assert response.status_code == 200 and response.url == case_url, response.text[:300]
        paused = case_row(engine, reference)
        assert paused.status == "needs_info" and paused.clock_paused_at is not None

        # The worker sends the request email through the real SMTP server.
        links = wait_for(lambda: _upload_emails(smtp), 60, "the information-request email")
        assert len(set(links)) == 1  # a reminder, if already out, carries the same link
        request_email = next(m for m in smtp.messages if "/upload/" in m.as_string())
        for value in PHI_VALUES:
            assert value not in request_email.as_string(), f"{value!r} leaked into the email"
        formatted = f"{reference[:4]}-{reference[4:8]}-{reference[8:]}"
        assert formatted in str(request_email["Subject"])

        # While the case waits, beat sends the reminder (same link, still no PHI).
        def reminders() -> list[str]:
            return [
                m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
                for m in smtp.messages
                if REFERRER in str(m["To"]) and "/upload/" in m.as_string()
            ][1:]

        reminder = wait_for(reminders, 60, "the reminder email from beat's sweep")[0]
        assert links[0] in reminder
        for value in PHI_VALUES:
            assert value not in reminder, value
        assert case_row(engine, reference).status == "needs_info"

        # The referrer follows the link: no account, the token leaves the address bar.
        referrer = requests.Session()
        opened = referrer.get(base + links[0], timeout=10)
        assert opened.status_code == 200 and opened.url == f"{base}/upload"
        assert "/upload/" not in opened.url
        done = referrer.post(
            f"{base}/upload",
            data={"csrf_token": csrf(opened.text)},
            files={"doc_flow_cytometry": ("flow-2026-10-20.pdf", tiny_pdf(), "application/pdf")},
            timeout=30,
        )
        assert done.status_code == 200 and done.url == f"{base}/upload/thanks", done.text[:300]

        back = case_row(engine, reference)
        assert back.status == "under_review"
        assert back.clock_paused_at is None  # resumed
        assert back.review_due_at is not None  # the packet is complete: the review clock runs
        assert "flow_report" not in back.missing_items  # re-triaged with the new document
        with engine.connect() as connection:
            actions = (
                connection.execute(
                    sa.text(
                        "SELECT action FROM timeline_event WHERE referral_id = :id ORDER BY id"
                    ),
                    {"id": back.id},
                )
                .scalars()
                .all()
            )
        for action in ("info_requested", "info_received", "clock_resumed", "retriaged"):
            assert action in actions, (action, actions)
        assert actions.index("info_requested") < actions.index("clock_resumed")

        # The link was single use.
        assert requests.get(base + links[0], timeout=10).status_code == 410

        # The case page shows the new document and that the request email was delivered.
        def delivered() -> bool:
            html = staff.get(case_url, timeout=10).text
            return "flow-2026-10-20.pdf" in html and bool(
                re.search(r"email: Request for more information · delivery: <strong>sent", html)
            )

        wait_for(delivered, 30, "the case page to show the delivered request email")

        # The worker also told the coordinator about their sign-in (H-9), and only them.
        notices = [m for m in smtp.messages if "New sign-in" in str(m["Subject"])]
        assert [str(m["To"]) for m in notices] == [coordinator.email]
    finally:
        engine.dispose()
