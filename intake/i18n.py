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
    if request.path.startswith(STAFF_PREFIX):
        # The workspace is English throughout; following a Spanish browser (or the language
        # chosen on a public page in the same browser) gave pages half in each language.
        return "en"
    chosen = request.args.get("lang")
    if chosen in languages:
        session["lang"] = chosen
        session.pop(FROM_LINK, None)
        return str(chosen)
    if session.get("lang") in languages:
        return str(session["lang"])
    return browser_language(languages) or str(current_app.config["BABEL_DEFAULT_LOCALE"])


STAFF_PREFIX = "/coordinator"
# Set in the session when the language came from an emailed link rather than from the switch.
FROM_LINK = "lang_from_link"


def use_link_language(language: str) -> None:
    """Show the pages an emailed link opens in the email's language, whatever the browser
    prefers, unless the visitor chose a language with ?lang= (on this link or earlier in this
    browser session): a family who chose Spanish reads Spanish on a borrowed English browser."""
    languages = current_app.config["LANGUAGES"]
    chosen = request.args.get("lang")
    if chosen in languages:
        session["lang"] = chosen
        session.pop(FROM_LINK, None)
    elif language in languages and (session.get("lang") not in languages or session.get(FROM_LINK)):
        session["lang"] = language
        session[FROM_LINK] = True


def browser_language(languages: list[str]) -> str | None:
    """The first supported language in Accept-Language order, by its primary tag.

    Werkzeug's best_match prefers any exact match, so "es-419,en;q=0.5" (Spanish for Latin
    America) would get English; here "es-419", "es-MX" or "es-US" all mean Spanish first.
    """
    for value, _quality in request.accept_languages:  # sorted by quality
        primary = value.split("-", 1)[0].split("_", 1)[0].lower()
        if primary in languages:
            return primary
    return None


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
