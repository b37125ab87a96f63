"""A failed task run is retried with a sanitized exception: Celery logs the retry's exception,
and a SQLAlchemy error's text carries the statement's bound parameters (possibly PHI)."""

from __future__ import annotations

import logging
import traceback

import pytest
import sqlalchemy as sa
from celery import Celery, Task
from celery.exceptions import Retry
from flask import Flask

from intake.extensions import db
from intake.models import TaskFailure
from workers import guard

SECRET = "Jane Q. Patient"


def _leaky_body() -> str:
    raise sa.exc.StatementError(
        "could not process", "SELECT :name", {"name": SECRET}, ValueError("bad value")
    )


def test_retry_after_a_failure_carries_the_type_and_ids_only(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    celery = Celery("guard-test", broker="memory://", backend="cache+memory://")

    @celery.task(name="test.guarded", bind=True)
    def guarded(self: Task, referral_id: int) -> str:  # type: ignore[type-arg]
        return str(guard.run_guarded(self, _leaky_body))

    assert SECRET in str(pytest.raises(sa.exc.StatementError, _leaky_body).value)
    guarded.push_request(args=[42], retries=0, delivery_info={}, called_directly=False)
    caplog.set_level(logging.DEBUG)
    try:
        with app.app_context(), pytest.raises(Retry) as raised:
            guarded.run(42)
    finally:
        guarded.pop_request()
    retry = raised.value
    assert isinstance(retry.exc, guard.TaskFailed)
    assert str(retry.exc) == "StatementError in test.guarded args=[42]"
    # What Celery's worker logs for a retry: its text and the formatted chain.
    logged = str(retry) + "".join(traceback.format_exception(retry))
    assert "StatementError" in logged
    assert SECRET not in logged
    assert SECRET not in caplog.text
    with app.app_context():
        [failure] = db.session.scalars(sa.select(TaskFailure)).all()
        assert failure.attempts == 1
        assert failure.last_error == "StatementError"
