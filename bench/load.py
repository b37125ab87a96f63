"""Load test: 50 browsers submit referrals with a PDF attached for N seconds; nothing may fail.

Starts the product as in production, on its own database and queue: gunicorn (2 workers x 4
threads), 2 Celery worker processes, beat, the shared PostgreSQL and Redis, and a local SMTP
server that accepts everything. Each client is a thread with its own session: it loads /refer
(CSRF token and cookie, as a browser), then posts complete referral forms with a flow cytometry
PDF, one after another, until the time is up. Then it waits until every stored referral is
triaged and both of its emails (coordinators, referrer) are accepted by the SMTP server.

Passes (exit 0) only with zero errors (every POST answered 303 with a new referral), every
referral triaged and notified, and exactly one email per notification. Prints one JSON line.

    # The issue's full run (about 2 minutes with the drain):
    .venv/bin/python -m bench.load --clients 50 --seconds 60

The test suite runs it for 10 seconds (tests/faults/test_load.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.referral_data import valid_referral  # noqa: E402
from tests.samples import tiny_pdf  # noqa: E402
from tests.stack import SmtpServer, Stack, wait_for  # noqa: E402

PG_URL = os.environ.get(
    "LOAD_DATABASE_URL",
    os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
)
REDIS_URL = os.environ.get(
    "LOAD_REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
)
# Every referral comes from a handful of addresses: lift the per-day acknowledgement cap.
STACK_ENV = {
    "ACK_DAILY_CAP": "1000000",
    "RECONCILE_AFTER_SECONDS": "30",
    # The Procfile's web timeout.
    "GUNICORN_CMD_ARGS": "--timeout 60",
}


@dataclass
class ClientResult:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    submission_ids: list[str] = field(default_factory=list)
    exceptions: Counter[str] = field(default_factory=Counter)
    resent: int = 0


def _client(base: str, index: int, stop_at: float, result: ClientResult) -> None:
    session = requests.Session()
    try:
        page = session.get(f"{base}/refer", timeout=60)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
        assert token, "the form carries a CSRF token"
    except Exception as exc:  # noqa: BLE001 (counted as an error, reported at the end)
        result.exceptions[type(exc).__name__] += 1
        return
    pdf = tiny_pdf()
    form_base = {**valid_referral(referrer_email=f"load{index}@riverside-childrens.org")}
    while time.monotonic() < stop_at:
        submission_id = str(uuid.uuid4())
        form = {**form_base, "csrf_token": token.group(1), "submission_id": submission_id}
        files = {"doc_flow_cytometry": ("flow-2026-10-20.pdf", pdf, "application/pdf")}
        started = time.monotonic()
        response = None
        for attempt in range(3):
            try:
                response = session.post(
                    f"{base}/refer", data=form, files=files, timeout=120, allow_redirects=False
                )
                break
            except requests.RequestException as exc:
                # A kept-alive connection closed by the server as the request arrives is reset;
                # a browser sends the request again on a new connection, and the submission id
                # makes that safe. Counted in `resent`; any other failure is an error.
                if "Connection aborted" in repr(exc) and attempt < 2:
                    result.resent += 1
                    continue
                result.exceptions[type(exc).__name__] += 1
                break
        if response is None:
            continue
        result.latencies.append(time.monotonic() - started)
        result.statuses[response.status_code] += 1
        if response.status_code == 303:
            result.submission_ids.append(submission_id)


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _count(engine: sa.Engine, query: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text(query)).scalar() or 0)


def _processed(engine: sa.Engine) -> bool:
    return _count(engine, "SELECT count(*) FROM referral WHERE triaged_at IS NULL") == 0 and (
        _count(engine, "SELECT count(*) FROM notification WHERE status = 'sent'")
        == 2 * _count(engine, "SELECT count(*) FROM referral")
    )


def _vm_hwm_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of one process in MiB, as the kernel recorded it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return psutil.Process(pid).memory_info().rss / 2**20


def _peak_rss_mb(stack: Stack) -> dict[str, float]:
    """Peak resident memory (VmHWM) of the largest process of each role, read before the stop.

    Roles: a gunicorn web worker (the master only forks them), a Celery pool process (runs the
    tasks) and a Celery main process (consumes and dispatches).
    """
    peaks: dict[str, float] = {"web_worker": 0.0, "celery_pool_process": 0.0, "celery_main": 0.0}
    for process in stack.processes:
        args = [str(arg) for arg in process.args]  # type: ignore[union-attr]
        if "beat" in args:
            continue
        try:
            parent = psutil.Process(process.pid)
            children = parent.children(recursive=True)
            if args[0].endswith("gunicorn"):
                members = [("web_worker", child.pid) for child in children]
            else:
                members = [("celery_main", parent.pid)]
                members += [("celery_pool_process", child.pid) for child in children]
            for role, pid in members:
                peaks[role] = max(peaks[role], _vm_hwm_mb(pid))
        except (psutil.Error, OSError):
            continue
    return {role: round(value, 1) for role, value in peaks.items()}


def run(
    clients: int = 50,
    seconds: float = 60.0,
    worker_processes: int = 2,
    drain_timeout: float = 600.0,
    admin_url: str = PG_URL,
    broker_url: str = REDIS_URL,
) -> dict[str, Any]:
    """Run the load test and return its figures (`ok` says whether every check held)."""
    folder = Path(tempfile.mkdtemp(prefix="intake-load-"))
    name = f"intake_load_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        make_url(admin_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    database_url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    smtp = SmtpServer().start()
    stack = Stack(database_url, broker_url, folder, smtp.port, extra_env=STACK_ENV)
    engine = sa.create_engine(database_url, pool_pre_ping=True)
    try:
        stack.flask("db", "upgrade")
        stack.flask("seed-routing")
        base = stack.start_web(workers=2)
        for number in range(worker_processes):
            stack.start_worker(concurrency=2, name=f"worker{number + 1}")
        stack.start_beat()

        results = [ClientResult() for _ in range(clients)]
        started = time.monotonic()
        stop_at = started + seconds
        threads = [
            threading.Thread(target=_client, args=(base, i, stop_at, results[i]), daemon=True)
            for i in range(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + 180)
        submitted_in = time.monotonic() - started

        latencies = [value for r in results for value in r.latencies]
        statuses: Counter[int] = sum((r.statuses for r in results), Counter())
        exceptions: Counter[str] = sum((r.exceptions for r in results), Counter())
        accepted = [sid for r in results for sid in r.submission_ids]
        errors = sum(count for status, count in statuses.items() if status != 303)
        errors += sum(exceptions.values()) + sum(thread.is_alive() for thread in threads)

        drain_started = time.monotonic()
        try:
            wait_for(lambda: _processed(engine), drain_timeout, "every referral processed", 0.5)
            drained = True
        except AssertionError:
            drained = False
        drain_seconds = time.monotonic() - drain_started
        time.sleep(1)

        referrals = _count(engine, "SELECT count(*) FROM referral")
        with engine.connect() as connection:
            stored_ids = {
                row[0] for row in connection.execute(sa.text("SELECT submission_id FROM referral"))
            }
        copies = Counter(str(m["Message-ID"]).strip() for m in smtp.messages)
        figures: dict[str, Any] = {
            "clients": clients,
            "seconds": seconds,
            "worker_processes": worker_processes,
            "submitted": len(latencies),
            "accepted": len(accepted),
            "errors": errors,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "exceptions": dict(exceptions),
            "resent_after_reset": sum(r.resent for r in results),
            "referrals_per_second": round(len(accepted) / submitted_in, 1),
            "latency_ms": {
                "median": round(statistics.median(latencies) * 1000) if latencies else 0,
                "p95": round(_percentile(latencies, 0.95) * 1000),
                "p99": round(_percentile(latencies, 0.99) * 1000),
                "max": round(max(latencies, default=0) * 1000),
            },
            "referrals": referrals,
            "triaged": referrals
            - _count(engine, "SELECT count(*) FROM referral WHERE triaged_at IS NULL"),
            "emails_sent": _count(engine, "SELECT count(*) FROM notification WHERE status='sent'"),
            "emails_received": len(smtp.messages),
            "duplicate_emails": sum(count - 1 for count in copies.values()),
            "drain_seconds": round(drain_seconds, 1),
            "peak_rss_mb": _peak_rss_mb(stack),
        }
        figures["ok"] = (
            errors == 0
            and drained
            and len(accepted) > 0
            and referrals == len(accepted)
            and set(accepted) == stored_ids
            and figures["triaged"] == referrals
            and figures["emails_sent"] == 2 * referrals
            and figures["emails_received"] == 2 * referrals
            and figures["duplicate_emails"] == 0
        )
        if not figures["ok"]:
            figures["logs"] = stack.logs()[-3000:]
        return figures
    finally:
        engine.dispose()
        stack.stop()
        smtp.stop()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--worker-processes", type=int, default=2)
    arguments = parser.parse_args()
    figures = run(arguments.clients, arguments.seconds, arguments.worker_processes)
    print(json.dumps(figures))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
