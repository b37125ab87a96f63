"""The Procfile's web process, run as written, keeps tokens, searches and Referers out of its
access log (intake/access_log.py)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import requests

from intake.access_log import loggable_path
from intake.config import PROJECT_ROOT
from tests.services import free_port


def test_loggable_path_replaces_tokens_and_nothing_else() -> None:
    assert loggable_path("/upload/AbC-123_x") == "/upload/[redacted]"
    assert loggable_path("/coordinator/login/reset/t0ken") == "/coordinator/login/reset/[redacted]"
    assert (
        loggable_path("/coordinator/referrals/IR-2026-0001")
        == "/coordinator/referrals/IR-2026-0001"
    )
    assert loggable_path("/uploads-guide") == "/uploads-guide"


def _procfile_web_command(port: int) -> list[str]:
    line = next(
        line
        for line in (PROJECT_ROOT / "Procfile").read_text().splitlines()
        if line.startswith("web:")
    )
    command = line.split(":", 1)[1].strip()
    command = re.sub(
        r"\$\{(\w+):-([^}]*)\}", lambda m: {"PORT": str(port)}.get(m[1], m[2]), command
    )
    args = shlex.split(command)
    args[0] = str(Path(sys.executable).parent / args[0])
    return args


def test_procfile_web_access_log_has_no_tokens_searches_or_referers(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "INTAKE_ENV": "development",
            "DATABASE_URL": database_url,
            "INSTANCE_DIR": str(tmp_path),
            "UPLOAD_DIR": str(tmp_path / "uploads"),
            "SECRET_KEY": "access-log-secret",
            "RATELIMIT_ENABLED": "0",
            "WEB_CONCURRENCY": "1",
            "PYTHONPATH": str(PROJECT_ROOT),
        }
    )
    log_path = tmp_path / "web.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _procfile_web_command(port),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(base + "/", timeout=10)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        secret_referer = {"Referer": f"{base}/upload/RefererSecretToken"}
        requests.get(base + "/upload/UploadSecretToken", headers=secret_referer, timeout=10)
        requests.get(base + "/coordinator/login/reset/ResetSecretToken", timeout=10)
        requests.get(base + "/coordinator/?q=Silva+Nunez", timeout=10)
        requests.get(base + "/status?ref=IR-2026-0001", timeout=10)
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = log_path.read_text()
    assert '"GET /upload/[redacted] HTTP/1.1"' in text
    assert '"GET /coordinator/login/reset/[redacted] HTTP/1.1"' in text
    assert '"GET /coordinator/?[redacted] HTTP/1.1"' in text
    for secret in (
        "UploadSecretToken",
        "ResetSecretToken",
        "RefererSecretToken",
        "Silva",
        "IR-2026",
    ):
        assert secret not in text
