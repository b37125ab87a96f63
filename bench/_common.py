"""Shared pieces of the benchmarks: private databases, the product's gunicorn settings, stats.

Benchmarks use their own PostgreSQL databases (created here, dropped after), their own Redis
database number and queue names; they never flush or restart the shared services.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

VENV_BIN = Path(sys.executable).parent
PG_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# A Redis database number of its own: benchmark keys never mix with the tests' or the app's.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")

# The product's web settings (Procfile `web`): 2 workers x 4 threads, 60 s timeout.
GUNICORN_ARGS = ["--workers", "2", "--threads", "4", "--timeout", "60"]


def admin_engine() -> sa.Engine:
    return sa.create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")


def create_database(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = admin_engine()
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    engine = admin_engine()
    with engine.connect() as connection:
        name = make_url(url).database
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def migrate(env: dict[str, str]) -> None:
    flask(env, "db", "upgrade")
    flask(env, "seed-routing")


def flask(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "intake", *args],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def product_env(database_url: str, instance_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "INTAKE_ENV": "development",
            "MAIL_PAGE": "0",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": REDIS_URL,
            "CELERY_QUEUE": f"intake-bench-{uuid.uuid4().hex[:8]}",
            "INSTANCE_DIR": str(instance_dir),
            "UPLOAD_DIR": str(instance_dir / "uploads"),
            "SECRET_KEY": "bench-secret",
            "COORDINATOR_EMAILS": "coordinators@program.test",
            "PUBLIC_BASE_URL": "http://intake.test",
            # Limits stay on (their Redis round trip is part of the cost), raised for load runs.
            "REFERRAL_RATE_LIMIT": "1000000 per minute",
            "ACK_DAILY_CAP": "1000000",
            "PYTHONPATH": str(PROJECT_ROOT),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    env.update(extra)
    return env


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "ab")  # noqa: SIM115 (owned by the child process)
    return subprocess.Popen(
        args,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_gunicorn(app: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    process = spawn(
        [str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", *GUNICORN_ARGS, app], env, log
    )
    wait_until(lambda: _answers(f"http://127.0.0.1:{port}/"), 60, f"{app} to answer")
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def cpu_seconds_by_role(session_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the processes of ``session_pid``'s session
    (gunicorn and its workers), by every PostgreSQL process and by every Redis server on the
    machine: run the benchmark alone (another cluster's or session's work would count too)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {"web": 0.0, "postgres": 0.0, "redis": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick
        if int(fields[3]) == session_pid:  # the session id (spawn starts a new session)
            used["web"] += seconds
        elif name == "postgres":
            used["postgres"] += seconds
        elif name.startswith("redis-server"):
            used["redis"] += seconds
    return used


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
        return True
    except requests.RequestException:
        return False


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": statistics.median(values) if values else float("nan"),
        "p99": percentile(values, 0.99),
    }


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of one process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return psutil.Process(pid).memory_info().rss / 1024 / 1024


def conditions() -> str:
    load1, load5, _load15 = os.getloadavg()
    return (
        f"{platform.node()}: {psutil.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load1:.2f} (1 min) / {load5:.2f} (5 min) at the start"
    )
