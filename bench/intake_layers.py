"""Where a `/refer` POST's CPU goes, next to the whole floor request, in one process.

The intake-floor target (issue 5: `/refer` at least half the floor's throughput) asks the
product's request to cost at most about twice the floor's. This splits the product's request
into layers and prices each in this process's CPU time (medians of three passes; the
database's own CPU is not in them, so neighbours on the machine move them little):

* floor: the whole bare request (bench/floor_app.py, called as a WSGI app as gunicorn calls it);
* multipart: parsing the same body into ``request.form`` (the floor does this too);
* form: binding and validating the fields with the product's ``ReferralForm`` (Flask-WTF,
  which the stack fixes), parsing excluded;
* store: ``submit_referral`` alone (the transaction: idempotency, the per-child lock and
  duplicate check, the case, its timeline, acknowledgement and outbox rows);
* product: the whole `/refer` POST (real CSRF, the rate limiter on Redis, relay off);
* the rest: product minus multipart, form and store (CSRF, limiter, session, headers, Flask);
* relay: one pass of the web process's outbox relay publishing one submission's two events
  to Redis (claim, two publishes, mark), which under gunicorn follows every commit.

    .venv/bin/python -m bench.intake_layers
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import _common as common
from bench import floor_app
from bench.intake_floor import forget_queue
from bench.profile_hot_paths import RESULTS, csrf_from, refer_form


def cpu_ms(action: Callable[[], Any], calls: int) -> float:
    """Median over three passes of this process's CPU milliseconds per call."""
    for _ in range(10):
        action()
    passes = []
    for _ in range(3):
        started = time.process_time()
        for _ in range(calls):
            action()
        passes.append((time.process_time() - started) * 1000 / calls)
    return sorted(passes)[1]


def wsgi_call(app: Any, body: bytes, content_type: str, cookie: str = "") -> Callable[[], str]:
    """A POST /refer straight into the WSGI app (as gunicorn calls it), a new submission id
    each time; returns the status line."""
    from werkzeug.test import EnvironBuilder

    base = EnvironBuilder(path="/refer", method="POST", data=b"", content_type=content_type)
    environ = base.get_environ()
    environ["CONTENT_LENGTH"] = str(len(body))
    environ["CONTENT_TYPE"] = content_type
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    statuses: list[str] = []

    def start_response(status: str, _headers: Any, _exc_info: Any = None) -> None:
        statuses.append(status)

    def call() -> str:
        fresh = body.replace(PLACEHOLDER.encode(), str(uuid.uuid4()).encode())
        for chunk in app(dict(environ, **{"wsgi.input": io.BytesIO(fresh)}), start_response):
            del chunk
        return statuses.pop()

    return call


PLACEHOLDER = "00000000-0000-4000-8000-000000000000"


