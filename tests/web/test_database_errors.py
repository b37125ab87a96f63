"""Database errors reach logs and Celery's retry records: they must not carry bound values."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from intake.extensions import db


def test_database_errors_leave_out_bound_values(app: Flask) -> None:
    with app.app_context():
        with pytest.raises(sa.exc.DBAPIError) as raised:
            db.session.execute(
                sa.text("INSERT INTO no_such_table (name) VALUES (:name)"),
                {"name": "Mateo Núñez"},
            )
        db.session.rollback()
    assert "Mateo" not in str(raised.value)
    assert "hidden due to hide_parameters" in str(raised.value)
