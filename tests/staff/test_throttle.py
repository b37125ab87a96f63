"""Per-user limits on document downloads and exports (security.md 11.1.4) with an audit row for
every refused request and one admin alert per user and hour (8.1.4)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from intake import create_app
from intake.extensions import db
from intake.models import Alert, Document, Referral
from intake.services import auth, throttling
from intake.services.routing import seed_routing
from tests.staff.helpers import Account, audit_count, make_referral, make_user, sign_in


class Clock:
    def __init__(self) -> None:
        # Two minutes before the top of an hour: advancing a few minutes starts a new hour
        # without ending the sign-in session.
        self.now = auth.utcnow().replace(minute=58, second=0, microsecond=0)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    controlled = Clock()
    monkeypatch.setattr(auth, "_clock", lambda: controlled.now)
    return controlled


@pytest.fixture
def limited(app: Flask, app_config: dict[str, Any]) -> Iterator[Flask]:
    """The app with rate limiting on, low limits and in-memory counters (``app`` empties the
    tables afterwards)."""
    limited = create_app(
        {
            **app_config,
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": "memory://",
            "DOWNLOAD_RATE_LIMIT": "3 per hour",
            "EXPORT_RATE_LIMIT": "2 per hour",
        }
    )
    with limited.app_context():
        seed_routing(limited.config)
    yield limited
    with limited.app_context():
        db.session.remove()
        db.engine.dispose()


def _document_url(app: Flask) -> tuple[str, str]:
    reference = make_referral(app)
    with app.app_context():
        document = db.session.scalar(
            sa.select(Document).join(Referral).where(Referral.reference == reference)
        )
        assert document is not None
        return f"/coordinator/referrals/{reference}/documents/{document.id}", document.id


def _alerts(app: Flask) -> list[Alert]:
    with app.app_context():
        rows = list(
            db.session.scalars(
                sa.select(Alert).where(Alert.code == throttling.ALERT_CODE).order_by(Alert.id)
            )
        )
        db.session.expunge_all()
        return rows


def _refusals(app: Flask, account: Account, kind: str) -> int:
    return audit_count(
        app,
        action="denied",
        outcome="denied",
        user_id=account.id,
        detail=f"rate_limited:{kind}",
    )


def test_downloads_are_limited_per_user_audited_and_alerted_once_an_hour(
    limited: Flask, clock: Clock
) -> None:
    first = make_user(limited, "throttle-a@program.test")
    second = make_user(limited, "throttle-b@program.test")
    url, document_id = _document_url(limited)
    as_first, as_second = limited.test_client(), limited.test_client()
    sign_in(limited, as_first, first)
    sign_in(limited, as_second, second)

    codes = [as_first.get(url).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    refused = as_first.get(url)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many requests" in refused.get_data(as_text=True)
    assert not refused.data.startswith(b"%PDF") and "Content-Disposition" not in refused.headers
    # Every refused request is in the audit trail; only served ones count as reads.
    assert _refusals(limited, first, "download") == 3
    assert audit_count(limited, action="R", resource_id=document_id, user_id=first.id) == 3
    assert audit_count(limited, action="denied", resource_id=document_id, user_id=first.id) == 3
    # One alert for the user and hour, however many requests were refused; no email in it.
    alerts = _alerts(limited)
    assert len(alerts) == 1
    assert f"Staff account {first.id} " in alerts[0].message
    assert first.email not in alerts[0].message

    # Counted per account, not per address: the other coordinator (same address) is served.
    assert as_second.get(url).status_code == 200
    assert _refusals(limited, second, "download") == 0

    # The next hour a refusal raises a new alert (the limiter's window has not reset yet).
    clock.advance(minutes=3)
    assert as_first.get(url).status_code == 429
    assert _refusals(limited, first, "download") == 4
    assert [alert.message for alert in _alerts(limited)] == [alerts[0].message] * 2


def test_exports_are_limited_per_user_audited_and_alerted(limited: Flask, clock: Clock) -> None:
    admin = make_user(limited, "throttle-admin@program.test", role="admin")
    make_referral(limited)
    client = limited.test_client()
    sign_in(limited, client, admin)
    export = "/coordinator/metrics/export.csv"
    codes = [client.get(export).status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]
    assert audit_count(limited, action="E", user_id=admin.id) == 2
    assert _refusals(limited, admin, "export") == 2
    assert (
        audit_count(
            limited, resource_type="export", resource_id="staff.metrics_export", user_id=admin.id
        )
        == 2
    )
    assert len(_alerts(limited)) == 1
    # Downloads have a budget of their own.
    url, _document_id = _document_url(limited)
    assert client.get(url).status_code == 200


def test_limits_come_from_config_with_defaults() -> None:
    from intake.config import load_config

    config = load_config({})
    assert config["DOWNLOAD_RATE_LIMIT"] == "120 per hour"
    assert config["EXPORT_RATE_LIMIT"] == "20 per hour"
    config = load_config({"DOWNLOAD_RATE_LIMIT": "5 per minute", "EXPORT_RATE_LIMIT": "1 per day"})
    assert (config["DOWNLOAD_RATE_LIMIT"], config["EXPORT_RATE_LIMIT"]) == (
        "5 per minute",
        "1 per day",
    )
