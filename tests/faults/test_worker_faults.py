"""Faults around the workers: kills (F3/F4), SMTP down (F5/F6), broker flushed (F11), two beats
and slow tasks (F12), poison messages (F14). Each ends with the reconciliation check."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa
from celery import Celery

from tests.faults.conftest import BATCH, KILL_BATCH, PrivateRedis, RecordingSmtp
from tests.faults.pipeline import (
    COORDINATOR,
    check_reconciled,
    full_logs,
    rows,
    scalar,
    submit_many,
    wait_settled,
)
from tests.stack import Stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def _engine(stack: Stack) -> sa.Engine:
    return sa.create_engine(stack.database_url, pool_pre_ping=True)


def _sent(engine: sa.Engine) -> int:
    return int(scalar(engine, "SELECT count(*) FROM notification WHERE status = 'sent'"))


def _uploads(stack: Stack) -> Path:
    return stack.instance_dir / "uploads"


def test_f2_relay_dies_after_publishing_before_marking_two_messages_one_email(
    fault_stack: Stack, smtp: RecordingSmtp, private_redis: PrivateRedis
) -> None:
    base = fault_stack.start_web(workers=2)
    outcomes = submit_many(base, BATCH, clients=8)
    assert [o.status for o in outcomes] == [303] * BATCH
    engine = _engine(fault_stack)
    try:
        # The web relay publishes every outbox row; no worker consumes yet.
        wait_for(
            lambda: (
                not scalar(engine, "SELECT count(*) FROM outbox_event WHERE published_at IS NULL")
            ),
            60,
            "the relay to publish every outbox row",
        )
        published = private_redis.client().llen(fault_stack.queue)
        assert published == 2 * BATCH  # a triage task and an acknowledgement per referral
        # The state a relay leaves when it dies between the publish and the mark: messages in
        # the broker, rows still unpublished. Beat's relay publishes every row a second time.
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE outbox_event SET published_at = NULL"))
        fault_stack.start_beat()
        wait_for(
            lambda: private_redis.client().llen(fault_stack.queue) >= 2 * published,
            60,
            "every row published twice",
        )
        fault_stack.start_worker(concurrency=2)
        wait_settled(engine, 180, fault_stack.logs)
        time.sleep(2)
        totals = check_reconciled(
            engine, smtp.messages, _uploads(fault_stack),
            stored={o.submission_id for o in outcomes},
        )  # fmt: skip
        assert totals == {"sent": 2 * BATCH, "duplicates": 0, "referrals": BATCH}
        assert len(smtp.messages) == 2 * BATCH
    finally:
        engine.dispose()


@pytest.mark.timeout(1200)
def test_f3_f4_worker_killed_mid_batch_everything_processed_duplicates_same_message_id(
    fault_stack: Stack, smtp: RecordingSmtp
) -> None:
    base = fault_stack.start_web(workers=2)
    worker = fault_stack.start_worker(concurrency=2)
    fault_stack.start_beat()
    outcomes = submit_many(base, KILL_BATCH, clients=8)
    failed = [(o.status, o.body[:300]) for o in outcomes if o.status != 303]
    assert not failed, (failed[:3], full_logs(fault_stack)[-6000:])
    engine = _engine(fault_stack)
    try:
        # F3: SIGKILL a pool child in the middle of the batch (late ack + reject on worker lost).
        wait_for(lambda: _sent(engine) >= KILL_BATCH // 4, 600, "a quarter of the emails", 0.05)
        children = psutil.Process(worker.pid).children()
        assert children, "the prefork worker has pool children"
        os.kill(children[0].pid, signal.SIGKILL)
        # F4: then SIGKILL the whole worker (main process and children), and start a new one:
        # its unacknowledged messages come back after the visibility timeout.
        wait_for(lambda: _sent(engine) >= KILL_BATCH // 2, 600, "half of the emails", 0.05)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        fault_stack.start_worker(concurrency=2, name="worker2")
        wait_settled(engine, 900, fault_stack.logs)
        time.sleep(2)
        totals = check_reconciled(
            engine, smtp.messages, _uploads(fault_stack),
            stored={o.submission_id for o in outcomes}, max_copies=2,
        )  # fmt: skip
        assert totals["sent"] == 2 * KILL_BATCH and totals["referrals"] == KILL_BATCH
        # A duplicate only in the kill-after-send window: each kill interrupts at most the two
        # tasks in flight; every copy carries its notification's Message-ID (check_reconciled
        # matched each to its row) and the resend is flagged in the log.
        assert totals["duplicates"] <= 2 + 2
        if totals["duplicates"]:
            assert "duplicate_risk" in full_logs(fault_stack)
    finally:
        engine.dispose()


@pytest.mark.fault_env(RETRY_BACKOFF_MAX="8")
def test_f5_smtp_refusing_then_back_delivers_after_growing_gaps(
    fault_stack: Stack, smtp: RecordingSmtp
) -> None:
    smtp.handler.refuse = True
    base = fault_stack.start_web()
    fault_stack.start_worker()
    fault_stack.start_beat()
    outcomes = submit_many(base, 3, clients=3)
    assert [o.status for o in outcomes] == [303] * 3
    coordinators = "coordinators@program.test"

    def refusals() -> list[float]:
        return [t for t, address in list(smtp.handler.refused) if address == coordinators]

    # Three referrals, so each retry round refuses three coordinator emails; wait for 4 rounds.
    wait_for(lambda: len(refusals()) >= 12, 60, "four refused rounds")
    smtp.handler.refuse = False
    engine = _engine(fault_stack)
    try:
        wait_settled(engine, 60, fault_stack.logs)
        time.sleep(1)
        totals = check_reconciled(
            engine, smtp.messages, _uploads(fault_stack),
            stored={o.submission_id for o in outcomes},
        )  # fmt: skip
        assert totals == {"sent": 6, "duplicates": 0, "referrals": 3}
        attempts = [
            r.attempts
            for r in rows(
                engine, "SELECT attempts FROM notification WHERE kind = :k", k=COORDINATOR
            )
        ]
        assert all(a >= 5 for a in attempts), attempts  # 4 refused + 1 delivered, recorded
    finally:
        engine.dispose()
    # Growing gaps, per notification: retry n waits between 2^n/2 and 2^n seconds (cap 8).
    times = sorted(refusals())
    rounds = [times[i] for i in range(0, len(times), 3)][:4]
    gaps = [b - a for a, b in zip(rounds, rounds[1:], strict=False)]
    assert gaps[-1] > gaps[0], gaps


@pytest.mark.fault_env(NOTIFY_MAX_ATTEMPTS="3", RETRY_BACKOFF_MAX="2")
def test_f6_smtp_down_past_last_retry_fails_dead_letters_alerts_once_and_escalates(
    fault_stack: Stack, smtp: RecordingSmtp
) -> None:
    smtp.handler.refuse = True
    base = fault_stack.start_web()
    fault_stack.start_worker()
    fault_stack.start_beat()
    outcomes = submit_many(base, 3, clients=3)
    engine = _engine(fault_stack)
    try:
        # Nobody was told of these cases: escalation treats them as breached at once (levels 1
        # and 2), and those emails fail too, each with its own alert.
        wait_for(lambda: scalar(engine, "SELECT count(*) FROM escalation") == 6, 120, "escalations")
        wait_settled(engine, 120, fault_stack.logs)
        time.sleep(3)  # a few beat sweeps: nothing more may happen to failed rows
        totals = check_reconciled(
            engine, smtp.messages, _uploads(fault_stack),
            stored={o.submission_id for o in outcomes},
        )  # fmt: skip
        assert totals == {
            "failed": 12, "duplicates": 0, "referrals": 3, "escalations": 6, "alerts": 12
        }  # fmt: skip
        assert scalar(engine, "SELECT count(*) FROM alert WHERE code = 'notification_failed'") == 12
        assert scalar(engine, "SELECT count(*) FROM dead_letter") == 12
        assert {r.attempts for r in rows(engine, "SELECT attempts FROM notification")} == {3}
        assert "CRITICAL intake.alerts alert code=notification_failed" in full_logs(fault_stack)
        assert not smtp.messages
    finally:
        engine.dispose()


def test_f11_redis_flushed_with_tasks_queued_the_sweep_republishes(
    fault_stack: Stack, smtp: RecordingSmtp, private_redis: PrivateRedis
) -> None:
    base = fault_stack.start_web(workers=2)
    fault_stack.start_beat()
    outcomes = submit_many(base, BATCH, clients=8)
    assert [o.status for o in outcomes] == [303] * BATCH
    engine = _engine(fault_stack)
    try:
        wait_for(
            lambda: (
                scalar(engine, "SELECT count(*) FROM outbox_event WHERE published_at IS NULL") == 0
            ),
            30,
            "the relay to publish every outbox row",
        )
        assert private_redis.client().llen(fault_stack.queue) >= 2 * BATCH
        private_redis.flushall()
        fault_stack.start_worker()
        wait_settled(engine, 120, fault_stack.logs)
        time.sleep(2)
        totals = check_reconciled(
            engine, smtp.messages, _uploads(fault_stack),
            stored={o.submission_id for o in outcomes},
        )  # fmt: skip
        assert totals == {"sent": 2 * BATCH, "duplicates": 0, "referrals": BATCH}
        assert "reconcile requeued" in full_logs(fault_stack)
    finally:
        engine.dispose()


def _escalate_everything(engine: sa.Engine) -> None:
    """Move every review deadline 5 hours into the past: the next sweep escalates levels 1-3.

    Workers and beat run in their own processes (freezegun cannot reach them), so the test
    moves the deadlines, not the clock.
    """
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE referral SET review_due_at = now() - interval '5 hours'")
        )


def test_f12_two_beats_escalate_and_send_nothing_twice(
    fault_stack: Stack, smtp: RecordingSmtp
) -> None:
    base = fault_stack.start_web(workers=2)
    fault_stack.start_beat()
    fault_stack.start_beat()
    # Submitted before any worker runs, so both beats' sweeps re-queue the same stuck cases.
    outcomes = submit_many(base, BATCH, clients=8)
    time.sleep(8)
    fault_stack.start_worker(concurrency=2)
    fault_stack.start_worker(concurrency=2, name="worker2")
    engine = _engine(fault_stack)
    try:
        wait_settled(engine, 180, fault_stack.logs)
        # Both beats now fire the escalation sweep every second, on two workers at once.
        _escalate_everything(engine)
        wait_for(
            lambda: (
                scalar(engine, "SELECT count(*) FROM notification WHERE status = 'sent'")
                == 5 * BATCH
            ),
            180,
            "every escalation email",
        )
        time.sleep(4)
        totals = check_reconciled(
            engine, smtp.messages, _uploads(fault_stack),
            stored={o.submission_id for o in outcomes},
        )  # fmt: skip
        assert totals == {
            "sent": 5 * BATCH, "duplicates": 0, "referrals": BATCH, "escalations": 3 * BATCH
        }  # fmt: skip
        assert scalar(engine, "SELECT count(*) FROM alert") == 0
        assert len(smtp.messages) == 5 * BATCH
    finally:
        engine.dispose()


@pytest.mark.fault_env(
    CELERY_VISIBILITY_TIMEOUT="2", SMTP_TIMEOUT="30", CLAIM_SECONDS="120", RETRY_BACKOFF_MAX="1"
)
def test_f12_task_slower_than_visibility_timeout_sends_once(
    fault_stack: Stack, smtp: RecordingSmtp
) -> None:
    # The fake SMTP server takes 6 s to accept each message: every send task outlives the 2 s
    # visibility timeout, and the workers look for expired messages every second, so each
    # send message is handed out again while its first run is still talking to the server.
    smtp.handler.data_delay = 6.0
    base = fault_stack.start_web()
    fault_stack.start_worker(concurrency=2)
    fault_stack.start_worker(concurrency=2, name="worker2")
    fault_stack.start_beat()
    outcomes = submit_many(base, 1, clients=1)
    engine = _engine(fault_stack)
    try:
        wait_settled(engine, 120, fault_stack.logs)
        _escalate_everything(engine)
        wait_for(
            lambda: scalar(engine, "SELECT count(*) FROM notification WHERE status = 'sent'") == 5,
            180,
            "the escalation emails",
        )
        time.sleep(3)
        totals = check_reconciled(
            engine, smtp.messages, _uploads(fault_stack),
            stored={o.submission_id for o in outcomes},
        )  # fmt: skip
        assert totals == {"sent": 5, "duplicates": 0, "referrals": 1, "escalations": 3}
        assert len(smtp.messages) == 5
    finally:
        engine.dispose()
    logs = full_logs(fault_stack)
    received = Counter(re.findall(r"Task notify\.send\[([^\]]+)\] received", logs))
    redelivered = [task for task, count in received.items() if count > 1]
    assert redelivered, "a send message was handed out again while its first run was busy"
    skipped = re.findall(r"Task notify\.send\[([^\]]+)\] succeeded in [0-9.]+s: 'skipped'", logs)
    assert set(redelivered) <= set(skipped), "the second run saw the claim and sent nothing"


@pytest.mark.fault_env(TASK_MAX_ATTEMPTS="4", RETRY_BACKOFF_MAX="2")
def test_f14_poison_message_is_dead_lettered_while_the_queue_keeps_draining(
    fault_stack: Stack, smtp: RecordingSmtp, private_redis: PrivateRedis
) -> None:
    base = fault_stack.start_web(workers=2)
    fault_stack.start_worker(concurrency=2)
    fault_stack.start_beat()
    publisher = Celery(broker=private_redis.url)
    publisher.send_task("referrals.triage", args=["not-a-case-id"], queue=fault_stack.queue)
    publisher.send_task("notify.send", args=[{"bad": "payload"}], queue=fault_stack.queue)
    outcomes = submit_many(base, BATCH, clients=8)
    engine = _engine(fault_stack)
    try:
        wait_settled(engine, 120, fault_stack.logs)
        wait_for(
            lambda: scalar(engine, "SELECT count(*) FROM dead_letter") == 1,
            60,
            "the poison message dead-lettered",
        )
        time.sleep(2)
        totals = check_reconciled(
            engine, smtp.messages, _uploads(fault_stack),
            stored={o.submission_id for o in outcomes},
        )  # fmt: skip
        assert totals == {"sent": 2 * BATCH, "duplicates": 0, "referrals": BATCH, "alerts": 1}
        dead = rows(engine, "SELECT task_name, args FROM dead_letter")
        assert [(d.task_name, _json(d.args)) for d in dead] == [
            ("referrals.triage", ["not-a-case-id"])
        ]
        failures = rows(engine, "SELECT task_name, attempts, dead_lettered_at FROM task_failure")
        assert [(f.task_name, f.attempts) for f in failures] == [("referrals.triage", 4)]
        assert failures[0].dead_lettered_at is not None
        assert scalar(engine, "SELECT count(*) FROM alert WHERE code = 'task_dead_lettered'") == 1
        # A notification id that matches nothing is not poison: it is consumed and skipped.
        assert re.search(r"Task notify\.send\[[^\]]+\] succeeded in [0-9.]+s: 'skipped'",
                         full_logs(fault_stack))  # fmt: skip
    finally:
        engine.dispose()


def _json(value: object) -> object:
    import json

    return json.loads(value) if isinstance(value, str) else value
