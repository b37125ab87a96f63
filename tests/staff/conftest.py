"""Fixtures for staff tests that run the real stack (see tests/staff/live.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import services
from tests.stack import SmtpServer, Stack


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def pg_stack(pg_template: str | None, tmp_path: Path, smtp: SmtpServer) -> Iterator[Stack]:
    """PostgreSQL + Redis + the stack's SMTP server, in a fresh database of its own."""
    services.require(pg_template is not None, "PostgreSQL")
    services.require(services.redis_available(), "Redis")
    stack = Stack(
        services.create_database(template=pg_template), services.REDIS_URL, tmp_path, smtp.port
    )
    stack.flask("seed-routing")
    try:
        yield stack
    finally:
        stack.stop()
        services.drop_database(stack.database_url)