def profile(name: str, action: Callable[[], Any], calls: int) -> None:
    """Write ``action``'s pyinstrument call tree to bench/results/layers-<name>.txt."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002)
    with profiler:
        for _ in range(calls):
            action()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"layers-{name}.txt").write_text(profiler.output_text(unicode=False, color=False))


def run(calls: int, trees: bool = False) -> dict[str, float]:
    from werkzeug.test import EnvironBuilder

    from intake import create_app
    from intake.config import load_config
    from intake.extensions import db
    from intake.forms.referral import ReferralForm
    from intake.services import outbox
    from intake.services.referrals import Submission, submit_referral

    product_url = common.create_database("intake_bench_layers")
    floor_url = common.create_database("intake_bench_layers_floor")
    instance = Path(tempfile.mkdtemp(prefix="bench-layers-"))
    env = common.product_env(product_url, instance)
    try:
        common.migrate(env)
        floor_app.create_table(floor_url)
        os.environ["FLOOR_DATABASE_URL"] = floor_url
        app = create_app({**load_config(env), "RELAY_IN_PROCESS": False})
        client = app.test_client()
        token = csrf_from(client.get("/refer").get_data(as_text=True))
        session_cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
        assert session_cookie is not None
        cookie = f"{session_cookie.key}={session_cookie.value}"

        # One multipart body for every layer (the answers of tests/referral_data.py).
        form = {**refer_form(token), "submission_id": PLACEHOLDER}
        built = EnvironBuilder(
            path="/refer", method="POST", data=form, content_type="multipart/form-data"
        )
        request = built.get_request()
        body, content_type = request.get_data(), str(request.content_type)

        floor_post = wsgi_call(floor_app.create_app(), body, content_type)
        product_post = wsgi_call(app, body, content_type, cookie)
        first = (floor_post(), product_post())
        assert first == ("303 SEE OTHER", "303 SEE OTHER"), first

        def context() -> Any:
            fresh = body.replace(PLACEHOLDER.encode(), str(uuid.uuid4()).encode())
            return app.test_request_context(
                "/refer", method="POST", data=fresh, content_type=content_type
            )

        def parse_only() -> None:
            with context() as ctx:
                ctx.request.form  # noqa: B018 (parsing is the point)

        def parse_and_form() -> None:
            with context() as ctx:
                ctx.request.form  # noqa: B018
                form = ReferralForm(meta={"csrf": False})
                assert form.validate(), form.errors

        with context():
            bound = ReferralForm(meta={"csrf": False})
            assert bound.validate()
            answers = dict(bound.answers())
        children = itertools.count()

        def store() -> None:
            # A new child each time, as most real submissions are (no link to write).
            child = {**answers, "patient_given_name": f"Child{next(children)}"}
            with app.app_context():
                submit_referral(Submission(submission_id=str(uuid.uuid4()), answers=child))
                db.session.remove()

        def two_events() -> None:
            with app.app_context():
                outbox.add_event(db.session, "referrals.triage", 1)
                outbox.add_event(db.session, "notify.send", 1)
                db.session.commit()
                db.session.remove()

        def drain() -> None:
            """Publish what the other layers left (nothing consumes this run's queue)."""
            with app.app_context():
                while outbox.relay():
                    pass
                db.session.remove()

        def two_events_relayed() -> None:
            two_events()
            with app.app_context():
                assert outbox.relay() == 2
                db.session.remove()

        if trees:
            for name, action in (
                ("form", parse_and_form),
                ("store", store),
                ("product", product_post),
            ):
                profile(name, action, calls)
        figures = {
            "floor": cpu_ms(floor_post, calls),
            "multipart": cpu_ms(parse_only, calls),
            "parse+form": cpu_ms(parse_and_form, calls),
            "store": cpu_ms(store, calls),
            "product": cpu_ms(product_post, calls),
        }
        drain()
        figures["relay"] = cpu_ms(two_events_relayed, calls) - cpu_ms(two_events, calls)
        figures["form"] = figures["parse+form"] - figures["multipart"]
        figures["rest"] = figures["product"] - figures["parse+form"] - figures["store"]
        return figures
    finally:
        common.drop_database(product_url)
        common.drop_database(floor_url)
        forget_queue(env["CELERY_QUEUE"])
        shutil.rmtree(instance, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--trees", action="store_true", help="write pyinstrument call trees")
    args = parser.parse_args()
    print(f"# {common.conditions()}")
    figures = run(args.calls, args.trees)
    floor = figures["floor"]
    for name in ("floor", "multipart", "form", "store", "rest", "product", "relay"):
        share = figures[name] / floor
        print(f"{name:>10}: {figures[name]:6.2f} ms CPU per request  ({share:4.1f}x floor)")
    parsing_and_form = figures["multipart"] + figures["form"]
    print(
        f"product / floor: {figures['product'] / floor:.1f}x (relay not included). Parsing the "
        f"body and the Flask-WTF form alone: {parsing_and_form / floor:.1f}x the whole floor "
        "request; half the floor's throughput allows the whole product about 2x."
    )


if __name__ == "__main__":
    main()
