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
    """Publish due, unclaimed events; returns how many were published."""
    published = 0
    now = utcnow()
    claim_seconds = current_app.config["CLAIM_SECONDS"]
    due_ids = db.session.scalars(
        sa.select(OutboxEvent.id)
        .where(
            OutboxEvent.published_at.is_(None),
            OutboxEvent.available_at <= now,
            sa.or_(OutboxEvent.claimed_until.is_(None), OutboxEvent.claimed_until < now),
        )
        .order_by(OutboxEvent.id)
        .limit(limit)
    ).all()
    db.session.rollback()
    celery_app = current_app.extensions["celery"]
    for event_id in due_ids:
        if not _claim(event_id, claim_seconds):
            continue
        event = db.session.get(OutboxEvent, event_id)
        if event is None:
            continue
        try:
            celery_app.send_task(
                event.task_name,
                args=event.args,
                task_id=f"outbox-{event.id}-{event.attempts}",
                retry=False,
            )
        except Exception as exc:  # noqa: BLE001 (any broker failure: keep the row, back off)
            delay = min(2 ** min(event.attempts, 8), 300) * (0.5 + random.random())  # noqa: S311
            event.claimed_until = None
            event.available_at = utcnow() + timedelta(seconds=delay)
            event.last_error = type(exc).__name__
            db.session.commit()
            log.warning("outbox_publish_failed event=%s error=%s", event.id, type(exc).__name__)
            break  # the broker is likely down: stop this pass, the sweep will come back
        event.published_at = utcnow()
        event.claimed_until = None
        db.session.commit()
        published += 1
    return published


def _claim(event_id: int, claim_seconds: int) -> bool:
    """Conditional UPDATE as the claim: portable to SQLite, which has no SKIP LOCKED."""
    now = utcnow()
    result = db.session.execute(
        sa.update(OutboxEvent)
        .where(
            OutboxEvent.id == event_id,
            OutboxEvent.published_at.is_(None),
            sa.or_(OutboxEvent.claimed_until.is_(None), OutboxEvent.claimed_until < now),
        )
        .values(
            claimed_until=now + timedelta(seconds=claim_seconds),
            attempts=OutboxEvent.attempts + 1,
        )
    )
    db.session.commit()
    return bool(getattr(result, "rowcount", 0))


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
