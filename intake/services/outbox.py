"""Transactional outbox: tasks are recorded with the change that needs them, published later.

The web request never talks to the broker (celery#6046: publishing can hang while it is down).
After a commit that added events, a relay thread in the web process is woken; beat's sweep is
the backstop, and workers relay their own follow-up events right after they commit.
"""

from __future__ import annotations

import logging
import random
import threading
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from sqlalchemy.orm import Session

from intake.extensions import db
from intake.models import OutboxEvent, utcnow

log = logging.getLogger("intake.outbox")

_KICK_FLAG = "outbox_events_added"


def add_event(session: Session, task_name: str, *args: int | str) -> OutboxEvent:
    """Record a task for publication; it commits (or rolls back) with the caller's transaction."""
    event = OutboxEvent(task_name=task_name, args=list(args))
    session.add(event)
    session.info[_KICK_FLAG] = True
    return event


def relay(limit: int = 200) -> int:
    """Publish due, unclaimed events; returns how many were published.

    One UPDATE … RETURNING claims the whole batch and one UPDATE marks what was published:
    two commits per pass instead of two per event (the per-event claims were half the web
    process's work under load, bench/README.md). A crash between publishing and marking
    republishes that batch after the claim expires; consumers are idempotent.
    """
    claimed = _claim_batch(limit, current_app.config["CLAIM_SECONDS"])
    if not claimed:
        return 0
    celery_app = current_app.extensions["celery"]
    published: list[int] = []
    for event_id, task_name, args, attempts in claimed:
        try:
            celery_app.send_task(
                task_name, args=args, task_id=f"outbox-{event_id}-{attempts}", retry=False
            )
        except Exception as exc:  # noqa: BLE001 (any broker failure: keep the row, back off)
            _back_off(event_id, attempts, exc, [row[0] for row in claimed], published)
            break  # the broker is likely down: stop this pass, the sweep will come back
        published.append(event_id)
    if published:
        db.session.execute(
            sa.update(OutboxEvent)
            .where(OutboxEvent.id.in_(published))
            .values(published_at=utcnow(), claimed_until=None)
        )
        db.session.commit()
    return len(published)


def _claim_batch(limit: int, claim_seconds: int) -> list[tuple[int, str, list[Any], int]]:
    """Claim up to `limit` due events. The conditions are re-checked by the UPDATE itself, so
    two relays never claim the same row (SKIP LOCKED on PostgreSQL just avoids waiting)."""
    now = utcnow()
    claimable = sa.and_(
        OutboxEvent.published_at.is_(None),
        OutboxEvent.available_at <= now,
        sa.or_(OutboxEvent.claimed_until.is_(None), OutboxEvent.claimed_until < now),
    )
    due = sa.select(OutboxEvent.id).where(claimable).order_by(OutboxEvent.id).limit(limit)
    if db.session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = db.session.execute(
        sa.update(OutboxEvent)
        .where(OutboxEvent.id.in_(due.scalar_subquery()), claimable)
        .values(
            claimed_until=now + timedelta(seconds=claim_seconds),
            attempts=OutboxEvent.attempts + 1,
        )
        .returning(OutboxEvent.id, OutboxEvent.task_name, OutboxEvent.args, OutboxEvent.attempts)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return sorted((row[0], row[1], list(row[2] or []), row[3]) for row in rows)


def _back_off(
    event_id: int, attempts: int, exc: Exception, claimed: list[int], published: list[int]
) -> None:
    """The failed event waits a growing, jittered gap; the untried rest are released as is."""
    delay = min(2 ** min(attempts, 8), 300) * (0.5 + random.random())  # noqa: S311
    db.session.execute(
        sa.update(OutboxEvent)
        .where(OutboxEvent.id == event_id)
        .values(
            claimed_until=None,
            available_at=utcnow() + timedelta(seconds=delay),
            last_error=type(exc).__name__,
        )
    )
    untried = [i for i in claimed if i != event_id and i not in set(published)]
    if untried:
        db.session.execute(
            sa.update(OutboxEvent)
            .where(OutboxEvent.id.in_(untried))
            .values(claimed_until=None, attempts=OutboxEvent.attempts - 1)
        )
    db.session.commit()
    log.warning("outbox_publish_failed event=%s error=%s", event_id, type(exc).__name__)


class RelayThread:
    """One daemon thread per web process, woken after commits that added outbox events."""

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._app: Flask | None = None

    def kick(self, app: Flask) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._app = app
                self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        assert self._app is not None
        interval = float(self._app.config["OUTBOX_SWEEP_SECONDS"])
        while True:
            self._wake.wait(timeout=interval)
            self._wake.clear()
            try:
                with self._app.app_context():
                    relay()
                    db.session.remove()
            except Exception as exc:  # noqa: BLE001 (the relay must outlive database blips)
                log.warning("outbox_relay_pass_failed error=%s", type(exc).__name__)


relay_thread = RelayThread()


_hook_installed = False


def install_commit_hook() -> None:
    """Wake the relay thread after any commit that added outbox events (web process only)."""
    global _hook_installed
    if _hook_installed:
        return
    _hook_installed = True

    @sa.event.listens_for(db.session, "after_commit")  # type: ignore[misc]
    def _after_commit(session: Any) -> None:
        if not session.info.pop(_KICK_FLAG, False) or not has_app_context():
            return
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if app.config["RELAY_IN_PROCESS"]:
            relay_thread.kick(app)

    @sa.event.listens_for(db.session, "after_rollback")  # type: ignore[misc]
    def _after_rollback(session: Any) -> None:
        session.info.pop(_KICK_FLAG, None)
