"""Real processes for end-to-end tests: gunicorn, Celery workers and an SMTP server.

Each test stack gets its own queue name, upload folder and SMTP port, so runs never touch
each other or the machine's shared services beyond their own keys.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import requests
from aiosmtpd.controller import Controller

from intake.config import PROJECT_ROOT
from tests.services import free_port

VENV_BIN = Path(sys.executable).parent


class CollectingHandler:
    """An SMTP server's handler that keeps every accepted message in memory."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.refuse = False

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:  # noqa: N802,E501
        if self.refuse:
            return "421 Service not available, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse:
            return "421 Service not available, try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted"


class SmtpServer:
    def __init__(self) -> None:
        self.handler = CollectingHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)


@dataclass
class Stack:
    """Environment shared by the web and worker processes of one test."""

    database_url: str
    broker_url: str
    instance_dir: Path
    smtp_port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    web_port: int = 0
    queue: str = field(default_factory=lambda: f"intake-test-{uuid.uuid4().hex[:8]}")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "INTAKE_ENV": "development",
                "MAIL_PAGE": "0",
                "DATABASE_URL": self.database_url,
                "CELERY_BROKER_URL": self.broker_url,
                "CELERY_QUEUE": self.queue,
                "INSTANCE_DIR": str(self.instance_dir),
                "UPLOAD_DIR": str(self.instance_dir / "uploads"),
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(self.smtp_port),
                "SMTP_STARTTLS": "0",
                "COORDINATOR_EMAILS": "coordinators@program.test",
                "PUBLIC_BASE_URL": "http://intake.test",
                "SECRET_KEY": "stack-secret",
                "RATELIMIT_ENABLED": "0",
                "OUTBOX_SWEEP_SECONDS": "1",
                "RECONCILE_AFTER_SECONDS": "5",
                "RETRY_BACKOFF_MAX": "4",
                "PYTHONPATH": str(PROJECT_ROOT),
                "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        env.update(self.extra_env)
        return env

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = open(self.instance_dir / f"{name}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(
            args,
            cwd=PROJECT_ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def flask(self, *args: str) -> None:
        subprocess.run(
            [str(VENV_BIN / "flask"), "--app", "intake", *args],
            cwd=PROJECT_ROOT,
            env=self.env(),
            check=True,
            capture_output=True,
        )

    def start_web(self, workers: int = 1) -> str:
        self.web_port = free_port()
        self._spawn(
            [
                str(VENV_BIN / "gunicorn"),
                "--bind",
                f"127.0.0.1:{self.web_port}",
                "--workers",
                str(workers),
                "--threads",
                "4",
                "intake:create_app()",
            ],
            "web",
        )
        base = f"http://127.0.0.1:{self.web_port}"
        wait_for(lambda: _responds(base + "/healthz"), 30, "gunicorn to answer")
        return base

    def start_worker(self, concurrency: int = 2, name: str = "worker") -> subprocess.Popen[bytes]:
        return self._spawn(
            [
                str(VENV_BIN / "celery"),
                "-A",
                "workers.celery",
                "worker",
                "-P",
                "prefork",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
                "-Q",
                self.queue,
                "-n",
                f"{name}-{uuid.uuid4().hex[:6]}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            name,
        )

    def start_beat(self) -> subprocess.Popen[bytes]:
        return self._spawn(
            [
                str(VENV_BIN / "celery"),
                "-A",
                "workers.celery",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.instance_dir / f"beat-{uuid.uuid4().hex[:6]}"),
            ],
            "beat",
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.instance_dir.glob("*.log"))
        )


def _responds(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
        return True
    except requests.RequestException:
        return False


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
