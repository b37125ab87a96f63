"""A physician referral through HTTP, a real worker and a real SMTP server.

Runs twice: on PostgreSQL + Redis, and on the embedded defaults (SQLite + SQLAlchemy broker).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests import services
from tests.conftest import migrate_to_head
from tests.referral_data import PHI_VALUES, valid_referral
from tests.samples import tiny_pdf
from tests.stack import SmtpServer, Stack, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def _postgres_stack(pg_template: str | None, tmp_path: Path, smtp: SmtpServer) -> Stack:
    services.require(pg_template is not None, "PostgreSQL")
    services.require(services.redis_available(), "Redis")
    url = services.create_database(template=pg_template)
    return Stack(url, services.REDIS_URL, tmp_path, smtp.port)


def _embedded_stack(tmp_path: Path, smtp: SmtpServer) -> Stack:
    url = f"sqlite:///{tmp_path / 'intake.sqlite'}"
    migrate_to_head(url, tmp_path)
    return Stack(url, f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}", tmp_path, smtp.port)


@pytest.fixture(params=["postgres_redis", "embedded"])
def stack(
    request: pytest.FixtureRequest, pg_template: str | None, tmp_path: Path, smtp: SmtpServer
) -> Iterator[Stack]:
    if request.param == "postgres_redis":
        stack = _postgres_stack(pg_template, tmp_path, smtp)
    else:
        stack = _embedded_stack(tmp_path, smtp)
    stack.flask("seed-routing")
    yield stack
    stack.stop()
    if stack.database_url.startswith("postgresql"):
        services.drop_database(stack.database_url)


def submit_referral(base: str, data: dict[str, object]) -> tuple[requests.Response, str]:
    session = requests.Session()
    page = session.get(f"{base}/refer", timeout=10)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    submission = re.search(r'name="submission_id" type="hidden" value="([^"]+)"', page.text)
    assert token and submission, "the form carries a CSRF token and a submission id"
    form = {**data, "csrf_token": token.group(1), "submission_id": submission.group(1)}
    files = {"doc_flow_cytometry": ("flow-2026-10-20.pdf", tiny_pdf(), "application/pdf")}
    response = session.post(f"{base}/refer", data=form, files=files, timeout=30)
    return response, submission.group(1)


def test_referral_is_triaged_and_both_emails_arrive_once(stack: Stack, smtp: SmtpServer) -> None:
    base = stack.start_web()
    stack.start_worker()
    stack.start_beat()

    response, submission_id = submit_referral(base, valid_referral())
    assert response.status_code == 200, stack.logs()
    assert response.url.endswith("/refer/submitted")
    shown = re.search(r'class="reference">([0-9A-Z-]+)<', response.text)
    assert shown, "the confirmation page shows the reference"
    reference = shown.group(1).replace("-", "")

    engine = sa.create_engine(stack.database_url)
    try:

        def triaged() -> object:
            with engine.connect() as connection:
                return connection.execute(
                    sa.text(
                        "SELECT status, triage_priority, triage_category, triage_rules_version "
                        "FROM referral WHERE reference = :r AND triaged_at IS NOT NULL"
                    ),
                    {"r": reference},
                ).first()

        row = wait_for(triaged, 60, "the referral to be triaged")
        assert row.status == "under_review"
        assert row.triage_priority == "P2"
        assert row.triage_category == "likely_eligible_commercial"
        assert row.triage_rules_version

        wait_for(lambda: len(smtp.messages) >= 2, 60, "two emails at the SMTP server")
        # Give a late duplicate the chance to show up before counting.
        wait_for(lambda: _all_sent(engine), 30, "notifications marked sent")
    finally:
        engine.dispose()

    messages = smtp.messages
    assert len(messages) == 2, [m["Subject"] for m in messages]
    by_recipient = {m["To"]: m for m in messages}
    coordinator = by_recipient["coordinators@program.test"]
    acknowledgement = by_recipient["a.okafor@riverside-childrens.org"]
    formatted = f"{reference[:4]}-{reference[4:8]}-{reference[8:]}"
    assert formatted in coordinator["Subject"] and "P2" in coordinator["Subject"]
    assert formatted in acknowledgement["Subject"]
    assert f"/coordinator/referrals/{reference}" in coordinator.get_body(("plain",)).get_content()
    for message in messages:
        raw = message.as_string()
        for value in PHI_VALUES:
            assert value not in raw, f"{value!r} leaked into an email"
    assert coordinator["Message-ID"] != acknowledgement["Message-ID"]

    # The same submission again (back button, resubmit) returns the same reference, no new email.
    again, _ = submit_referral(base, valid_referral())
    assert again.status_code == 200


def _all_sent(engine: sa.Engine) -> bool:
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT status FROM notification")).all()
    return len(rows) == 2 and all(row.status == "sent" for row in rows)
