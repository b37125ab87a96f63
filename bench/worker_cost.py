"""The worker side of one referral, in one process: CPU of the triage task's body (with the
relay of its follow-up events) and of delivering the referral's two emails to an SMTP server.

Together with bench/intake_layers.py (the web side) this says where a referral's CPU goes
on a machine, which is what decides the rate bench/queue_floor.py can sustain. Referrals are
stored through the service first (relay off); the tasks' bodies are called directly, so
Celery's own per-message cost is not in the figures. Prints CPU milliseconds per referral of
the calling thread (the SMTP server runs in another thread of this process; its CPU is not
counted).

    .venv/bin/python -m bench.worker_cost
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from aiosmtpd.controller import Controller

from bench import _common as common
from bench.intake_floor import forget_queue
from tests.services import free_port

_LETTERS = str.maketrans("0123456789", "ghijklmnop")


class _AcceptAll:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802 (aiosmtpd's name)
        return "250 OK"


def run(referrals: int) -> tuple[float, float]:
    from intake import create_app
    from intake.config import load_config
    from intake.extensions import db
    from intake.models import Notification
    from intake.services import notifications, outbox
    from intake.services import referrals as cases
    from tests.referral_data import valid_referral

    port = free_port()
    smtp = Controller(_AcceptAll(), hostname="127.0.0.1", port=port)
    smtp.start()
    url = common.create_database("intake_bench_worker")
    instance = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    env = common.product_env(url, instance, SMTP_HOST="127.0.0.1", SMTP_PORT=str(port))
    try:
        common.migrate(env)
        app = create_app({**load_config(env), "RELAY_IN_PROCESS": False})
        ids = []
        with app.app_context():
            for _ in range(referrals + 10):
                name = uuid.uuid4().hex[:8].translate(_LETTERS).title()  # a new child each
                referral, _created = cases.submit_referral(
                    cases.Submission(
                        submission_id=str(uuid.uuid4()),
                        answers=valid_referral(patient_given_name=name),
                    )
                )
                ids.append(referral.id)
            db.session.remove()

        def triage(referral_id: int) -> None:  # workers/tasks.py triage_referral's body
            with app.app_context():
                db.session.rollback()
                cases.run_triage(referral_id)
                outbox.relay()
                db.session.remove()

        def emails(referral_id: int) -> None:  # notify.send for each of the case's emails
            with app.app_context():
                pending = list(
                    db.session.scalars(
                        sa.select(Notification.id).where(Notification.referral_id == referral_id)
                    )
                )
                db.session.remove()
            for notification_id in pending:
                with app.app_context():
                    assert notifications.deliver(str(notification_id)) == "sent"
                    db.session.remove()

        for referral_id in ids[:10]:  # warm-up
            triage(referral_id)
            emails(referral_id)
        measured = ids[10:]
        started = time.thread_time()
        for referral_id in measured:
            triage(referral_id)
        triage_ms = (time.thread_time() - started) * 1000 / len(measured)
        started = time.thread_time()
        for referral_id in measured:
            emails(referral_id)
        emails_ms = (time.thread_time() - started) * 1000 / len(measured)
        return triage_ms, emails_ms
    finally:
        smtp.stop()
        common.drop_database(url)
        forget_queue(env["CELERY_QUEUE"])
        shutil.rmtree(instance, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--referrals", type=int, default=100)
    args = parser.parse_args()
    print(f"# {common.conditions()}")
    triage_ms, emails_ms = run(args.referrals)
    print(
        f"CPU per referral: triage task and its relay {triage_ms:.1f} ms, its two emails "
        f"{emails_ms:.1f} ms (coordinators' and the referrer's acknowledgement)"
    )


if __name__ == "__main__":
    main()
