"""Driving a fault stack over HTTP, and the reconciliation check run after every scenario."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from markupsafe import escape

from tests.referral_data import valid_referral
from tests.samples import tiny_pdf
from tests.stack import wait_for

COORDINATOR = "coordinator_new_case"
ACK = "referrer_acknowledgement"


@dataclass
class Outcome:
    submission_id: str
    status: int  # 303 stored, 503 nothing stored; anything else is a failure of the test
    body: str = ""
    resent: int = 0  # times the request was sent again after its connection was reset


class Referrer:
    """One browser: a session with its CSRF token, posting referrals with a PDF attached."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        page = self.session.get(f"{base}/refer", timeout=30)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
        assert token, "the form carries a CSRF token"
        self.token = token.group(1)

    def post(self, submission_id: str | None = None, **overrides: Any) -> Outcome:
        submission_id = submission_id or str(uuid.uuid4())
        form = {**valid_referral(**overrides), "csrf_token": self.token}
        form["submission_id"] = submission_id
        files = {"doc_flow_cytometry": ("flow-2026-10-20.pdf", tiny_pdf(), "application/pdf")}
        # A kept-alive connection that gunicorn closes as the next request arrives is reset
        # (its keep-alive deadline passes while a starved worker is busy). A browser sends the
        # request again on a fresh connection; so does this client, with the same submission
        # id, which the product makes safe. Anything else counts as a failed submission.
        for attempt in range(3):
            try:
                response = self.session.post(
                    f"{self.base}/refer", data=form, files=files, timeout=60, allow_redirects=False
                )
            except requests.ConnectionError as exc:
                if "Connection aborted" in repr(exc) and attempt < 2:
                    continue
                return Outcome(submission_id, 0, repr(exc))
            return Outcome(submission_id, response.status_code, response.text, resent=attempt)
        raise AssertionError("unreachable")

    def confirmed_reference(self) -> str:
        page = self.session.get(f"{self.base}/refer/submitted", timeout=30)
        shown = re.search(r'class="reference">([0-9A-Z-]+)<', page.text)
        assert shown, "the confirmation page shows the reference"
        return shown.group(1).replace("-", "")


