"""CSRF, security headers, cookie flags and proxy handling in one place."""

from __future__ import annotations

import logging

from flask import Flask, Response, abort, request
from flask_talisman import Talisman
from werkzeug.middleware.proxy_fix import ProxyFix

CSP = {
    "default-src": "'self'",
    "img-src": "'self' data:",
    "style-src": "'self'",
    "script-src": "'self'",
    "connect-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "object-src": "'none'",
}

talisman = Talisman()

log = logging.getLogger("intake.security")

# Views whose every text field refuses NUL with a field error (intake.domain.inputs).
FIELD_CHECKED_FORMS = frozenset(
    {"public.refer", "public.status", "families.second_opinion", "families.message"}
)


def _has_nul(values: list[str]) -> bool:
    return any("\x00" in value for value in values)


def _reject_nul() -> None:
    """PostgreSQL refuses NUL in text, so one in the path, the query or a form would surface
    as a 500. The public forms answer a NUL in a value with a field error instead (security.md
    §5 row 6), so only their keys are checked here."""
    args = request.args
    where = None
    if "\x00" in request.path:
        where = "path"
    elif _has_nul([*args.keys(), *(value for _, value in args.items(multi=True))]):
        where = "args"
    elif request.method != "GET":
        form = request.form
        if _has_nul(list(form.keys())):
            where = "form_keys"
        elif request.endpoint not in FIELD_CHECKED_FORMS and _has_nul(
            [value for _, value in form.items(multi=True)]
        ):
            where = "form_values"
    if where is not None:
        log.warning("nul_byte_rejected where=%s endpoint=%s", where, request.endpoint)
        abort(400)


def init_app(app: Flask) -> None:
    production = app.config["INTAKE_ENV"] == "production"
    talisman.init_app(
        app,
        force_https=production,
        strict_transport_security=production,
        strict_transport_security_max_age=31536000,
        strict_transport_security_include_subdomains=True,
        content_security_policy=CSP,
        frame_options="DENY",
        referrer_policy="no-referrer",
        session_cookie_secure=production,
        session_cookie_http_only=True,
    )
    if production and app.config["SESSION_COOKIE_NAME"] == "session":
        # ASVS 5.0 3.3.3: browsers accept a __Host- cookie only if it is Secure, Path=/ and
        # has no Domain, so no subdomain or plain-HTTP page can plant or overwrite the session.
        # They drop such cookies over plain HTTP, hence production only.
        app.config["SESSION_COOKIE_NAME"] = "__Host-session"
        app.config["SESSION_COOKIE_PATH"] = "/"
        app.config["SESSION_COOKIE_DOMAIN"] = None
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    app.before_request(_reject_nul)

    @app.after_request
    def _no_store(response: Response) -> Response:
        # Pages may carry PHI; nothing but static assets may be cached anywhere.
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
            response.headers["Pragma"] = "no-cache"
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.pop("Server", None)
        return response
