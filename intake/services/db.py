"""Database helpers shared by the web app and the workers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, OperationalError


def configure_sqlite(engine: sa.Engine) -> None:
    """WAL and a busy timeout let web, worker and beat share one SQLite file."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def is_database_unavailable(exc: BaseException) -> bool:
    """True for a lost or refused connection, as opposed to a bug or a constraint."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