def submit_many(base: str, count: int, clients: int = 8, pause: float = 0.0) -> list[Outcome]:
    """`count` distinct referrals from `clients` parallel browsers."""
    referrers = [Referrer(base) for _ in range(clients)]

    def one(index: int) -> Outcome:
        if pause:
            time.sleep(pause * (index // clients))
        return referrers[index % clients].post()

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return list(pool.map(one, range(count)))


def rows(engine: sa.Engine, query: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text(query), params).all())


def scalar(engine: sa.Engine, query: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(sa.text(query), params).scalar()


def settled(engine: sa.Engine) -> bool:
    """Every referral triaged, every notification sent or failed, the outbox empty."""
    return (
        scalar(engine, "SELECT count(*) FROM referral WHERE triaged_at IS NULL") == 0
        and scalar(
            engine, "SELECT count(*) FROM notification WHERE status NOT IN ('sent', 'failed')"
        )
        == 0
        and scalar(engine, "SELECT count(*) FROM outbox_event WHERE published_at IS NULL") == 0
        and scalar(engine, "SELECT count(*) FROM notification WHERE kind = :k", k=COORDINATOR)
        == scalar(engine, "SELECT count(*) FROM referral")
    )


def wait_settled(engine: sa.Engine, timeout: float, logs: Any = None) -> None:
    try:
        wait_for(lambda: settled(engine), timeout, "the pipeline to settle", interval=0.5)
    except AssertionError:
        state = rows(
            engine, "SELECT kind, status, count(*) FROM notification GROUP BY kind, status"
        )
        untriaged = scalar(engine, "SELECT count(*) FROM referral WHERE triaged_at IS NULL")
        raise AssertionError(
            f"not settled: untriaged={untriaged} notifications={state}\n"
            + (logs() if callable(logs) else "")
        ) from None


def check_reconciled(
    engine: sa.Engine,
    messages: list[EmailMessage],
    upload_dir: Path,
    *,
    stored: set[str] | None = None,
    not_stored: set[str] | None = None,
    max_copies: int = 1,
) -> dict[str, int]:
    """The one invariant every scenario ends with (issue 5, security.md §4).

    Every committed referral is triaged (status, priority, timeline) and has exactly one
    coordinator notification and one acknowledgement (plus at most one escalation notification
    per level, each with its escalation row). Each notification ends sent (its email at the SMTP
    server, at most `max_copies` copies, all with its Message-ID) or failed (no email, exactly
    one alert, one dead letter, an `email_failed` timeline entry). No orphan rows or blobs, and a
    timeline entry for every change; the queue's per-status counters match the cases. Returns
    counts per notification status, plus `duplicates`, `referrals`, `escalations` and `alerts`
    when non-zero.
    """
    referrals = rows(
        engine,
        "SELECT id, submission_id, status, triage_priority, triaged_at FROM referral",
    )
    ids = {r.id for r in referrals}
    if stored is not None:
        assert stored <= {r.submission_id for r in referrals}, "an answered submission is lost"
    if not_stored is not None:
        assert not (not_stored & {r.submission_id for r in referrals}), "a 503 stored something"
    for r in referrals:
        assert r.triaged_at is not None and r.triage_priority, f"referral {r.id} not triaged"
        assert r.status == "under_review", f"referral {r.id} is {r.status}"

    events = Counter(
        (e.referral_id, e.action)
        for e in rows(engine, "SELECT referral_id, action FROM timeline_event")
    )
    for referral_id in ids:
        for action in ("created", "triaged", "status_changed"):
            assert events[(referral_id, action)] == 1, (referral_id, action, events)

    escalations = Counter(
        (e.referral_id, f"escalation.{e.clock}.{e.level}")
        for e in rows(engine, "SELECT referral_id, clock, level FROM escalation")
    )
    assert all(count == 1 for count in escalations.values()), f"escalated twice: {escalations}"
    for referral_id in ids:
        levels = sum(1 for (rid, _kind) in escalations if rid == referral_id)
        assert events[(referral_id, "escalated")] == levels, (referral_id, levels, events)

    notes = rows(engine, "SELECT id, referral_id, kind, status, message_id FROM notification")
    assert {n.referral_id for n in notes} <= ids, "a notification without its referral"
    for referral_id in ids:
        kinds = Counter(n.kind for n in notes if n.referral_id == referral_id)
        assert kinds.pop(COORDINATOR, 0) == 1 and kinds.pop(ACK, 0) == 1, (referral_id, kinds)
        expected = Counter(kind for (rid, kind) in escalations if rid == referral_id)
        assert kinds == expected, (referral_id, kinds, expected)

    copies = Counter(str(m["Message-ID"]).strip() for m in messages)
    known = {n.message_id for n in notes}
    assert set(copies) <= known, f"emails no notification accounts for: {set(copies) - known}"
    alerts = rows(engine, "SELECT code, dedupe_key, referral_id FROM alert")
    alert_keys = Counter(a.dedupe_key for a in alerts)
    dead = Counter(
        json.dumps(_json(d.args))
        for d in rows(engine, "SELECT args FROM dead_letter WHERE task_name = 'notify.send'")
    )
    mail_events = Counter(
        (e.referral_id, e.action, _json(e.detail).get("notification"))
        for e in rows(
            engine,
            "SELECT referral_id, action, detail FROM timeline_event "
            "WHERE action IN ('email_sent', 'email_failed')",
        )
    )
    totals: Counter[str] = Counter()
    for n in notes:
        totals[n.status] += 1
        if n.status == "sent":
            assert 1 <= copies[n.message_id] <= max_copies, (n.kind, copies[n.message_id])
            assert mail_events[(n.referral_id, "email_sent", n.kind)] == 1, n
        else:
            assert n.status == "failed", (n.id, n.status)
            assert copies[n.message_id] == 0, "a failed notification was delivered"
            assert alert_keys[f"notification_failed:{n.id}"] == 1, "not exactly one alert"
            assert dead[json.dumps([n.id])] == 1, "not exactly one dead letter"
            assert mail_events[(n.referral_id, "email_failed", n.kind)] == 1, n
    assert all(count == 1 for count in alert_keys.values())
    totals["duplicates"] = sum(c - 1 for c in copies.values())

    # No orphans: every blob has its document row and every document its blob.
    keys = {d.storage_key for d in rows(engine, "SELECT storage_key FROM document")}
    blobs = {p.name for p in upload_dir.rglob("*") if p.is_file()} if upload_dir.exists() else set()
    assert blobs == keys, f"orphan blobs {blobs - keys}, missing blobs {keys - blobs}"
    assert scalar(engine, "SELECT count(*) FROM document") == len(ids)
    assert not scalar(
        engine, "SELECT count(*) FROM document WHERE referral_id NOT IN (SELECT id FROM referral)"
    )
    assert scalar(engine, "SELECT count(*) FROM outbox_event WHERE published_at IS NULL") == 0
    # The work queue's counters (database triggers, migration 0011) agree with the cases,
    # whatever was killed or restarted on the way.
    counted = {
        (r.status, r.kind): int(r.cases)
        for r in rows(
            engine,
            "SELECT status, kind, sum(cases) AS cases FROM referral_count "
            "GROUP BY status, kind HAVING sum(cases) <> 0",
        )
    }
    actual = {
        (r.status, r.kind): int(r.cases)
        for r in rows(engine, "SELECT status, kind, count(*) AS cases FROM referral GROUP BY 1, 2")
    }
    assert counted == actual, f"queue counters {counted} != cases {actual}"
    if alerts:
        admin_sees_alerts(engine, [a.dedupe_key for a in alerts])
    totals["referrals"] = len(ids)
    totals["escalations"] = len(escalations)
    totals["alerts"] = len(alerts)
    return {key: value for key, value in totals.items() if value or key == "duplicates"}


def admin_sees_alerts(engine: sa.Engine, dedupe_keys: list[str]) -> None:
    """Every alert is on the admin Alerts page, read through the app as a signed-in admin."""
    from intake import create_app
    from intake.extensions import db
    from intake.models import Alert
    from tests.conftest import base_config
    from tests.staff.helpers import make_user, sign_in

    folder = Path(tempfile.mkdtemp(prefix="intake-admin-"))
    try:
        app = create_app(base_config(engine.url.render_as_string(hide_password=False), folder))
        admin = make_user(app, f"admin-{uuid.uuid4().hex[:6]}@program.test", "admin")
        client = app.test_client()
        sign_in(app, client, admin)
        page = client.get("/coordinator/admin/alerts")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert html.count('class="alert-row"') == len(dedupe_keys)
        with app.app_context():
            for alert in db.session.scalars(sa.select(Alert)):
                assert str(escape(alert.message)) in html, alert.message
            db.engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else (value or {})


def full_logs(stack: Any) -> str:
    """Every line the stack's processes wrote (Stack.logs keeps only the tails)."""
    return "\n".join(
        path.read_text(errors="replace") for path in sorted(stack.instance_dir.glob("*.log"))
    )
