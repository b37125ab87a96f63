"""Queue floor: commit → coordinator email accepted by SMTP, against a bare Celery round trip.

Floor: a no-op task (bench/floor_celery.py) sent at a steady RATE per second to a prefork
worker (concurrency 2) on the same Redis; time from send until its result is back.

Product: gunicorn (product settings), one Celery worker (concurrency 2, as the Procfile), one
beat, an aiosmtpd server in this process. Referrals are POSTed through `/refer` (real CSRF) at
a steady RATE per second for SECONDS; each coordinator email's latency is the time the SMTP
server accepted it minus the referral row's created_at (set at INSERT, a few ms before the
commit, so the figure is if anything slightly high). After the run, the peak resident memory
(VmHWM) of every web worker and Celery process is printed.

    .venv/bin/python -m bench.queue_floor
"""

from __future__ import annotations

import argparse
import http.client
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import psutil
import redis
import sqlalchemy as sa

from bench import _common as common
from bench.load_client import BOUNDARY, EMAIL_LOCAL, GIVEN, SUBMISSION, form_body
from tests.services import free_port
from tests.stack import CollectingHandler, SmtpServer

COORDINATORS = "coordinators@program.test"


class TimingHandler(CollectingHandler):
    """Records when the server accepted each message, by Message-ID."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted: dict[str, float] = {}

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        at = time.time()
        # Headers only: a full parse costs about a millisecond per message, CPU the measured
        # workers share on this machine.
        message = BytesHeaderParser().parsebytes(envelope.content)
        with self.lock:
            self.accepted.setdefault(str(message["Message-ID"]).strip(), at)
        return "250 Message accepted"


def paced(rate: float, seconds: float, action: Any, workers: int = 16) -> list[Any]:
    """Start `action` every 1/rate seconds (open loop: a slow answer does not delay the next)."""
    futures = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        start = time.monotonic()
        for index in range(int(rate * seconds)):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(action))
        return [future.result() for future in futures]


def floor_side(rate: float, seconds: float) -> list[float]:
    queue = f"intake-bench-floor-{uuid.uuid4().hex[:8]}"
    instance = Path(tempfile.mkdtemp(prefix="bench-qfloor-"))
    env = common.product_env("sqlite://", instance, FLOOR_QUEUE=queue)
    worker = common.spawn(
        [
            str(common.VENV_BIN / "celery"), "-A", "bench.floor_celery", "worker", "-P",
            "prefork", "--concurrency", "2", "-Q", queue, "--without-gossip", "--without-mingle",
            "--loglevel", "WARNING",
        ],
        env,
        instance / "floor-worker.log",
    )
    import os

    os.environ["FLOOR_QUEUE"] = queue
    from bench.floor_celery import app, noop

    app.conf.task_default_queue = queue
    try:
        noop.apply_async().get(timeout=60)  # the worker is up

        def round_trip() -> float:
            started = time.perf_counter()
            noop.apply_async().get(timeout=30)
            return (time.perf_counter() - started) * 1000

        for _ in range(20):
            round_trip()
        return list(paced(rate, seconds, round_trip))
    finally:
        common.stop(worker)
        _forget(queue)
        shutil.rmtree(instance, ignore_errors=True)


def product_side(rate: float, seconds: float) -> tuple[list[float], dict[str, float], int]:
    url = common.create_database("intake_bench_queue")
    instance = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    smtp = SmtpServer()
    handler = TimingHandler()
    smtp.handler = handler
    smtp.controller.handler = handler
    smtp.start()
    env = common.product_env(
        url,
        instance,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_STARTTLS="0",
        OUTBOX_SWEEP_SECONDS="1",
        CELERY_BEAT_SCHEDULE=str(instance / "beat-schedule"),
    )
    port = free_port()
    processes = []
    try:
        common.migrate(env)
        processes.append(
            common.start_gunicorn("intake:create_app()", port, env, instance / "web.log")
        )
        worker_args = [
            str(common.VENV_BIN / "celery"), "-A", "workers.celery", "worker", "-P", "prefork",
            "--concurrency", "2", "-Q", env["CELERY_QUEUE"], "--loglevel", "INFO",
            "--without-gossip", "--without-mingle",
        ]
        processes.append(common.spawn(worker_args, env, instance / "worker.log"))
        processes.append(
            common.spawn(
                [str(common.VENV_BIN / "celery"), "-A", "workers.celery", "beat", "--loglevel",
                 "WARNING"],
                env,
                instance / "beat.log",
            )
        )
        sessions = threading.local()

        def connect() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request("GET", "/refer")
            response = connection.getresponse()
            page = response.read().decode()
            found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
            assert found, "the form has a CSRF token"
            sessions.connection = connection
            sessions.headers = {
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                "Cookie": response.getheader("Set-Cookie", "").split(";", 1)[0],
            }
            sessions.template = form_body(found.group(1))

        def submit() -> int:
            # One kept-alive connection per sending thread, as bench/load_client.py: the
            # sender's own CPU comes out of the same two cores as the workers'.
            if not hasattr(sessions, "connection"):
                connect()
            body = (
                sessions.template.replace(SUBMISSION.encode(), str(uuid.uuid4()).encode())
                .replace(GIVEN.encode(), uuid.uuid4().hex[:8].translate(_LETTERS).title().encode())
                .replace(EMAIL_LOCAL.encode(), ("r" + uuid.uuid4().hex[:10]).encode())
            )
            for attempt in range(2):
                try:
                    sessions.connection.request(
                        "POST", "/refer", body=body, headers=sessions.headers
                    )
                    response = sessions.connection.getresponse()
                    response.read()
                    return response.status
                except (OSError, http.client.HTTPException):
                    # A kept-alive connection the server closed while this thread was idle
                    # (gunicorn's keepalive is 2 s): a browser sends again on a new one, and
                    # the submission id makes that safe. A second failure counts.
                    sessions.connection.close()
                    connect()
                    if attempt:
                        return 0
            return 0

        # Warm up: the worker and the first connections, then wait until that mail is out.
        paced(5, 2, submit)
        common.wait_until(lambda: _coordinator_mails(url, handler) >= 10, 120, "warm-up mail")
        handler.accepted.clear()
        warm_ids = _referral_ids(url)
        statuses = paced(rate, seconds, submit)
        expected = int(rate * seconds)
        bad = sum(1 for status in statuses if status != 303)
        if bad:  # which answers (0: no answer after a second connection)
            print(f"  answers other than 303: {Counter(s for s in statuses if s != 303)}")
        common.wait_until(
            lambda: _coordinator_mails(url, handler, exclude=warm_ids) >= expected - bad,
            300,
            "every coordinator email",
            interval=1,
        )
        latencies = _latencies(url, handler, warm_ids)
        memory = _peak_memory(processes)
        return latencies, memory, bad
    finally:
        for process in processes:
            common.stop(process)
        smtp.stop()
        common.drop_database(url)
        _forget(env["CELERY_QUEUE"])
        shutil.rmtree(instance, ignore_errors=True)


_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url)


def _referral_ids(url: str) -> set[int]:
    engine = _engine(url)
    with engine.connect() as connection:
        ids = {row[0] for row in connection.execute(sa.text("SELECT id FROM referral"))}
    engine.dispose()
    return ids


def _coordinator_rows(url: str) -> list[tuple[int, str, datetime]]:
    engine = _engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT r.id, n.message_id, r.created_at FROM notification n "
                "JOIN referral r ON r.id = n.referral_id WHERE n.kind = 'coordinator_new_case'"
            )
        ).all()
    engine.dispose()
    return [(row[0], row[1], row[2]) for row in rows]


def _coordinator_mails(url: str, handler: TimingHandler, exclude: set[int] | None = None) -> int:
    with handler.lock:
        accepted = set(handler.accepted)
    return sum(
        1
        for referral_id, message_id, _created in _coordinator_rows(url)
        if message_id in accepted and referral_id not in (exclude or set())
    )


def _latencies(url: str, handler: TimingHandler, exclude: set[int]) -> list[float]:
    with handler.lock:
        accepted = dict(handler.accepted)
    return [
        (accepted[message_id] - created.timestamp()) * 1000
        for referral_id, message_id, created in _coordinator_rows(url)
        if referral_id not in exclude and message_id in accepted
    ]


def _peak_memory(processes: list[Any]) -> dict[str, float]:
    """Largest VmHWM among each role's processes (gunicorn workers, Celery pool and main)."""
    web, worker, _beat = (psutil.Process(p.pid) for p in processes)
    web_workers = web.children()
    celery_all = [worker, *worker.children()]
    return {
        "web worker (max of 2)": max(common.peak_rss_mb(p.pid) for p in web_workers),
        "celery pool process (max of 2)": max(
            common.peak_rss_mb(p.pid) for p in worker.children()
        ),
        "celery main process": common.peak_rss_mb(worker.pid),
        "processes measured": float(len(web_workers) + len(celery_all)),
    }


