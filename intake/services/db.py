"""Database helpers shared by the web app and the workers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, scoped_session

log = logging.getLogger("intake.db")


def configure_sqlite(engine: sa.Engine) -> None:
    """WAL and a busy timeout let web, worker and beat share one SQLite file."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def take_sqlite_write_lock(session: Session | scoped_session[Session]) -> None:
    """On SQLite, begin the transaction holding the database's write lock.

    pysqlite only begins a transaction at the first write, so reads taken as a basis for a
    write could be stale by the time it lands; a write that changes nothing takes the one
    write lock first, and every read after it sees all that was committed. No-op elsewhere
    (PostgreSQL callers lock rows or take advisory locks).
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(sa.text("UPDATE referral SET id = id WHERE 0"))


def is_database_unavailable(exc: BaseException) -> bool:
    """True for a lost or refused connection, as opposed to a bug or a constraint."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@contextmanager
def keep_loaded_after_commit(session: Session) -> Iterator[None]:
    """Keep what was just written readable after the commit without another query.

    A database that goes away right after a commit must not turn a stored row into an error
    page: the caller answers from the values it already holds.
    """
    previous = session.expire_on_commit
    session.expire_on_commit = False
    try:
        yield
    finally:
        session.expire_on_commit = previous


def release_session(session: scoped_session[Any]) -> None:
    """End the request's session; a connection lost meanwhile is dropped, not raised.

    Closing rolls back an open transaction. When the database restarted in the meantime that
    rollback fails, and raised from the app context's teardown it would become a bare 500 from
    the WSGI server after the response was already decided.
    """
    try:
        session.remove()
    except DBAPIError as exc:
        if not is_database_unavailable(exc):
            raise
        log.warning("session_release_failed database_unavailable")
        try:
            session().invalidate()
        except DBAPIError:
            pass
        session.registry.clear()
