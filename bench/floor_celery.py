"""The queue floor: a bare Celery app whose one task does nothing, on the product's Redis.

Same broker settings that matter for latency as the product (JSON, late acks, prefetch 1,
prefork pool); a result backend so the caller can time the full round trip.

    FLOOR_QUEUE=... celery -A bench.floor_celery worker -P prefork --concurrency 2 -Q ...
"""

from __future__ import annotations

import os

from celery import Celery

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")

app = Celery("floor", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue=os.environ.get("FLOOR_QUEUE", "intake-bench-floor"),
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    result_expires=600,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
)


@app.task(name="floor.noop")
def noop() -> None:
    return None
