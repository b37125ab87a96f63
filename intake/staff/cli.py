"""`flask --app intake users …`: create accounts; a demo admin in development only."""

from __future__ import annotations

import sys

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from intake.extensions import db
from intake.models import User
from intake.models.staff import STAFF_ROLES
from intake.services import auth

users_cli = AppGroup("users", help="Staff accounts.")

DEMO_EMAIL = "admin@localhost"
DEMO_PASSWORD = "intake-demo-only-2026"  # noqa: S105 (development only; refused in production)


@users_cli.command("create")
@click.option("--email", required=True, help="Sign-in email.")
@click.option("--role", required=True, type=click.Choice(STAFF_ROLES))
@click.option("--name", default="", help="Display name.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (scripts)."
)
def create_command(email: str, role: str, name: str, password_stdin: bool) -> None:
    """Create an account; the password comes from a prompt (or stdin), never an argument."""
    if password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = auth.create_user(email, role, password, display_name=name)
    except auth.AccountError as error:
        raise click.ClickException(f"{error.field}: {error.message}") from None
    click.echo(
        f"created {user.role} {user.email}; the authenticator (TOTP) is set up at first sign-in "
        "on /coordinator/login"
    )


FIRST_ADMIN_HINT = (
    "Create the first real admin with:\n"
    "  flask --app intake users create --email you@hospital.org --role admin\n"
    "(the password is asked for, or read from stdin; the authenticator is set up at first "
    "sign-in on /coordinator/login)"
)


def _ensure_demo_admin() -> None:
    if auth.find_user(DEMO_EMAIL) is None:
        auth.create_user(
            DEMO_EMAIL, "admin", DEMO_PASSWORD, display_name="Demo admin", is_demo=True
        )
    click.echo(
        f"Demo admin (development only): {DEMO_EMAIL} / {DEMO_PASSWORD} — sign in at "
        "/coordinator/login and scan the QR code with an authenticator app."
    )


@users_cli.command("ensure-demo")
def ensure_demo_command() -> None:
    """Development only: create a demo admin and say how to create a real one."""
    if current_app.config["INTAKE_ENV"] == "production":
        raise click.ClickException("refusing to create a demo account in production")
    click.echo(FIRST_ADMIN_HINT)
    _ensure_demo_admin()


@users_cli.command("welcome")
def welcome_command() -> None:
    """What `make run` prints: how to create the first admin; a demo admin in development.

    In production no demo account is created, and an existing one stops the start-up.
    """
    production = current_app.config["INTAKE_ENV"] == "production"
    has_admin = db.session.scalar(
        sa.select(User.id).where(User.role == "admin", User.is_demo.is_(False)).limit(1)
    )
    if production:
        demo = db.session.scalar(
            sa.select(User.id).where(User.is_demo.is_(True), User.active.is_(True)).limit(1)
        )
        if demo is not None:
            raise click.ClickException(
                "refusing to start in production with a demo account; deactivate it first"
            )
    if has_admin is None:
        click.echo(FIRST_ADMIN_HINT)
    if not production:
        _ensure_demo_admin()
