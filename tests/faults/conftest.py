"""Private services for fault tests: PostgreSQL, Redis, SMTP and Celery processes of their own.

Everything here runs on free loopback ports in temporary folders, so a test can stop, kill,
restart or flush it without touching the machine's shared PostgreSQL or Redis. One PostgreSQL
cluster per test session (a database per test, cloned from a migrated template); one Redis per
test. Every fixture stops what it started.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests import services
from tests.conftest import migrate_to_head
from tests.stack import CollectingHandler, SmtpServer, Stack, wait_for

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))

# The sizes: 200 submissions with Redis down (F1), a batch of 500 for the kills (F3/F4);
# the other scenarios use BATCH. Each can be lowered from the environment for a quick local run.
F1_BATCH = int(os.environ.get("FAULT_F1_BATCH", "200"))
KILL_BATCH = int(os.environ.get("FAULT_KILL_BATCH", "500"))
BATCH = int(os.environ.get("FAULT_BATCH", "40"))


def _private_services_available() -> bool:
    return (
        (PG_BIN / "initdb").exists()
        and shutil.which("redis-server") is not None
        and shutil.which("runuser") is not None
        and os.geteuid() == 0
    )


class PrivatePostgres:
    """A throwaway cluster owned by the postgres user (initdb refuses to run as root)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="intake-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.port = services.free_port()
        self.log = self.dir / "postgres.log"

    def _as_postgres(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=check,
            capture_output=True,
            cwd=self.dir,
            timeout=60,
        )

    def init(self) -> PrivatePostgres:
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.start()
        return self

    def start(self) -> None:
        options = f"-k {self.dir} -p {self.port} -c fsync=off -c listen_addresses=127.0.0.1"
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", check=False
        )

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop (terminating every session, like a crash for clients) and start again."""
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, statement: str) -> None:
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(sa.text(statement))
        finally:
            engine.dispose()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """`redis-server` without persistence: a restart comes back empty, like a lost broker."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = services.free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.ping, 10, "private Redis to answer", interval=0.05)
        return self

    def ping(self) -> bool:
        import redis

        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def flushall(self) -> None:
        self.client().flushall()


class RecordingHandler(CollectingHandler):
    """Also keeps the time of every refused recipient, to measure retry gaps."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[tuple[float, str]] = []
        self.data_delay = 0.0

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refuse:
            with self.lock:
                self.refused.append((time.monotonic(), address))
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        return await super().handle_DATA(server, session, envelope)


class RecordingSmtp(SmtpServer):
    def __init__(self) -> None:
        super().__init__()
        self.handler = RecordingHandler()
        self.controller.handler = self.handler


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    services.require(
        _private_services_available(),
        "Private PostgreSQL/Redis (root, runuser, initdb and redis-server)",
    )
    cluster = PrivatePostgres().init()
    try:
        cluster.admin("CREATE DATABASE intake_template")
        folder = Path(tempfile.mkdtemp(prefix="intake-migrate-"))
        migrate_to_head(cluster.url("intake_template"), folder)
        # Routing rows come from the same settings in every fault stack: seed them once here.
        Stack(cluster.url("intake_template"), "", folder, 0, extra_env=FAULT_ENV).flask(
            "seed-routing"
        )
        shutil.rmtree(folder, ignore_errors=True)
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def smtp() -> Iterator[RecordingSmtp]:
    server = RecordingSmtp()
    server.start()
    yield server
    server.stop()


# Settings every fault stack uses: quick redelivery and retries, small budgets (all from env).
FAULT_ENV = {
    "CELERY_VISIBILITY_TIMEOUT": "15",
    # Look for expired unacknowledged messages every second (kombu: every 100 s by default).
    "CELERY_RESTORE_INTERVAL": "1",
    "CELERY_RESTORE_THROTTLE": "1",
    "STAFF_SWEEP_SECONDS": "1",
    "PROGRAM_LEAD_EMAILS": "lead@program.test",
    "ONCALL_EMAILS": "oncall@program.test",
    "RETRY_BACKOFF_MAX": "4",
    "NOTIFY_MAX_ATTEMPTS": "8",
    "TASK_MAX_ATTEMPTS": "4",
    "CLAIM_SECONDS": "10",
    "RECONCILE_AFTER_SECONDS": "5",
    "OUTBOX_SWEEP_SECONDS": "1",
    "SMTP_TIMEOUT": "5",
    # A starved machine (CI's 2 cores are shared) must not make gunicorn kill a busy worker.
    "GUNICORN_CMD_ARGS": "--timeout 120",
    # Every fault referral comes from one referrer address: lift the per-day acknowledgement cap.
    "ACK_DAILY_CAP": "1000000",
}


@pytest.fixture
def fault_stack(
    private_pg: PrivatePostgres,
    private_redis: PrivateRedis,
    smtp: RecordingSmtp,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Stack]:
    name = f"intake_f_{os.urandom(5).hex()}"
    private_pg.admin(f'CREATE DATABASE "{name}" TEMPLATE intake_template')
    marker = request.node.get_closest_marker("fault_env")
    extra = {**FAULT_ENV, **(marker.kwargs if marker else {})}
    stack = Stack(private_pg.url(name), private_redis.url, tmp_path, smtp.port, extra_env=extra)
    yield stack
    stack.stop()
    private_pg.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fault_env(**env): extra environment for the fault stack's processes"
    )
    config.addinivalue_line(
        "markers",
        "reliability: fault-injection and load tests (minutes); `make reliability` and CI run "
        "them, `make test` skips them",
    )
