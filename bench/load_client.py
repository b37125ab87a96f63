"""A closed-loop HTTP load client: N clients POST referral forms as fast as answers come back.

Runs as its own process (so its CPU is not the server's). Each client is a thread with one
keep-alive connection; with --csrf it first GETs /refer as a browser would and reuses its
session cookie and token. Every POST is the full referral form as multipart (no files), with a
fresh submission id, child's given name and referrer email so each one is a new case. Prints
one JSON line: completed requests, errors, seconds, throughput and latency percentiles.

    .venv/bin/python -m bench.load_client --url http://127.0.0.1:8000 --clients 16 --seconds 20
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import string
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.referral_data import valid_referral  # noqa: E402

BOUNDARY = "----intakebench7MA4YWxkTrZu0gW"
# Fixed-width placeholders, swapped per request without re-encoding the body.
SUBMISSION = "00000000-0000-4000-8000-000000000000"
GIVEN = "Givenxxx"
EMAIL_LOCAL = "refxxxxxxxx"


def form_body(csrf_token: str | None) -> bytes:
    fields = valid_referral(
        patient_given_name=GIVEN, referrer_email=f"{EMAIL_LOCAL}@riverside-childrens.org"
    )
    parts = []
    items: list[tuple[str, str]] = [("submission_id", SUBMISSION)]
    if csrf_token:
        items.append(("csrf_token", csrf_token))
    for key, value in fields.items():
        for one in value if isinstance(value, list) else [value]:
            items.append((key, str(one)))
    for key, value in items:
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
        )
    parts.append(f"--{BOUNDARY}--\r\n")
    return "".join(parts).encode()


class Client(threading.Thread):
    def __init__(self, url: str, csrf: bool, stop_at: float, warm_until: float) -> None:
        super().__init__(daemon=True)
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.csrf = csrf
        self.stop_at = stop_at
        self.warm_until = warm_until
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.random = random.Random()  # noqa: S311

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def run(self) -> None:
        connection = self._connection()
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        token = None
        if self.csrf:
            connection.request("GET", "/refer")
            response = connection.getresponse()
            page = response.read().decode()
            cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
            headers["Cookie"] = cookie
            found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
            token = found.group(1) if found else None
        template = form_body(token)
        while True:
            now = time.monotonic()
            if now >= self.stop_at:
                break
            body = (
                template.replace(SUBMISSION.encode(), str(uuid.uuid4()).encode())
                .replace(GIVEN.encode(), self._letters(8).encode())
                .replace(EMAIL_LOCAL.encode(), ("r" + uuid.uuid4().hex[:10]).encode())
            )
            started = time.perf_counter()
            try:
                connection.request("POST", "/refer", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                status = type(exc).__name__  # type: ignore[assignment]
                connection.close()
                connection = self._connection()
            elapsed = time.perf_counter() - started
            if now < self.warm_until:
                continue
            if status == 303:
                self.latencies.append(elapsed * 1000)
            else:
                self.errors[str(status)] = self.errors.get(str(status), 0) + 1

    def _letters(self, count: int) -> str:
        return "".join(self.random.choice(string.ascii_lowercase) for _ in range(count)).title()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--csrf", action="store_true")
    args = parser.parse_args()
    start = time.monotonic()
    warm_until = start + args.warmup
    stop_at = warm_until + args.seconds
    clients = [Client(args.url, args.csrf, stop_at, warm_until) for _ in range(args.clients)]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    latencies = [value for client in clients for value in client.latencies]
    errors: dict[str, int] = {}
    for client in clients:
        for key, count in client.errors.items():
            errors[key] = errors.get(key, 0) + count
    print(
        json.dumps(
            {
                "clients": args.clients,
                "seconds": args.seconds,
                "completed": len(latencies),
                "errors": errors,
                "throughput": len(latencies) / args.seconds,
                "p50_ms": percentile(latencies, 0.50),
                "p99_ms": percentile(latencies, 0.99),
                "max_ms": max(latencies, default=0.0),
            }
        )
    )


if __name__ == "__main__":
    main()
