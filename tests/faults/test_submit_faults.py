"""Faults around submission: broker down (F1), database restarts (F7), double submits (F9/F10)."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.faults.conftest import BATCH, F1_BATCH, PrivatePostgres, PrivateRedis, RecordingSmtp
from tests.faults.pipeline import (
    Referrer,
    check_reconciled,
    rows,
    submit_many,
    wait_settled,
)
from tests.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def _engine(stack: Stack) -> sa.Engine:
    return sa.create_engine(stack.database_url, pool_pre_ping=True)


def test_f9_f10_parallel_and_repeated_posts_make_one_referral_and_one_email(
    fault_stack: Stack, smtp: RecordingSmtp
) -> None:
    base = fault_stack.start_web(workers=2)
    fault_stack.start_worker()
    submission_id = str(uuid.uuid4())
    referrers = [Referrer(base) for _ in range(10)]
    barrier = threading.Barrier(10)

    def post(referrer: Referrer) -> tuple[int, str]:
        barrier.wait()
        outcome = referrer.post(submission_id)
        return outcome.status, referrer.confirmed_reference() if outcome.status == 303 else ""

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(post, referrers))
    assert [status for status, _ in answers] == [303] * 10, fault_stack.logs()
    assert len({reference for _, reference in answers}) == 1, answers

    engine = _engine(fault_stack)
    try:
        wait_settled(engine, 60, fault_stack.logs)
        # F10: back button and submit again after success: same reference, nothing new.
        again = referrers[0].post(submission_id)
        assert again.status == 303
        assert referrers[0].confirmed_reference() == answers[0][1]
        time.sleep(2)
        totals = check_reconciled(
            engine, smtp.messages, Path(fault_stack.instance_dir / "uploads"),
            stored={submission_id},
        )  # fmt: skip
        assert totals == {"sent": 2, "duplicates": 0, "referrals": 1}
        assert len(smtp.messages) == 2
    finally:
        engine.dispose()


@pytest.mark.timeout(900)
def test_f1_redis_down_while_submitting_then_everything_is_processed(
    fault_stack: Stack, smtp: RecordingSmtp, private_redis: PrivateRedis
) -> None:
    base = fault_stack.start_web(workers=2)
    fault_stack.start_worker()
    fault_stack.start_beat()
    private_redis.stop()

    started = time.monotonic()
    outcomes = submit_many(base, F1_BATCH, clients=8)
    elapsed = time.monotonic() - started
    assert [o.status for o in outcomes] == [303] * F1_BATCH, fault_stack.logs()
    # The request never talks to the broker: a dead Redis does not slow submissions down.
    assert elapsed < 180

    engine = _engine(fault_stack)
    try:
        pending = rows(engine, "SELECT count(*) AS n FROM outbox_event WHERE published_at IS NULL")
        assert pending[0].n >= F1_BATCH, "outbox rows wait for the broker"
        private_redis.start()
        wait_settled(engine, 600, fault_stack.logs)
        time.sleep(2)
        totals = check_reconciled(
            engine, smtp.messages, fault_stack.instance_dir / "uploads",
            stored={o.submission_id for o in outcomes},
        )  # fmt: skip
        assert totals == {"sent": 2 * F1_BATCH, "duplicates": 0, "referrals": F1_BATCH}
    finally:
        engine.dispose()


def test_f7_postgres_restart_during_submissions_answers_303_stored_or_503_nothing(
    fault_stack: Stack, smtp: RecordingSmtp, private_pg: PrivatePostgres
) -> None:
    base = fault_stack.start_web(workers=2)
    fault_stack.start_worker()
    fault_stack.start_beat()
    results: list = []
    # Paced submissions that span the restart.
    submitter = threading.Thread(
        target=lambda: results.extend(submit_many(base, BATCH, clients=4, pause=0.25))
    )
    submitter.start()
    time.sleep(1.0)
    private_pg.restart(down_seconds=1.5)
    submitter.join(timeout=120)
    assert not submitter.is_alive()

    statuses = sorted({o.status for o in results})
    assert set(statuses) <= {303, 503}, (statuses, fault_stack.logs())
    refused = [o for o in results if o.status == 503]
    assert refused, "the restart hit some submissions"
    for outcome in refused:
        # The form is shown again with the user's answers and a clear message.
        assert "Dr. Amelia Okafor" in outcome.body and "Nothing was saved" in outcome.body
    engine = _engine(fault_stack)
    try:
        stored_ids = {r.submission_id for r in rows(engine, "SELECT submission_id FROM referral")}
        assert {o.submission_id for o in results if o.status == 303} <= stored_ids
        assert not ({o.submission_id for o in refused} & stored_ids), "a 503 stored a referral"

        # Submitting again with the same submission id is safe and now succeeds.
        referrer = Referrer(base)
        assert [referrer.post(o.submission_id).status for o in refused] == [303] * len(refused)
        wait_settled(engine, 120, fault_stack.logs)
        time.sleep(2)
        totals = check_reconciled(
            engine, smtp.messages, fault_stack.instance_dir / "uploads",
            stored={o.submission_id for o in results},
        )  # fmt: skip
        assert totals == {"sent": 2 * BATCH, "duplicates": 0, "referrals": BATCH}
    finally:
        engine.dispose()


def test_f8_postgres_restart_during_tasks_worker_recovers_without_restart(
    fault_stack: Stack, smtp: RecordingSmtp, private_pg: PrivatePostgres
) -> None:
    base = fault_stack.start_web(workers=2)
    outcomes = submit_many(base, BATCH, clients=8)
    assert [o.status for o in outcomes] == [303] * BATCH
    worker = fault_stack.start_worker()
    fault_stack.start_beat()
    engine = _engine(fault_stack)
    try:
        from tests.stack import wait_for

        wait_for(
            lambda: (
                rows(engine, "SELECT count(*) AS n FROM referral WHERE triaged_at IS NOT NULL")[0].n
                > 0
            ),
            60,
            "the first triage",
            interval=0.05,
        )
        private_pg.restart(down_seconds=2)
        wait_settled(engine, 150, fault_stack.logs)
        assert worker.poll() is None, "the same worker process recovered"
        time.sleep(2)
        totals = check_reconciled(
            engine, smtp.messages, fault_stack.instance_dir / "uploads",
            stored={o.submission_id for o in outcomes},
        )  # fmt: skip
        assert totals == {"sent": 2 * BATCH, "duplicates": 0, "referrals": BATCH}
    finally:
        engine.dispose()


def test_f13_upload_store_unavailable_answers_503_with_the_form_and_stores_nothing(
    fault_stack: Stack, smtp: RecordingSmtp
) -> None:
    # The upload folder's path is taken by a plain file: every blob write fails.
    store = fault_stack.instance_dir / "uploads"
    store.write_text("not a folder: the upload store is unavailable")
    base = fault_stack.start_web()
    fault_stack.start_worker()
    referrer = Referrer(base)
    refused = [referrer.post() for _ in range(3)]
    assert [o.status for o in refused] == [503] * 3, fault_stack.logs()
    for outcome in refused:
        assert "Dr. Amelia Okafor" in outcome.body and "Nothing was saved" in outcome.body
    engine = _engine(fault_stack)
    try:
        assert not rows(engine, "SELECT id FROM referral")
        assert not rows(engine, "SELECT id FROM document")
        # The store is back: the same submissions go through, once each.
        store.unlink()
        assert [referrer.post(o.submission_id).status for o in refused] == [303] * 3
        wait_settled(engine, 120, fault_stack.logs)
        time.sleep(1)
        totals = check_reconciled(
            engine, smtp.messages, store, stored={o.submission_id for o in refused}
        )
        assert totals == {"sent": 6, "duplicates": 0, "referrals": 3}
    finally:
        engine.dispose()
