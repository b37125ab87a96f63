"""Worker and beat entrypoint: `celery -A workers.celery worker` / `beat`."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_init

from intake import create_app
from intake.extensions import db

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
app = celery_app

# Importing these registers the tasks.
import workers.account_tasks  # noqa: E402,F401
import workers.tasks  # noqa: E402,F401


@worker_process_init.connect
def _dispose_engine_after_fork(**_: Any) -> None:
    # Connections inherited from the parent must not be shared across forked children.
    with flask_app.app_context():
        db.engine.dispose(close=False)

# No task_postrun session cleanup: FlaskTask runs each task in its own app context, and
# Flask-SQLAlchemy removes the session when that context ends.
