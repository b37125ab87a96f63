"""Intake floor: `/refer` POST against a bare Flask endpoint, same gunicorn settings, 16 clients.

Both sides run in this one run, alternating (floor, product, floor, product ...), each against
its own fresh PostgreSQL database, under the product's gunicorn settings (bench/_common.py
GUNICORN_ARGS), loaded by bench/load_client.py in a separate process. The product runs as in
production: real CSRF (each client GETs the form first), the rate limiter on (limit raised),
the outbox relay publishing to Redis (a private queue nobody consumes; deleted after).
Prints throughput, p50 and p99 per side and the ratios against the targets.

    .venv/bin/python -m bench.intake_floor
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import redis

from bench import _common as common
from bench import floor_app
from tests.services import free_port


def run_client(url: str, clients: int, seconds: float, csrf: bool) -> dict[str, Any]:
    args = [
        sys.executable,
        "-m",
        "bench.load_client",
        "--url",
        url,
        "--clients",
        str(clients),
        "--seconds",
        str(seconds),
    ]
    if csrf:
        args.append("--csrf")
    result = subprocess.run(
        args, cwd=common.PROJECT_ROOT, check=True, capture_output=True, text=True
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def one_side(side: str, clients: int, seconds: float) -> dict[str, Any]:
    url = common.create_database(f"intake_bench_{side}")
    instance = Path(tempfile.mkdtemp(prefix=f"bench-{side}-"))
    env = common.product_env(url, instance, FLOOR_DATABASE_URL=url)
    port = free_port()
    process = None
    try:
        if side == "product":
            common.migrate(env)
            app = "intake:create_app()"
        else:
            floor_app.create_table(url)
            app = "bench.floor_app:create_app()"
        process = common.start_gunicorn(app, port, env, instance / "gunicorn.log")
        before = common.cpu_seconds_by_role(process.pid)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = run_client(f"http://127.0.0.1:{port}", clients, seconds, side == "product")
        after = common.cpu_seconds_by_role(process.pid)
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        after["client"] = children_after.ru_utime + children_after.ru_stime
        before["client"] = children_before.ru_utime + children_before.ru_stime
        # Where the machine's CPU went, per request answered (PostgreSQL and Redis serve only
        # the benchmark here; the client is the load generator's process).
        result["cpu_ms"] = {
            role: (after[role] - before[role]) * 1000 / max(result["completed"], 1)
            for role in after
        }
        result["side"] = side
        return result
    finally:
        if process is not None:
            common.stop(process)
        common.drop_database(url)
        forget_queue(env["CELERY_QUEUE"])
        shutil.rmtree(instance, ignore_errors=True)


def forget_queue(queue: str) -> None:
    """Delete this run's keys from the benchmarks' own Redis database (never a flush)."""
    client = redis.Redis.from_url(common.REDIS_URL)
    for key in client.scan_iter(match=f"*{queue}*"):
        client.delete(key)
    for key in client.scan_iter(match="LIMITS*"):
        client.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"Intake floor benchmark on {common.conditions()}")
    results: dict[str, list[dict[str, Any]]] = {"floor": [], "product": []}
    for round_number in range(args.rounds):
        for side in ("floor", "product"):
            result = one_side(side, args.clients, args.seconds)
            results[side].append(result)
            print(
                f"  round {round_number + 1} {side:8s} {result['throughput']:7.1f} req/s  "
                f"p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms  "
                f"errors {result['errors'] or 0}"
            )
            print(
                "    CPU per request: "
                + ", ".join(f"{role} {ms:.1f} ms" for role, ms in result["cpu_ms"].items())
            )
    floor = _combined(results["floor"])
    product = _combined(results["product"])
    throughput_ratio = product["throughput"] / floor["throughput"]
    p99_ratio = product["p99_ms"] / floor["p99_ms"]
    print(f"Over {args.rounds} rounds of {args.seconds:.0f} s at {args.clients} clients:")
    for name, side in (("floor", floor), ("product", product)):
        print(
            f"  {name:8s} {side['throughput']:7.1f} req/s  p50 {side['p50_ms']:6.1f} ms  "
            f"p99 {side['p99_ms']:6.1f} ms"
        )
    print(
        f"  throughput ratio product/floor {throughput_ratio:.2f} (target >= 0.5: "
        f"{'met' if throughput_ratio >= 0.5 else 'MISSED'}); p99 ratio {p99_ratio:.2f} "
        f"(target <= 3: {'met' if p99_ratio <= 3 else 'MISSED'})"
    )


def _combined(rounds: list[dict[str, Any]]) -> dict[str, float]:
    """Median across rounds of each figure (the machine is shared; rounds vary)."""

    def median(key: str) -> float:
        values = sorted(float(r[key]) for r in rounds)
        middle = len(values) // 2
        return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2

    return {key: median(key) for key in ("throughput", "p50_ms", "p99_ms")}


if __name__ == "__main__":
    main()
