"""Poison-message bookkeeping (fault F14): task failures counted in the database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from intake.models.base import Base, utcnow


class TaskFailure(Base):
    """Failed or interrupted runs of one task message (name + arguments), until it succeeds.

    Counted in the database, not in the message: a message that kills its worker is redelivered
    as new, and Celery's own retry count starts again with every republish.
    """

    __tablename__ = "task_failure"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # sha256(name, args)
    task_name: Mapped[str] = mapped_column(sa.String(64))
    args: Mapped[list[Any]] = mapped_column(sa.JSON, default=list)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    dead_lettered_at: Mapped[datetime | None]
