"""Celery bound to the Flask app: every task runs inside an app context."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from flask import Flask


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    from workers.schedule import beat_schedule

    celery_app.conf.beat_schedule = beat_schedule(app.config)
    celery_app.conf.imports = ("workers.tasks",)
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
