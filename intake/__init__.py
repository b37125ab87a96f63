"""Intake: referral intake and coordination for pediatric CAR T-cell programs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask

from intake.config import PROJECT_ROOT, check_production_safety, load_config


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Application factory: config, extensions, blueprints, CLI and error pages."""
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        instance_path=str(load_config()["INSTANCE_DIR"]),
    )
    app.config.from_mapping(load_config())
    if test_config:
        app.config.from_mapping(test_config)
    check_production_safety(app.config)
    Path(app.config["INSTANCE_DIR"]).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Alembic announces each of its plugins at INFO on every command: noise in `make run`.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    from intake import cli, errors, i18n, security
    from intake.celery_app import celery_init_app
    from intake.extensions import csrf, db, limiter, migrate

    db.init_app(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        from intake.services.db import configure_sqlite

        with app.app_context():
            configure_sqlite(db.engine)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    security.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)
    celery_init_app(app)
    from intake.services.outbox import install_commit_hook

    install_commit_hook()

    from intake.dev import bp as dev_bp
    from intake.public import bp as public_bp

    app.register_blueprint(public_bp)
    from intake.families import bp as families_bp

    app.register_blueprint(families_bp)
    if app.config["MAIL_PAGE_ENABLED"]:
        app.register_blueprint(dev_bp)
    from intake import staff

    staff.init_app(app)
    cli.init_app(app)
    return app
