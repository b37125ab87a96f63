"""The migrations build exactly the schema the models describe (what `alembic check` asks)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from intake.extensions import db
from tests.conftest import migrate_to_head


def _differences(url: str) -> list[object]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "render_as_batch": True}
            )
            return list(compare_metadata(context, db.metadata))
    finally:
        engine.dispose()


def test_sqlite_migrations_match_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'check.sqlite'}"
    migrate_to_head(url, tmp_path)
    assert _differences(url) == []


def test_postgresql_migrations_match_models(database_url: str) -> None:
    assert _differences(database_url) == []


def _audit_floor_installed(url: str) -> bool:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                source = connection.scalar(
                    sa.text("SELECT pg_get_functiondef('audit_purge'::regproc)")
                )
                return "6 years" in str(source)
            names = set(
                connection.scalars(sa.text("SELECT name FROM sqlite_master WHERE type='trigger'"))
            )
            assert "audit_event_no_delete" in names
            return "audit_event_retention_floor" in names
    finally:
        engine.dispose()


def test_audit_floor_migration_downgrades_and_upgrades_again(
    database_url: str, tmp_path: Path
) -> None:
    """0009_audit_floor: downgrade restores the 0008 definitions, upgrade brings the floor back.
    Runs on the module's own database (PostgreSQL when reachable, else SQLite)."""
    from flask_migrate import downgrade, upgrade

    from intake import create_app
    from intake.config import PROJECT_ROOT
    from tests.conftest import base_config

    directory = str(PROJECT_ROOT / "migrations")
    assert _audit_floor_installed(database_url)
    app = create_app(base_config(database_url, tmp_path))
    with app.app_context():
        downgrade(directory=directory, revision="0008_scan")
        db.engine.dispose()
    assert not _audit_floor_installed(database_url)
    with app.app_context():
        upgrade(directory=directory)
        db.engine.dispose()
    assert _audit_floor_installed(database_url)
    assert _differences(database_url) == []


def test_alert_ack_migration_downgrades_and_upgrades_again(
    database_url: str, tmp_path: Path
) -> None:
    """0010_alert_ack: downgrade drops the acknowledging account and the banner's index,
    upgrade brings both back."""
    from flask_migrate import downgrade, upgrade

    from intake import create_app
    from intake.config import PROJECT_ROOT
    from tests.conftest import base_config

    def alert_schema() -> tuple[set[str], set[str]]:
        engine = sa.create_engine(database_url)
        try:
            inspector = sa.inspect(engine)
            columns = {c["name"] for c in inspector.get_columns("alert")}
            indexes = {str(i["name"]) for i in inspector.get_indexes("alert")}
            return columns, indexes
        finally:
            engine.dispose()

    directory = str(PROJECT_ROOT / "migrations")
    columns, indexes = alert_schema()
    assert "acknowledged_by_id" in columns and "ix_alert_unacknowledged" in indexes
    app = create_app(base_config(database_url, tmp_path))
    with app.app_context():
        downgrade(directory=directory, revision="0009_audit_floor")
        db.engine.dispose()
    columns, indexes = alert_schema()
    assert "acknowledged_by_id" not in columns and "ix_alert_unacknowledged" not in indexes
    assert "acknowledged_at" in columns
    with app.app_context():
        upgrade(directory=directory)
        db.engine.dispose()
    columns, indexes = alert_schema()
    assert "acknowledged_by_id" in columns and "ix_alert_unacknowledged" in indexes
    assert _differences(database_url) == []
