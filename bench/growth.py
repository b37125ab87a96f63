"""Growth: the work queue's first, filtered and deep pages at 10,000 and 1,000,000 cases.

For each size: a fresh PostgreSQL database, migrations, `flask --app intake demo-data --count N`
(timed), then a signed-in coordinator loads each page through the Flask app (request, queue
service, template) REPEAT times. Prints the median and p99 per page, the 1M/10k ratio and the
EXPLAIN ANALYZE plans of the page's queries (written to bench/results/growth-plans-<N>.txt).

    .venv/bin/python -m bench.growth                   # 10,000 and 1,000,000
    .venv/bin/python -m bench.growth --sizes 10000     # quicker
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import _common as common

PAGES = {
    "first page": "/coordinator/",
    "filtered page": "/coordinator/?status=under_review&priority=P2",
    "deep page": None,  # the page that starts 90% of the way down the open cases
}
RESULTS = common.PROJECT_ROOT / "bench" / "results"


def measure(size: int, repeat: int, open_share: float) -> dict[str, Any]:
    from intake import create_app
    from intake.config import load_config
    from intake.extensions import db
    from intake.models import Referral
    from intake.services import queue
    from intake.services.routing import CASE_KINDS
    from tests.staff.helpers import make_user, sign_in

    url = common.create_database("intake_bench_growth")
    instance = Path(tempfile.mkdtemp(prefix="bench-growth-"))
    env = common.product_env(url, instance)
    try:
        common.migrate(env)
        app = create_app(
            {
                **load_config(env),
                "RELAY_IN_PROCESS": False,
                "RATELIMIT_ENABLED": False,
                # Only the sign-in form posts here; the timed requests are GETs.
                "WTF_CSRF_ENABLED": False,
            }
        )
        account = make_user(app, "coordinator@bench.test", "coordinator", queues=list(CASE_KINDS))
        make_user(app, "colleague@bench.test", "coordinator", queues=list(CASE_KINDS))
        started = time.monotonic()
        out = common.flask(
            env, "demo-data", "--count", str(size), "--seed", "5", "--open-share", str(open_share)
        )
        load_seconds = time.monotonic() - started
        print(f"  {out.strip()} (command wall time {load_seconds:.1f} s)")
        with app.app_context():
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                # What autovacuum would have done by now, and the load's dirty pages written
                # out, so the timings are not of the bulk load's aftermath.
                connection.execute(sa.text("VACUUM ANALYZE referral"))
                connection.execute(sa.text("CHECKPOINT"))
            open_cases = db.session.scalar(
                sa.select(sa.func.count()).select_from(Referral).where(
                    Referral.status.in_(queue.OPEN_STATUSES)
                )
            )
            deep = db.session.scalars(
                sa.select(Referral)
                .where(Referral.status.in_(queue.OPEN_STATUSES))
                .order_by(
                    sa.func.coalesce(Referral.triage_priority, "P9"),
                    Referral.review_due_at.is_(None),
                    Referral.review_due_at,
                    Referral.id,
                )
                .offset(int((open_cases or 1) * 0.9))
                .limit(1)
            ).one()
            pages = dict(PAGES)
            pages["deep page"] = f"/coordinator/?after={queue.encode_cursor(deep)}"
            db.session.remove()
        client = app.test_client()
        sign_in(app, client, account)
        timings: dict[str, list[float]] = {name: [] for name in pages}
        for path in pages.values():
            assert path is not None
            for _ in range(3):
                _get(client, path)
        # Pages take turns, so a burst of load from elsewhere on the machine hits all alike.
        for _ in range(repeat):
            for name, path in pages.items():
                assert path is not None
                t0 = time.perf_counter()
                _get(client, path)
                timings[name].append((time.perf_counter() - t0) * 1000)
        plans = [
            f"### {name}: GET {path}\n" + _explain(app, client, str(path))
            for name, path in pages.items()
        ]
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"growth-plans-{size}.txt").write_text("\n".join(plans))
        return {
            "size": size,
            "open": open_cases,
            "load_seconds": load_seconds,
            "pages": {name: common.summary(values) for name, values in timings.items()},
        }
    finally:
        common.drop_database(url)


def _get(client: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    assert b"Work queue" in response.data


def _explain(app: Any, client: Any, path: str) -> str:
    """EXPLAIN ANALYZE every query on `referral` that one request of the page runs."""
    from intake.extensions import db

    captured: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if "FROM referral" in statement and not statement.lstrip().startswith("EXPLAIN"):
            captured.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        _get(client, path)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    out = []
    with engine.connect() as connection:
        for statement, parameters in captured:
            rows = connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters
            ).all()
            out.append(statement.strip() + "\n" + "\n".join(row[0] for row in rows) + "\n")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--open-share", type=float, default=0.03)
    args = parser.parse_args()
    print(f"Growth benchmark on {common.conditions()}")
    results = []
    for size in args.sizes:
        print(f"{size:,} cases:")
        result = measure(size, args.repeat, args.open_share)
        results.append(result)
        for name, stats in result["pages"].items():
            print(
                f"  {name:14s} median {stats['median']:7.1f} ms   p99 {stats['p99']:7.1f} ms"
                f"   (n={stats['n']}, {result['open']:,} open cases)"
            )
    if len(results) >= 2:
        small, large = results[0], results[-1]
        print(f"Ratio {large['size']:,} / {small['size']:,} (medians):")
        for name in PAGES:
            ratio = large["pages"][name]["median"] / small["pages"][name]["median"]
            verdict = "met" if ratio <= 1.5 and large["pages"][name]["median"] < 100 else "MISSED"
            print(f"  {name:14s} {ratio:5.2f}x  (target <= 1.5x and < 100 ms: {verdict})")
    print(f"Plans: {RESULTS}/growth-plans-<size>.txt")


if __name__ == "__main__":
    main()
