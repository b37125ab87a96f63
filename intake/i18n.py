"""Language choice (an explicit switch, remembered, else Accept-Language) and date display."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app, request, session
from flask_babel import get_locale

from intake.extensions import babel


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if not request:
        return str(current_app.config["BABEL_DEFAULT_LOCALE"])
    chosen = request.args.get("lang")
    if chosen in languages:
        session["lang"] = chosen
        return str(chosen)
    if session.get("lang") in languages:
        return str(session["lang"])
    return request.accept_languages.best_match(languages) or str(
        current_app.config["BABEL_DEFAULT_LOCALE"]
    )


def program_time(value: datetime | None) -> str:
    """A UTC time shown in the program's time zone, e.g. 2026-11-25 17:00 EST."""
    if value is None:
        return ""
    local = value.astimezone(ZoneInfo(current_app.config["PROGRAM_TZ"]))
    return local.strftime("%Y-%m-%d %H:%M %Z")


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.globals["current_locale"] = lambda: str(get_locale() or "en")
    app.jinja_env.filters["program_time"] = program_time
