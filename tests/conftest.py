"""Fixtures: a migrated database (PostgreSQL when reachable, else SQLite), app and client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

from intake import create_app
from intake.config import PROJECT_ROOT, engine_options
from intake.extensions import db
from tests import services


def migrate_to_head(database_url: str, instance_dir: Path) -> None:
    from flask_migrate import upgrade

    app = create_app(base_config(database_url, instance_dir))
    with app.app_context():
        upgrade(directory=str(PROJECT_ROOT / "migrations"))
        db.engine.dispose()


def base_config(database_url: str, instance_dir: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "INSTANCE_DIR": str(instance_dir),
        "UPLOAD_DIR": str(instance_dir / "uploads"),
        "MAIL_SINK_DIR": str(instance_dir / "mail"),
        "RELAY_IN_PROCESS": False,
        "RATELIMIT_ENABLED": False,
        "WTF_CSRF_ENABLED": False,
        "COORDINATOR_EMAILS": ["coordinators@program.test"],
        "PUBLIC_BASE_URL": "http://intake.test",
        "SECRET_KEY": "test-secret",
    }
    config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(database_url)  # as in production
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def pg_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """A migrated PostgreSQL database used as the template for per-module databases."""
    if not services.postgres_available():
        if services.REQUIRED:
            pytest.fail("PostgreSQL is required (REQUIRE_SERVICES=1) but not reachable")
        yield None
        return
    url = services.create_database()
    migrate_to_head(url, tmp_path_factory.mktemp("template"))
    yield make_url(url).database
    services.drop_database(url)


@pytest.fixture(scope="module")
def database_url(
    pg_template: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database per test module: PostgreSQL when reachable, otherwise SQLite."""
    if pg_template is None:
        folder = tmp_path_factory.mktemp("sqlite")
        url = f"sqlite:///{folder / 'intake.sqlite'}"
        migrate_to_head(url, folder)
        yield url
        return
    url = services.create_database(template=pg_template)
    yield url
    services.drop_database(url)


@pytest.fixture
def app_config(database_url: str, tmp_path: Path) -> dict[str, Any]:
    return base_config(database_url, tmp_path)


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    app = create_app(app_config)
    with app.app_context():
        from intake.services.routing import seed_routing

        seed_routing(app.config)
    yield app
    with app.app_context():
        db.session.remove()
        _empty_tables()
        db.engine.dispose()


def _empty_tables() -> None:
    with db.engine.begin() as connection:
        # audit_event is append-only (triggers); test
        # cleanup bypasses them inside this transaction only.
        triggers: list[str] = []
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SET LOCAL session_replication_role = replica"))
        else:
            triggers = list(
                connection.execute(
                    sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
                )
            )
            for name, _sql in triggers:
                connection.execute(sa.text(f'DROP TRIGGER "{name}"'))
        for table in reversed(db.metadata.sorted_tables):
            connection.execute(sa.delete(table))
        for _name, sql in triggers:
            connection.execute(sa.text(sql))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
