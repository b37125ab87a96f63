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
