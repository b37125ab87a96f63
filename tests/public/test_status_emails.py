"""Status-update emails end to end: a family asks for a second opinion in Spanish; when the
reviewing physician accepts the case in the workspace, the real worker sends the family a
PHI-free email in Spanish and the treating oncologist one in English, each with the reference
and the status page link (decision 9), over a real SMTP server."""

from __future__ import annotations

import re
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.families import family_data
from tests.stack import SmtpServer, Stack, wait_for
from tests.staff.conftest import pg_stack, smtp  # noqa: F401 (fixtures)
from tests.staff.live import create_account, csrf, sign_in, wait_for_status

pytestmark = pytest.mark.integration

ONCOLOGIST = "h.whitfield@lakeside-childrens.org"


def _ask_in_spanish(base: str) -> str:
    session = requests.Session()
    session.get(f"{base}/?lang=es", timeout=10)
    page = session.get(f"{base}/second-opinion", timeout=10)
    submission = re.search(r'name="submission_id" type="hidden" value="([^"]+)"', page.text)
    assert submission
    answers = family_data.second_opinion(preferred_language="es")
    form = {**answers, "csrf_token": csrf(page.text), "submission_id": submission.group(1)}
    response = session.post(f"{base}/second-opinion", data=form, timeout=30)
    assert response.url.endswith("/second-opinion/submitted"), response.text[:500]
    shown = re.search(r'class="reference">([0-9A-Z-]+)<', response.text)
    assert shown
    return shown.group(1)


def _text(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_status_change_emails_the_family_in_spanish_and_the_oncologist_in_english(
    pg_stack: Stack,  # noqa: F811
    smtp: SmtpServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    lead = create_account(pg_stack, tmp_path / "lead", "lead@program.test", "admin")
    physician = create_account(pg_stack, tmp_path / "doctor", "doctor@program.test", "reviewer")
    base = pg_stack.start_web()
    pg_stack.start_worker()
    pg_stack.start_beat()
    engine = sa.create_engine(pg_stack.database_url)
    try:
        shown = _ask_in_spanish(base)
        reference = shown.replace("-", "")
        wait_for_status(engine, reference, "under_review")

        # The lead assigns the reviewing physician, who alone may record the acceptance.
        with engine.connect() as connection:
            physician_id = connection.execute(
                sa.text("SELECT id FROM staff_user WHERE email = :email"),
                {"email": physician.email},
            ).scalar_one()
        staff = sign_in(base, lead)
        case = staff.get(f"{base}/coordinator/referrals/{reference}", timeout=10)
        assigned = staff.post(
            f"{base}/coordinator/referrals/{reference}/assign",
            data={"assignee": "", "reviewer": str(physician_id), "csrf_token": csrf(case.text)},
            timeout=10,
        )
        assert assigned.status_code == 200, assigned.text[:500]
        doctor = sign_in(base, physician)
        case = doctor.get(f"{base}/coordinator/referrals/{reference}", timeout=10)
        changed = doctor.post(
            f"{base}/coordinator/referrals/{reference}/status",
            data={
                "target": "accepted",
                "reason_code": "",
                "confirm": "y",
                "csrf_token": csrf(case.text),
            },
            timeout=10,
        )
        assert changed.status_code == 200 and "Accepted" in changed.text

        def updates() -> list[EmailMessage] | None:
            found = [
                m
                for m in smtp.messages
                if shown in str(m["Subject"])
                and ("Novedades" in str(m["Subject"]) or "Update" in str(m["Subject"]))
            ]
            return found if len(found) >= 2 else None

        wait_for(updates, 90, "the two status-update emails")
        time.sleep(3)  # nothing more may arrive: one email per audience
        sent = updates() or []
        assert len(sent) == 2
        by_recipient = {str(m["To"]): m for m in sent}
        family = by_recipient[family_data.PARENT_EMAIL]
        oncologist = by_recipient[ONCOLOGIST]

        assert str(family["Subject"]) == f"Novedades sobre la solicitud {shown}"
        family_text = _text(family)
        assert "El programa puede atender al paciente." in family_text
        assert "http://intake.test/status" in family_text
        assert str(oncologist["Subject"]) == f"Update on request {shown}"
        assert "The program can see the patient." in _text(oncologist)
        for message in sent:
            html = message.get_body(("html",))
            whole = _text(message) + (html.get_content() if html is not None else "")  # type: ignore[union-attr]
            for secret in family_data.FAMILY_PHI:
                assert secret not in whole and secret not in str(message["Subject"])
    finally:
        engine.dispose()
