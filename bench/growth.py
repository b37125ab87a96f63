"""Growth: the work queue's first, filtered and deep pages at 10,000 and 1,000,000 cases.

For each size: a fresh PostgreSQL database, migrations, `flask --app intake demo-data --count N`
(timed), then a signed-in coordinator loads each page through the Flask app (request, queue
service, template). Once every size is loaded, the sizes and pages take turns REPEAT times, so
load from elsewhere on the shared machine falls on both sides of the ratio alike. Prints the
median and p99 per page, the largest/smallest ratio and the EXPLAIN ANALYZE plans of the
page's queries (written to bench/results/growth-plans-<N>.txt).

    .venv/bin/python -m bench.growth                   # 10,000 and 1,000,000
    .venv/bin/python -m bench.growth --sizes 10000     # quicker
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import _common as common

PAGES = {
    "first page": "/coordinator/",
    # Two filters, both keys of ix_referral_status_queue; a full page at either size.
    "filtered page": "/coordinator/?status=under_review&priority=P3",
    # Starts 90% of the way down the open cases, or earlier if that would leave less than a
    # full page: every page compared renders the same number of rows at every size.
    "deep page": None,
}
RESULTS = common.PROJECT_ROOT / "bench" / "results"


@dataclass
class Side:
    """One loaded database and a signed-in client of an app bound to it."""

    size: int
    url: str
    instance: Path
    app: Any = None
    client: Any = None
    open_cases: int = 0
    load_seconds: float = 0.0
    pages: dict[str, str] = field(default_factory=dict)
    timings: dict[str, list[float]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


def prepare(size: int, open_share: float) -> Side:
    side = Side(
        size,
        common.create_database("intake_bench_growth"),
        Path(tempfile.mkdtemp(prefix="bench-growth-")),
    )
    try:
        _load(side, open_share)
    except BaseException:
        _release(side)
        raise
    return side


def _load(side: Side, open_share: float) -> None:
    from intake import create_app
    from intake.config import load_config
    from intake.extensions import db
    from intake.models import Referral
    from intake.models.referral import QUEUE_ORDER
    from intake.services import queue
    from intake.services.routing import CASE_KINDS
    from tests.staff.helpers import make_user, sign_in

    env = common.product_env(side.url, side.instance)
    common.migrate(env)
    side.app = app = create_app(
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
        env, "demo-data", "--count", str(side.size), "--seed", "5", "--open-share", str(open_share)
    )
    side.load_seconds = time.monotonic() - started
    print(f"  {side.size:,}: {out.strip()} (command wall time {side.load_seconds:.1f} s)")
    with app.app_context():
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            # What autovacuum would have done by now, and the load's dirty pages written
            # out, so the timings are not of the bulk load's aftermath.
            connection.execute(sa.text("VACUUM ANALYZE referral"))
            connection.execute(sa.text("CHECKPOINT"))
        side.open_cases = int(
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(Referral)
                .where(Referral.status.in_(queue.OPEN_STATUSES))
            )
            or 0
        )
        page_size = int(app.config["QUEUE_PAGE_SIZE"])
        deep = db.session.scalars(
            sa.select(Referral)
            .where(Referral.status.in_(queue.OPEN_STATUSES))
            .order_by(*QUEUE_ORDER)
            .offset(max(0, min(int(side.open_cases * 0.9), side.open_cases - page_size - 1)))
            .limit(1)
        ).one()
        side.pages = {name: str(path) for name, path in PAGES.items() if path}
        side.pages["deep page"] = f"/coordinator/?after={queue.encode_cursor(deep)}"
        db.session.remove()
    side.client = app.test_client()
    sign_in(app, side.client, account)
    side.timings = {name: [] for name in PAGES}
    side.rows = {name: _get(side.client, path) for name, path in side.pages.items()}
    for path in side.pages.values():
        for _ in range(2):
            _get(side.client, path)


def measure(sides: list[Side], repeat: int) -> None:
    # Sizes and pages take turns, so a burst of load from elsewhere hits all alike.
    for _ in range(repeat):
        for side in sides:
            for name in PAGES:
                t0 = time.perf_counter()
                _get(side.client, side.pages[name])
                side.timings[name].append((time.perf_counter() - t0) * 1000)


def write_plans(side: Side) -> None:
    plans = [
        f"### {name}: GET {side.pages[name]}\n" + _explain(side.app, side.client, side.pages[name])
        for name in PAGES
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"growth-plans-{side.size}.txt").write_text("\n".join(plans))


def _get(client: Any, path: str) -> int:
    """Load one page; returns how many cases it lists."""
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    assert b"Work queue" in response.data
    body = response.data.split(b"<tbody>", 1)[1].split(b"</tbody>", 1)[0]
    return body.count(b"<tr") - body.count(b"No cases match")


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


def _release(side: Side) -> None:
    if side.app is not None:
        from intake.extensions import db

        with side.app.app_context():
            db.session.remove()
            db.engine.dispose()
    common.drop_database(side.url)
    shutil.rmtree(side.instance, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--open-share", type=float, default=0.03)
    args = parser.parse_args()
    print(f"Growth benchmark on {common.conditions()}")
    sides: list[Side] = []
    try:
        print("Loading:")
        for size in args.sizes:
            sides.append(prepare(size, args.open_share))
        measure(sides, args.repeat)
        for side in sides:
            write_plans(side)
    finally:
        for side in sides:
            _release(side)
    for side in sides:
        print(f"{side.size:,} cases ({side.open_cases:,} open):")
        for name, values in side.timings.items():
            stats = common.summary(values)
            print(
                f"  {name:14s} median {stats['median']:7.1f} ms   p99 {stats['p99']:7.1f} ms"
                f"   (n={stats['n']}, {side.rows[name]} cases listed)"
            )
    if len(sides) >= 2:
        small, large = sides[0], sides[-1]
        print(f"Ratio {large.size:,} / {small.size:,} (medians):")
        for name in PAGES:
            large_median = common.summary(large.timings[name])["median"]
            ratio = large_median / common.summary(small.timings[name])["median"]
            verdict = "met" if ratio <= 1.5 and large_median < 100 else "MISSED"
            print(f"  {name:14s} {ratio:5.2f}x  (target <= 1.5x and < 100 ms: {verdict})")
    print(f"Plans: {RESULTS}/growth-plans-<size>.txt")


if __name__ == "__main__":
    main()
