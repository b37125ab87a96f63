"""Poison messages (fault F14): count a message's failures in the database, dead-letter after N.

A task body that raises something unexpected is retried with backoff; after TASK_MAX_ATTEMPTS
failed runs the message is recorded in `dead_letter`, one alert is raised and the message is
acknowledged, so the queue keeps draining. A message redelivered after its worker died counts
as an attempt too (before it runs), so a message that kills workers cannot loop forever.
Transient database errors and Celery's own retries are left to the task's retry policy.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from celery import Task
from celery.exceptions import Retry
from flask import current_app
from sqlalchemy.exc import DBAPIError, IntegrityError

from intake.extensions import db
from intake.models import DeadLetter, TaskFailure, utcnow
from intake.services import alerts
from intake.services.notifications import retry_delay

log = logging.getLogger("workers.guard")

T = TypeVar("T")
PASS_THROUGH: tuple[type[BaseException], ...] = (Retry, DBAPIError)


class TaskFailed(Exception):
    """A failed run as retried and logged: the exception's type name and the task's ids only."""


def message_key(task_name: str, args: Any) -> str:
    return hashlib.sha256(json.dumps([task_name, args], default=str).encode()).hexdigest()


def run_guarded(task: Task, body: Callable[[], T]) -> T | str:  # type: ignore[type-arg]
    request = task.request
    args = list(request.args or [])
    key = message_key(task.name, args)
    max_attempts = int(current_app.config["TASK_MAX_ATTEMPTS"])
    redelivered = bool((request.delivery_info or {}).get("redelivered"))
    if redelivered:
        if _count_failure(key, task.name, args, "redelivered: a worker was lost") > max_attempts:
            return _dead_letter(key, task.name, args, "worker lost on every attempt")
    try:
        result = body()
    except PASS_THROUGH:
        raise
    except Exception as exc:  # noqa: BLE001 (anything else is a candidate poison)
        db.session.rollback()
        error = type(exc).__name__
        attempts = _count_failure(key, task.name, args, error)
        log.warning("task_failed task=%s attempts=%s error=%s", task.name, attempts, error)
        if attempts >= max_attempts:
            return _dead_letter(key, task.name, args, error)
        # Celery logs the retry's exception (and its chain); a SQLAlchemy error's text carries
        # the bound parameters, which may be patient data, so only the type and ids go along.
        sanitized = TaskFailed(f"{error} in {task.name} args={args}")
        retry = task.retry(
            countdown=retry_delay(attempts), max_retries=None, exc=sanitized, throw=False
        )
        raise retry from None
    if request.retries or redelivered:
        _clear(key)
    return result


def _count_failure(key: str, task_name: str, args: list[Any], error: str) -> int:
    """Add one attempt on a connection of its own (the task's session may be broken)."""
    table = TaskFailure.__table__
    with db.engine.begin() as connection:
        bump = (
            sa.update(table)
            .where(table.c.key == key)
            .values(attempts=table.c.attempts + 1, last_error=error[:200], updated_at=utcnow())
        )
        if not connection.execute(bump).rowcount:
            try:
                with connection.begin_nested():
                    connection.execute(
                        sa.insert(table).values(
                            key=key,
                            task_name=task_name,
                            args=args,
                            attempts=1,
                            last_error=error[:200],
                            updated_at=utcnow(),
                        )
                    )
            except IntegrityError:
                connection.execute(bump)  # a concurrent run inserted it first
        return int(
            connection.execute(sa.select(table.c.attempts).where(table.c.key == key)).scalar_one()
        )


def _dead_letter(key: str, task_name: str, args: list[Any], error: str) -> str:
    failure = db.session.get(TaskFailure, key)
    if failure is not None and failure.dead_lettered_at is None:
        failure.dead_lettered_at = utcnow()
        db.session.add(DeadLetter(task_name=task_name, args=args, error=error[:200]))
        alerts.raise_alert(
            code="task_dead_lettered",
            dedupe_key=f"task_dead_lettered:{key[:48]}",
            message=f"Task {task_name} was dead-lettered after {failure.attempts} attempts "
            f"({error[:60]}).",
        )
    db.session.commit()
    log.error("task_dead_lettered task=%s key=%s", task_name, key[:12])
    return "dead_lettered"


def _clear(key: str) -> None:
    db.session.execute(sa.delete(TaskFailure).where(TaskFailure.key == key))
    db.session.commit()
