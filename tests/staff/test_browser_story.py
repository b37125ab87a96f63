"""The whole story in a real browser (Debian's chromium through Playwright), against gunicorn,
a Celery worker and beat on PostgreSQL + Redis, and a real SMTP server:

a physician submits an urgent referral without its flow cytometry report; a coordinator signs
in with password and TOTP, finds it at the top of the queue, opens it, assigns it (and a
reviewing physician), asks for the missing report; the referrer uploads it through the emailed
link; the reviewer accepts the case; the family's status page shows the new status.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect, sync_playwright

from intake import create_app
from tests.conftest import base_config
from tests.referral_data import PATIENT_DOB, valid_referral
from tests.samples import tiny_pdf
from tests.stack import SmtpServer, Stack, wait_for
from tests.staff.helpers import PASSWORD, make_referral
from tests.staff.live import (
    LiveAccount,
    case_row,
    create_account,
    upload_link,
    wait_for_status,
)

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
REFERRER = "a.okafor@riverside-childrens.org"


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


def _new_page(browser: Browser) -> Page:
    context = browser.new_context(locale="en-US")
    context.set_default_timeout(15_000)
    return context.new_page()


def _fill_form(page: Page, answers: dict[str, Any]) -> None:
    """Fill the referral form the way a person would, whatever widget each answer uses."""
    for name, value in answers.items():
        field = page.locator(f'[name="{name}"]')
        kind = field.first.evaluate("e => e.tagName.toLowerCase() + ':' + (e.type || '')")
        if kind.startswith("select"):
            field.select_option(str(value))
        elif kind == "input:radio":
            page.check(f'input[name="{name}"][value="{value}"]')
        elif kind == "input:checkbox":
            for item in value if isinstance(value, list) else [None]:
                selector = f'input[name="{name}"]' + (f'[value="{item}"]' if item else "")
                page.check(selector)
        else:
            field.fill(str(value))


def _sign_in(page: Page, base: str, account: LiveAccount) -> None:
    page.goto(f"{base}/coordinator/")
    expect(page.locator("h1")).to_have_text("Sign in")
    page.fill("#email", account.email)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("h1")).to_have_text("Enter your authenticator code")
    page.fill("#code", account.code())
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("h1")).to_have_text("Work queue")


def _seed_other_cases(stack: Stack, tmp: Path) -> None:
    """Two ordinary (P2) cases already waiting, so 'top of the queue' means something."""
    app = create_app(base_config(stack.database_url, tmp))
    for _ in range(2):
        make_referral(app)
    with app.app_context():
        from intake.extensions import db

        db.engine.dispose()


def test_referral_to_acceptance_in_a_real_browser(
    pg_stack: Stack, smtp: SmtpServer, browser: Browser, tmp_path: Path
) -> None:
    stack = pg_stack
    coordinator = create_account(stack, tmp_path / "a", "coord@program.test", "coordinator")
    reviewer = create_account(stack, tmp_path / "b", "dr.review@program.test", "reviewer")
    _seed_other_cases(stack, tmp_path / "c")
    base = stack.start_web()
    stack.start_worker()
    stack.start_beat()
    engine = sa.create_engine(stack.database_url)
    try:
        # 1. The physician submits an urgent referral, without the flow cytometry report.
        physician = _new_page(browser)
        physician.goto(f"{base}/refer")
        _fill_form(
            physician,
            valid_referral(
                urgent=True,
                urgency_reason="Rising blasts on this week's counts",
                rising_peripheral_blasts=True,
            ),
        )
        physician.get_by_role("button", name="Send referral").click()
        shown = physician.locator(".reference").first
        expect(shown).to_be_visible()
        formatted = shown.inner_text().strip()
        reference = formatted.replace("-", "")
        triaged = wait_for_status(engine, reference, "under_review")
        assert triaged.triage_priority == "P1" and "flow_report" in triaged.missing_items

        # 2. The coordinator signs in with password + TOTP; the case tops the queue.
        desk = _new_page(browser)
        _sign_in(desk, base, coordinator)
        first = desk.locator("a.case-link").first
        expect(first).to_have_text(formatted)
        assert desk.locator("a.case-link").count() == 3

        # 3. Opens it, assigns it to themself and picks the reviewing physician.
        first.click()
        expect(desk.locator("h1")).to_contain_text(formatted)
        desk.select_option("#reviewer", label=reviewer.email)
        desk.get_by_role("button", name="Assign to me").click()
        expect(desk.locator("#case-assignee")).to_have_text(coordinator.email)

        # 4. Asks the referrer for the missing report (pre-ticked from the missing items).
        expect(desk.locator('input[name="items"][value="flow_report"]')).to_be_checked()
        desk.get_by_role("button", name="Send request").click()
        expect(desk.locator("#case-status")).to_have_text("Waiting for more information")
        assert case_row(engine, reference).clock_paused_at is not None

        # 5. The email arrives at the SMTP server; the referrer uploads through its link.
        def link() -> str | None:
            for message in smtp.messages:
                if REFERRER in str(message["To"]) and "/upload/" in message.as_string():
                    return upload_link(message)
            return None

        path = wait_for(link, 60, "the information-request email")
        report = tmp_path / "flow-2026-10-20.pdf"
        report.write_bytes(tiny_pdf())
        referrer = _new_page(browser)
        referrer.goto(base + path)
        assert referrer.url == f"{base}/upload"  # the token left the address bar
        referrer.set_input_files("#doc_flow_cytometry", str(report))
        referrer.get_by_role("button", name="Send documents").click()
        expect(referrer.locator("h1")).to_have_text("Thank you: we received your documents")
        back = case_row(engine, reference)
        assert back.status == "under_review" and back.clock_paused_at is None
        assert back.review_due_at is not None and "flow_report" not in back.missing_items

        # 6. The reviewing physician signs in, opens the case from their queue and accepts it.
        doctor = _new_page(browser)
        _sign_in(doctor, base, reviewer)
        doctor.locator("a.case-link", has_text=formatted).click()
        expect(doctor.get_by_text("flow-2026-10-20.pdf")).to_be_visible()
        # A decision needs the confirmation box: without it nothing changes.
        doctor.select_option("#target", "accepted")
        doctor.get_by_role("button", name="Change status").click()
        expect(doctor.locator("#confirm-error")).to_contain_text("Tick the box to confirm")
        assert case_row(engine, reference).status == "under_review"
        doctor.select_option("#target", "accepted")
        doctor.get_by_label("I confirm what this change does").check()
        doctor.get_by_role("button", name="Change status").click()
        expect(doctor.locator("#case-status")).to_have_text("Accepted")
        assert case_row(engine, reference).status == "accepted"

        # 7. The family checks the status page with the reference and the child's DOB.
        family = _new_page(browser)
        family.goto(f"{base}/status")
        family.fill("#reference", formatted)
        family.fill("#dob", PATIENT_DOB)
        family.get_by_role("button", name="Check status").click()
        expect(family.locator(".status-meaning")).to_have_text("The program can see the patient.")
    finally:
        engine.dispose()


WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def test_staff_pages_pass_axe(
    pg_stack: Stack, smtp: SmtpServer, browser: Browser, tmp_path: Path
) -> None:
    """axe-core (bundled, offline) finds no serious or critical WCAG 2.1 AA problem on the
    workspace's pages, charts and forms included."""
    from axe_playwright_python.sync_playwright import Axe

    stack = pg_stack
    admin = create_account(stack, tmp_path / "a", "axe-admin@program.test", "admin")
    app = create_app(base_config(stack.database_url, tmp_path / "c"))
    reference = make_referral(app, flow_report=True)
    make_referral(app, flow_report=False)
    with app.app_context():
        from intake.extensions import db
        from intake.services import alerts

        # Every admin page then carries the alert banner, and the Alerts page its buttons.
        alerts.raise_alert(
            code="notification_failed",
            dedupe_key="axe:banner",
            message="Email 'acknowledgement' for case 1 failed after 8 attempts.",
        )
        db.session.commit()
    base = stack.start_web()
    page = _new_page(browser)
    axe = Axe()
    problems: list[str] = []

    def check(url: str | None = None) -> None:
        if url is not None:
            page.goto(base + url)
        results = axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
        assert results.response["passes"], page.url  # axe really looked at the page
        for violation in results.response["violations"]:
            if violation["impact"] in ("serious", "critical"):
                targets = [node["target"] for node in violation["nodes"]][:3]
                problems.append(f"{page.url}: {violation['id']} ({violation['impact']}) {targets}")

    check("/coordinator/login")
    check("/coordinator/login/reset")
    _sign_in(page, base, admin)
    for url in (
        "/coordinator/",
        f"/coordinator/referrals/{reference}",
        "/coordinator/metrics",
        "/coordinator/admin/users",
        "/coordinator/admin/routing",
        "/coordinator/admin/audit",
        "/coordinator/admin/alerts",
        "/coordinator/account/recovery-codes",
    ):
        check(url)
    assert page.get_by_role("complementary", name="1 unacknowledged alert").is_visible()
    # A form sent empty comes back with its errors.
    page.goto(f"{base}/coordinator/referrals/{reference}")
    page.get_by_role("button", name="Add note").click()
    check()
    with app.app_context():
        from intake.extensions import db

        db.engine.dispose()
    assert problems == [], "\n".join(problems)
