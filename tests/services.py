"""Finding the real services the tests run against, and skipping clearly when one is absent.

In CI (`REQUIRE_SERVICES=1`) a missing service is a failure, not a skip. `TEST_EMBEDDED_ONLY=1`
runs the suite on the embedded defaults alone (SQLite, no Redis), as `make run` starts the
product without configuration: tests that need PostgreSQL or Redis skip, saying so.
"""

from __future__ import annotations

import os
import socket
import uuid
from contextlib import closing

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

PG_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
EMBEDDED_ONLY = os.environ.get("TEST_EMBEDDED_ONLY") == "1"
REQUIRED = os.environ.get("REQUIRE_SERVICES") == "1" and not EMBEDDED_ONLY


def _port_open(host: str, port: int) -> bool:
    with closing(socket.socket()) as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def postgres_available() -> bool:
    if EMBEDDED_ONLY:
        return False
    url = make_url(PG_URL)
    if not _port_open(url.host or "127.0.0.1", url.port or 5432):
        return False
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 2})
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def redis_available() -> bool:
    if EMBEDDED_ONLY:
        return False
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        return bool(client.ping())
    except Exception:
        return False


def require(available: bool, what: str) -> None:
    if available:
        return
    if EMBEDDED_ONLY:
        pytest.skip(f"embedded-defaults run (TEST_EMBEDDED_ONLY=1): {what} not used")
    message = f"{what} is not reachable (set TEST_DATABASE_URL / TEST_REDIS_URL)"
    if REQUIRED:
        pytest.fail(message + " and REQUIRE_SERVICES=1")
    pytest.skip(message)


def admin_engine() -> sa.Engine:
    url = make_url(PG_URL).set(database="postgres")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


def create_database(template: str | None = None) -> str:
    """Create a fresh database (optionally from a migrated template); returns its URL."""
    name = f"intake_t_{uuid.uuid4().hex[:12]}"
    engine = admin_engine()
    with engine.connect() as connection:
        clause = f" TEMPLATE {template}" if template else ""
        connection.execute(sa.text(f'CREATE DATABASE "{name}"{clause}'))
    engine.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    name = make_url(url).database
    engine = admin_engine()
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
