"""Audit rows are kept at least 6 years (security.md H-11): the database refuses to delete a
younger row even with the purge setting switched on, and purge() refuses a younger cutoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from intake import create_app
from intake.domain import retention
from intake.extensions import db
from intake.models import AuditEvent, User, utcnow
from intake.services import audit
from tests.staff.helpers import Account, make_user


@pytest.fixture
def admin(app: Flask) -> Account:
    return make_user(app, "retention-admin@program.test", role="admin")


def _add_row(at: datetime, resource_id: str) -> int:
    event = AuditEvent(at=at, action=audit.READ, resource_type="referral", resource_id=resource_id)
    db.session.add(event)
    db.session.commit()
    return event.id


def _ids() -> set[int]:
    return set(db.session.scalars(sa.select(AuditEvent.id)))


def _old() -> datetime:
    return retention.years_before(utcnow(), 6) - timedelta(days=30)


def test_the_purge_setting_alone_cannot_delete_a_recent_row(app: Flask) -> None:
    """The bypass: switch the purge setting on (PostgreSQL) or drop the append-only trigger
    the way purge() does (SQLite), then delete a recent row: refused."""
    with app.app_context():
        recent = _add_row(utcnow() - timedelta(days=5 * 365), "recent")
        postgres = db.engine.dialect.name == "postgresql"
        with pytest.raises(sa.exc.DBAPIError) as caught:
            if postgres:
                db.session.execute(sa.text("SELECT set_config('intake.audit_purge', 'on', true)"))
            else:
                db.session.execute(sa.text("UPDATE referral SET id = id WHERE 0"))
                db.session.execute(sa.text("DROP TRIGGER audit_event_no_delete"))
            db.session.execute(sa.delete(AuditEvent).where(AuditEvent.id == recent))
        db.session.rollback()
        assert "younger than 6 years" in str(caught.value)
        assert recent in _ids()
        if not postgres:  # the dropped trigger came back with the rollback
            names = set(
                db.session.scalars(sa.text("SELECT name FROM sqlite_master WHERE type='trigger'"))
            )
            assert {"audit_event_no_delete", "audit_event_retention_floor"} <= names


def test_update_still_fails_even_on_old_rows(app: Flask) -> None:
    with app.app_context():
        old = _add_row(_old(), "old")
        with pytest.raises(sa.exc.DBAPIError) as caught:
            if db.engine.dialect.name == "postgresql":
                db.session.execute(sa.text("SELECT set_config('intake.audit_purge', 'on', true)"))
            db.session.execute(
                sa.update(AuditEvent).where(AuditEvent.id == old).values(outcome="tampered")
            )
        db.session.rollback()
        assert "append-only" in str(caught.value)
        stored = db.session.get(AuditEvent, old)
        assert stored is not None and stored.outcome == "success"


def test_purge_with_a_cutoff_under_six_years_is_refused(app: Flask, admin: Account) -> None:
    with app.app_context():
        actor = db.session.get(User, admin.id)
        assert actor is not None
        before = _ids()
        for cutoff in (
            utcnow() + timedelta(seconds=1),
            retention.years_before(utcnow(), 5),
            retention.years_before(utcnow(), 6) + timedelta(days=1),
        ):
            with pytest.raises(ValueError, match="younger than 6 years"):
                audit.purge(cutoff, actor)
        with pytest.raises(ValueError, match="time zone"):
            audit.purge(datetime(2001, 1, 1), actor)  # noqa: DTZ001 (the point of the test)
        assert _ids() == before


def test_the_database_function_refuses_a_young_cutoff_too(app: Flask, admin: Account) -> None:
    """The floor does not rest on the application: audit_purge() checks it itself."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("audit_purge() is a PostgreSQL function")
        recent = _add_row(utcnow() - timedelta(days=1), "recent")
        cutoff = retention.years_before(utcnow(), retention.AUDIT_RETENTION_YEARS_MIN)
        with pytest.raises(sa.exc.DBAPIError) as caught:
            db.session.execute(
                sa.text("SELECT audit_purge(:cutoff, :actor_id, :email)"),
                {"cutoff": cutoff + timedelta(days=1), "actor_id": admin.id, "email": admin.email},
            )
        db.session.rollback()
        assert "kept at least 6 years" in str(caught.value)
        assert recent in _ids()


def test_purge_removes_only_rows_past_retention_and_audits_itself(
    app: Flask, admin: Account
) -> None:
    with app.app_context():
        actor = db.session.get(User, admin.id)
        assert actor is not None
        old = _add_row(_old(), "old")
        recent = _add_row(utcnow() - timedelta(days=6 * 365 - 30), "recent")
        kept = _ids() - {old}
        removed = audit.purge(retention.years_before(utcnow(), 6), actor)
        assert removed == 1
        after = _ids()
        assert old not in after and recent in after and kept <= after
        (row,) = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.id.not_in(kept)))
        assert (row.action, row.resource_type, row.detail) == ("D", "audit_event", "purged:1")
        assert (row.user_id, row.user_email) == (admin.id, admin.email)
        # The append-only guard is back after the purge.
        with pytest.raises(sa.exc.DBAPIError):
            db.session.execute(sa.delete(AuditEvent).where(AuditEvent.id == recent))
        db.session.rollback()


def test_a_longer_configured_retention_is_honoured_a_shorter_one_is_not(
    app_config: dict[str, Any], admin: Account
) -> None:
    assert retention.retention_years(3) == 6 and retention.retention_years(None) == 6
    assert retention.retention_years(8) == 8
    for years, cutoff_years, refused in ((8, 7, True), (8, 8, False), (3, 5, True)):
        configured = create_app({**app_config, "AUDIT_RETENTION_YEARS": years})
        with configured.app_context():
            actor = db.session.get(User, admin.id)
            assert actor is not None
            cutoff = retention.years_before(utcnow(), cutoff_years)
            if refused:
                with pytest.raises(ValueError, match="refusing to purge"):
                    audit.purge(cutoff, actor)
            else:
                assert audit.purge(cutoff, actor) == 0
            db.session.remove()
            db.engine.dispose()


def test_years_before_handles_29_february() -> None:
    leap = datetime(2032, 2, 29, 12, tzinfo=UTC)
    assert retention.years_before(leap, 6) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert retention.latest_purge_cutoff(leap, 7) == datetime(2025, 2, 28, 12, tzinfo=UTC)


def test_audit_purge_command(app: Flask, admin: Account) -> None:
    coordinator = make_user(app, "retention-coord@program.test")
    with app.app_context():
        _add_row(_old(), "old")
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["audit-purge", "--older-than-years", "2", "--actor", admin.email])
    assert refused.exit_code != 0 and "younger than 6 years" in refused.output
    not_admin = runner.invoke(args=["audit-purge", "--actor", coordinator.email])
    assert not_admin.exit_code != 0 and "no active admin" in not_admin.output
    done = runner.invoke(args=["audit-purge", "--older-than-years", "6", "--actor", admin.email])
    assert done.exit_code == 0, done.output
    assert "audit rows removed: 1" in done.output
    with app.app_context():
        # (SQLite may hand the purge's own row the freed id: look the old row up by resource.)
        assert (
            db.session.scalar(sa.select(AuditEvent.id).where(AuditEvent.resource_id == "old"))
            is None
        )
        assert (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.detail == "purged:1", AuditEvent.user_id == admin.id)
            )
            == 1
        )
