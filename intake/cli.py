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

        started = time.monotonic()
        inserted = demo_data.load(
            count,
            open_share=open_share,
            seed=seed,
            progress=lambda done: click.echo(f"  {done:,} / {count:,}", err=True),
        )
        click.echo(f"demo cases added: {inserted} in {time.monotonic() - started:.1f} s")