def _forget(queue: str) -> None:
    client = redis.Redis.from_url(common.REDIS_URL)
    for pattern in (f"*{queue}*", "celery-task-meta-*", "LIMITS*"):
        for key in client.scan_iter(match=pattern):
            client.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    print(f"Queue floor benchmark on {common.conditions()}")
    floor = common.summary(floor_side(args.rate, args.seconds))
    print(
        f"  floor  (no-op task round trip)  median {floor['median']:7.1f} ms  "
        f"p99 {floor['p99']:7.1f} ms  n={floor['n']}"
    )
    latencies, memory, bad = product_side(args.rate, args.seconds)
    product = common.summary(latencies)
    print(
        f"  product (commit -> coordinator email accepted)  median {product['median']:7.1f} ms"
        f"  p99 {product['p99']:7.1f} ms  n={product['n']}  failed submissions {bad}"
    )
    print(
        f"  at {args.rate:.0f} referrals/s for {args.seconds:.0f} s: median "
        f"{'met' if product['median'] < 1000 else 'MISSED'} (< 1 s), p99 "
        f"{'met' if product['p99'] < 3000 else 'MISSED'} (< 3 s); ratio of medians "
        f"product/floor {product['median'] / floor['median']:.1f}"
    )
    print("Peak resident memory (VmHWM) after the run:")
    for name, value in memory.items():
        if name == "processes measured":
            continue
        print(f"  {name:32s} {value:7.1f} MiB")


if __name__ == "__main__":
    main()
