"""Command-line tools: `flask --app intake <command>`."""

from __future__ import annotations

import time

import click
from flask import Flask, current_app

from intake.services import outbox, referrals
from intake.services.routing import seed_routing


def init_app(app: Flask) -> None:
    @app.cli.command("seed-routing")
    def seed_routing_command() -> None:
        """Add the configured coordinator, lead and on-call addresses to the routing table."""
        added = seed_routing(current_app.config)
        click.echo(f"routing rules added: {added}")

    @app.cli.command("outbox-relay")
    def outbox_relay_command() -> None:
        """Publish pending outbox events now."""
        click.echo(f"published: {outbox.relay()}")

    @app.cli.command("reconcile")
    def reconcile_command() -> None:
        """Re-queue referrals and emails that are stuck (what beat does every few seconds)."""
        click.echo(referrals.reconcile())

    @app.cli.command("audit-purge")
    @click.option(
        "--older-than-years",
        type=click.IntRange(min=1),
        default=None,
        help="Remove audit rows from before the start of today (UTC) this many years ago "
        "(default and minimum: the retention period, at least 6).",
    )
    @click.option("--actor", required=True, help="Email of the admin account doing the purge.")
    def audit_purge_command(older_than_years: int | None, actor: str) -> None:
        """Remove audit rows past retention (H-11); the purge writes its own audit row."""
        from intake.domain import retention
        from intake.models import utcnow
        from intake.services import audit, auth

        account = auth.find_user(actor)
        if account is None or not account.active or account.role != "admin":
            raise click.ClickException(f"{actor}: no active admin account with this email")
        kept = retention.retention_years(current_app.config.get("AUDIT_RETENTION_YEARS"))
        years = kept if older_than_years is None else older_than_years
        # Counted from the start of today (UTC): a cutoff right at the floor could meet a
        # database clock a moment behind ours and be refused.
        today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        cutoff = retention.years_before(today, years)
        try:
            removed = audit.purge(cutoff, account)
        except ValueError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"audit rows removed: {removed} (older than {cutoff:%Y-%m-%d} UTC)")

    @app.cli.command("demo-data")
    @click.option("--count", type=click.IntRange(min=1), default=1000, show_default=True)
    @click.option(
        "--open-share",
        type=click.FloatRange(0.0, 1.0),
        default=0.03,
        show_default=True,
        help="Share of the newest cases that are still open.",
    )
    @click.option("--seed", type=int, default=None, help="Repeatable data for benchmarks.")
    def demo_data_command(count: int, open_share: float, seed: int | None) -> None:
        """Bulk-load COUNT synthetic cases (invented names) for demos and benchmarks."""
        from intake import demo_data

        if current_app.config["INTAKE_ENV"] == "production":
            # Invented cases in a live queue would be worked, counted and escalated as real.
            raise click.ClickException("refusing to load demo cases in production")

        started = time.monotonic()
        inserted = demo_data.load(
            count,
            open_share=open_share,
            seed=seed,
            progress=lambda done: click.echo(f"  {done:,} / {count:,}", err=True),
        )
        click.echo(f"demo cases added: {inserted} in {time.monotonic() - started:.1f} s")
