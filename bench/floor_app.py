"""The intake floor: the least a Flask app can do for one referral POST on this stack.

It parses the same multipart form fields as `/refer`, inserts one row with SQLAlchemy Core into
PostgreSQL (the table is made by `create_table` before gunicorn starts), and answers 303 like
the product. No CSRF, validation, templates, outbox or limiter: the product's `/refer` is
compared against this under the same gunicorn settings.

    FLOOR_DATABASE_URL=postgresql+psycopg://... gunicorn 'bench.floor_app:create_app()'
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Flask, redirect, request
from werkzeug.wrappers import Response

metadata = sa.MetaData()
floor_referral = sa.Table(
    "floor_referral",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("submission_id", sa.String(36), unique=True, nullable=False),
    sa.Column("answers", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
MULTI_VALUED = {"genetics", "relapse_sites"}


def create_table(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    metadata.create_all(engine)
    engine.dispose()


def create_app() -> Flask:
    app = Flask(__name__)
    engine = sa.create_engine(os.environ["FLOOR_DATABASE_URL"], pool_pre_ping=True)

    @app.get("/")
    def index() -> str:
        return "floor"

    @app.post("/refer")
    def refer() -> Response:
        form = request.form
        answers = {
            key: form.getlist(key) if key in MULTI_VALUED else form[key]
            for key in form
            if key != "submission_id"
        }
        with engine.begin() as connection:
            connection.execute(
                floor_referral.insert().values(
                    submission_id=form["submission_id"],
                    answers=answers,
                    created_at=datetime.now(UTC),
                )
            )
        return redirect("/refer/submitted", code=303)

    return app
