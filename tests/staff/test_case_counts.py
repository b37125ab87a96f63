"""The per-(status, kind) case counters kept by database triggers (migration 0011).

The work queue's counts read these counters; they must equal a count of the cases after any
kind of write: the submission service, single and multi-row updates, a kind change, deletes,
the demo-data bulk load and, on PostgreSQL, many writers at once.
"""

from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake.domain import statuses
from intake.extensions import db
from intake.models import Referral, ReferralCount, User
from intake.services.queue import OPEN_STATUSES, status_counts
from intake.services.referrals import Submission, submit_referral
from tests.referral_data import valid_referral
from tests.staff.helpers import make_referral, make_user, set_referral, sign_in


def _counted(app: Flask) -> dict[tuple[str, str], int]:
    """What the counters say, per (status, kind), zeros left out."""
    with app.app_context():
        rows = db.session.execute(
            sa.select(
                ReferralCount.status, ReferralCount.kind, sa.func.sum(ReferralCount.cases)
            ).group_by(ReferralCount.status, ReferralCount.kind)
        ).all()
        return {(status, kind): int(n) for status, kind, n in rows if int(n)}


def _actual(app: Flask) -> dict[tuple[str, str], int]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(Referral.status, Referral.kind, sa.func.count()).group_by(
                Referral.status, Referral.kind
            )
        ).all()
        return {(status, kind): int(n) for status, kind, n in rows}


def _submit(app: Flask, **overrides: object) -> int:
    with app.app_context():
        referral, _created = submit_referral(
            Submission(
                submission_id=str(uuid.uuid4()),
                answers=valid_referral(**overrides),
                files=[],
            )
        )
        return referral.id


def _delete_case(reference: str) -> None:
    case_id = db.session.scalar(sa.select(Referral.id).where(Referral.reference == reference))
    for table in reversed(db.metadata.sorted_tables):
        for key in table.foreign_keys:
            if key.target_fullname == "referral.id" and table.name != "referral":
                db.session.execute(sa.delete(table).where(key.parent == case_id))
    db.session.execute(sa.delete(Referral).where(Referral.id == case_id))


def test_counters_follow_every_kind_of_write(app: Flask) -> None:
    references = [
        make_referral(app, patient_given_name=name)
        for name in ("Ana", "Beto", "Carla", "Dario", "Elena")
    ]
    assert _counted(app) == _actual(app)
    assert sum(_counted(app).values()) == 5

    # One case at a time (the workspace's writes) ...
    set_referral(app, references[0], status=statuses.UNDER_REVIEW)
    set_referral(app, references[1], status=statuses.CLOSED)
    assert _counted(app) == _actual(app)
    # ... several in one statement, an update that changes neither column, a kind change ...
    with app.app_context():
        db.session.execute(
            sa.update(Referral)
            .where(Referral.reference.in_(references[2:]))
            .values(status=statuses.NEEDS_INFO)
        )
        db.session.execute(sa.update(Referral).values(status_reason=None))
        db.session.execute(
            sa.update(Referral)
            .where(Referral.reference == references[4])
            .values(kind="second_opinion")
        )
        db.session.commit()
    assert _counted(app) == _actual(app)
    # ... and deletes (a rolled-back change leaves the counters as they were).
    with app.app_context():
        db.session.execute(sa.update(Referral).values(status=statuses.WITHDRAWN))
        db.session.rollback()
        _delete_case(references[3])
        db.session.commit()
    assert _counted(app) == _actual(app)
    assert sum(_counted(app).values()) == 4


def test_queue_counts_read_the_counters_within_scope(app: Flask, client: FlaskClient) -> None:
    make_referral(app, patient_given_name="Ana")
    second = make_referral(app, patient_given_name="Beto")
    make_referral(app, patient_given_name="Carla")
    set_referral(app, second, kind="second_opinion", status=statuses.NEEDS_INFO)
    admin = make_user(app, "admin@example.org", role="admin")
    physician_queue = make_user(app, "coordinator@example.org", queues=["physician_referral"])
    with app.app_context():
        admin_user = db.session.get(User, admin.id)
        coordinator_user = db.session.get(User, physician_queue.id)
        assert admin_user is not None and coordinator_user is not None
        everything = status_counts(admin_user)
        physician_only = status_counts(coordinator_user)
        triaged = db.session.scalar(
            sa.select(Referral.status).where(Referral.kind == "physician_referral").limit(1)
        )
    assert set(everything) == set(OPEN_STATUSES)
    assert sum(everything.values()) == 3
    assert everything[statuses.NEEDS_INFO] == 1
    assert sum(physician_only.values()) == 2
    assert physician_only[statuses.NEEDS_INFO] == 0
    assert triaged is not None and physician_only[triaged] == 2

    sign_in(app, client, physician_queue)
    page = client.get("/coordinator/").get_data(as_text=True)
    assert page.count('class="count"') == len(OPEN_STATUSES)


def test_demo_data_load_keeps_the_counters(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["demo-data", "--count", "2500", "--open-share", "0.2", "--seed", "5"]
    )
    assert "demo cases added: 2500" in result.output
    assert _counted(app) == _actual(app)


def test_many_writers_at_once_keep_the_counters(app: Flask) -> None:
    """Concurrent submissions and status changes: no deadlock, no lost update."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("concurrent writers need PostgreSQL (SQLite serialises every write)")
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(6):
                case_id = _submit(app, patient_given_name=f"Child{n}x{i}")
                with app.app_context():
                    for status in (statuses.UNDER_REVIEW, statuses.NEEDS_INFO, statuses.CLOSED):
                        db.session.execute(
                            sa.update(Referral).where(Referral.id == case_id).values(status=status)
                        )
                        db.session.commit()
        except BaseException as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert _counted(app) == _actual(app)
    assert sum(_counted(app).values()) == 48


def test_migration_fills_the_counters_from_existing_cases(app: Flask) -> None:
    """Upgrading a database that already holds cases counts them (0011 fills the table after
    its triggers are in place); downgrading and upgrading again leaves them right."""
    from flask_migrate import downgrade, upgrade

    from intake.config import PROJECT_ROOT

    directory = str(PROJECT_ROOT / "migrations")
    first = make_referral(app, patient_given_name="Ana")
    make_referral(app, patient_given_name="Beto")
    with app.app_context():
        downgrade(directory=directory, revision="0010_alert_ack")
        db.engine.dispose()
    set_referral(app, first, status=statuses.CLOSED)  # written while nothing counts
    with app.app_context():
        upgrade(directory=directory)
        db.engine.dispose()
    assert _counted(app) == _actual(app)
    assert sum(_counted(app).values()) == 2
    set_referral(app, first, status=statuses.UNDER_REVIEW)
    assert _counted(app) == _actual(app)


def test_truncate_empties_the_counters(app: Flask) -> None:
    """An operator's TRUNCATE (PostgreSQL only; statement triggers see no rows for it)."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite has no TRUNCATE")
    make_referral(app, patient_given_name="Ana")
    make_referral(app, patient_given_name="Beto")
    assert sum(_counted(app).values()) == 2
    with app.app_context():
        db.session.execute(sa.text("TRUNCATE referral CASCADE"))
        db.session.commit()
    assert _counted(app) == _actual(app) == {}
    make_referral(app, patient_given_name="Carla")
    assert _counted(app) == _actual(app)
