"""Command-line tools: `flask --app intake <command>`."""

from __future__ import annotations

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
