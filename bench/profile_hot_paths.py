"""Profile the hot paths with pyinstrument: the `/refer` POST and the coordinator's queue page.

Runs in one process through the Flask app against a private PostgreSQL database (10,000 demo
cases for the queue), real CSRF on `/refer`. Writes the call trees to
bench/results/profile-refer-<label>.txt and profile-queue-<label>.txt and prints the mean time
per request, so a fix can be compared before and after:

    .venv/bin/python -m bench.profile_hot_paths --label after
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pyinstrument import Profiler

from bench import _common as common

RESULTS = common.PROJECT_ROOT / "bench" / "results"


def refer_form(csrf_token: str) -> dict[str, Any]:
    from tests.referral_data import valid_referral

    return {"csrf_token": csrf_token, "submission_id": str(uuid.uuid4()), **valid_referral()}


def csrf_from(html: str) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    if not found:
        raise RuntimeError("no CSRF token in the page")
    return found.group(1)


def run(label: str, requests: int, cases: int) -> None:
    from intake import create_app
    from intake.config import load_config
    from intake.services.routing import CASE_KINDS
    from tests.staff.helpers import make_user, sign_in

    url = common.create_database("intake_bench_profile")
    instance = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    env = common.product_env(url, instance)
    try:
        common.migrate(env)
        common.flask(env, "demo-data", "--count", str(cases), "--seed", "7")
        # In-process relay off: nothing consumes this run's queue, so nothing is published.
        app = create_app({**load_config(env), "RELAY_IN_PROCESS": False})
        RESULTS.mkdir(exist_ok=True)

        client = app.test_client()
        token = csrf_from(client.get("/refer").get_data(as_text=True))
        for _ in range(5):
            _post(client, token)
        profiler = Profiler(interval=0.0005)
        started = time.perf_counter()
        with profiler:
            for _ in range(requests):
                _post(client, token)
        refer_ms = (time.perf_counter() - started) * 1000 / requests
        (RESULTS / f"profile-refer-{label}.txt").write_text(
            profiler.output_text(unicode=False, color=False)
        )

        staff_app = create_app(
            {**load_config(env), "RELAY_IN_PROCESS": False, "WTF_CSRF_ENABLED": False}
        )
        account = make_user(staff_app, "coordinator@bench.test", queues=list(CASE_KINDS))
        staff_client = staff_app.test_client()
        sign_in(staff_app, staff_client, account)
        for _ in range(5):
            staff_client.get("/coordinator/")
        profiler = Profiler(interval=0.0005)
        started = time.perf_counter()
        with profiler:
            for _ in range(requests):
                response = staff_client.get("/coordinator/")
                assert response.status_code == 200
        queue_ms = (time.perf_counter() - started) * 1000 / requests
        (RESULTS / f"profile-queue-{label}.txt").write_text(
            profiler.output_text(unicode=False, color=False)
        )
        print(
            f"[{label}] /refer POST {refer_ms:.1f} ms/request, queue page {queue_ms:.1f} "
            f"ms/request ({requests} requests each, profiler attached, {common.conditions()})"
        )
        # Without the profiler: this process's CPU per request (the database's is not in it,
        # so other load on the machine moves it little) and SQL statements per request.
        refer_cpu, refer_sql = _cost(app, lambda: _post(client, token), requests)
        queue_cpu, queue_sql = _cost(
            staff_app, lambda: staff_client.get("/coordinator/"), requests
        )
        print(
            f"[{label}] /refer POST {refer_cpu:.1f} ms CPU and {refer_sql:.1f} SQL statements "
            f"per request; queue page {queue_cpu:.1f} ms CPU and {queue_sql:.1f} statements"
        )
    finally:
        common.drop_database(url)
        shutil.rmtree(instance, ignore_errors=True)


def _cost(app: Any, action: Any, requests: int) -> tuple[float, float]:
    """(CPU ms of this process, SQL statements) per call of ``action``, medians of 3 runs."""
    from intake.extensions import db

    with app.app_context():
        engine = db.engine
    statements = 0

    def count(*_args: Any) -> None:
        nonlocal statements
        statements += 1

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            action()
        statements = 0
        for _ in range(5):
            action()
        per_request = statements / 5
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    cpu = []
    for _ in range(3):
        started = time.process_time()
        for _ in range(requests):
            action()
        cpu.append((time.process_time() - started) * 1000 / requests)
    return sorted(cpu)[1], per_request


def _post(client: Any, token: str) -> None:
    response = client.post("/refer", data=refer_form(token), content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)[:300]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="latest")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--cases", type=int, default=10_000)
    args = parser.parse_args()
    run(args.label, args.requests, args.cases)


if __name__ == "__main__":
    main()
