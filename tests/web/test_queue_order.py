"""The work queue's keyset pages, on cases from `flask --app intake demo-data`.

Demo cases mix every priority, untriaged cases and cases without a due time, so walking the
pages checks the row-value cursor (QUEUE_ORDER) against the order the queue promises.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake.domain import statuses
from intake.extensions import db
from intake.models import Referral
from intake.services.routing import CASE_KINDS
from tests.staff.helpers import make_user, sign_in

FAR = datetime(9999, 1, 1, tzinfo=UTC)


def _walk(client: FlaskClient, url: str) -> list[str]:
    seen: list[str] = []
    for _ in range(100):
        html = client.get(url).get_data(as_text=True)
        seen += [r.replace("-", "") for r in re.findall(r'class="case-link">([0-9A-Z-]+)<', html)]
        found = re.search(r'href="([^"]+)" rel="next"', html)
        if not found:
            return seen
        url = found.group(1).replace("&amp;", "&")
    raise AssertionError("the pages never end")


def _expected(app: Flask, status: str | None = None, priority: str | None = None) -> list[str]:
    with app.app_context():
        query = sa.select(Referral)
        if priority:
            query = query.where(Referral.triage_priority == priority)
        if status:
            query = query.where(Referral.status == status)
        else:
            query = query.where(Referral.status.not_in(statuses.TERMINAL))
        cases = list(db.session.scalars(query))
        cases.sort(key=lambda r: (r.triage_priority or "P9", r.review_due_at or FAR, r.id))
        return [r.reference for r in cases]


def test_demo_data_pages_follow_priority_then_due_time_then_id(
    app: Flask, client: FlaskClient
) -> None:
    account = make_user(app, "queue-order@program.test", queues=list(CASE_KINDS))
    result = app.test_cli_runner().invoke(
        args=["demo-data", "--count", "120", "--open-share", "0.6", "--seed", "11"]
    )
    assert result.exit_code == 0, result.output
    assert "demo cases added: 120" in result.output
    with app.app_context():
        untriaged_or_undated = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Referral)
            .where(sa.or_(Referral.triage_priority.is_(None), Referral.review_due_at.is_(None)))
        )
    assert untriaged_or_undated, "the data exercises the NULL sort keys"

    app.config["QUEUE_PAGE_SIZE"] = 7
    sign_in(app, client, account)
    assert _walk(client, "/coordinator/") == _expected(app)
    assert _walk(client, "/coordinator/?status=closed") == _expected(app, "closed")
    assert _walk(client, "/coordinator/?status=under_review&priority=P2") == _expected(
        app, "under_review", "P2"
    )
