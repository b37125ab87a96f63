"""Wrong-date-of-birth counts and locks for the public status lookup, one row per reference."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from intake.models.base import Base


class StatusLookupGuard(Base):
    """Kept for any well-formed reference tried, known or not, so both behave the same."""

    __tablename__ = "status_lookup_guard"

    reference: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    failed_attempts: Mapped[int] = mapped_column(default=0)
    last_failed_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]
