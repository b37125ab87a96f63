"""Error pages: clear, generic, never a stack trace; each carries a correlation id."""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Callable

from flask import Flask, current_app, render_template, request
from flask_babel import format_decimal
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from intake.i18n import STAFF_PREFIX

log = logging.getLogger("intake.errors")

# Views that can show their form again after an expired or missing CSRF token, keeping the
# user's text (security.md §5 row 25).
RESUBMIT_VIEWS: dict[str, Callable[[], tuple[str, int]]] = {}
# Long public forms that, refused by the rate limit (429), show the form again with what was
# typed and when to send it, rather than an error page that loses it all (a hospital's shared
# address can reach the limit). Called with the message to show.
SHOW_AGAIN_ON_LIMIT: dict[str, Callable[[str], tuple[str, int]]] = {}

MESSAGES = {
    400: _l("The request could not be understood. Please go back and try again."),
    403: _l("You do not have access to this page."),
    404: _l("We could not find that page."),
    405: _l("That action is not allowed here."),
    409: _l("This submission conflicts with an earlier one."),
    # Formatted with both configured limits (_render_error): people learn which one they passed.
    413: _l(
        "What you sent is too large. Each file can be up to %(mb)s MB, and everything sent at "
        "once up to %(total)s MB in all. Attach fewer or smaller files and try again."
    ),
    429: _l("Too many requests. Please wait a moment and try again."),
    503: _l("The service is briefly unavailable. Nothing was saved; please try again shortly."),
}


LIMITED_FORM_MESSAGE = _l(
    "Too many forms were sent from your network in a short time, so this one was not saved. "
    "Your answers are below: wait a few minutes, attach any files again and send it again. "
    "If it is urgent, call us."
)


def max_request_mb() -> str:
    """The whole-request limit (``MAX_REQUEST_MB``, all files together) in MB, for display."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    return format_decimal(limit / (1024 * 1024), format="#,##0.###")


def _render_error(code: int, correlation_id: str | None = None) -> tuple[str, int]:
    message = MESSAGES.get(code, _l("Something went wrong on our side."))
    if code == 413:
        message = str(message) % {
            "mb": current_app.config["MAX_UPLOAD_MB"],
            "total": max_request_mb(),
        }
    if request.path.startswith(STAFF_PREFIX):
        # Staff keep their workspace (navigation, sign-out) and its language, English (the
        # locale selector gives English under STAFF_PREFIX). The page reads the signed-in
        # user; if that fails too (database down), the plain page.
        try:
            return render_template(
                "staff/error.html",
                code=code,
                message=str(message),
                correlation_id=correlation_id,
            ), code
        except Exception:  # noqa: BLE001
            log.warning("staff_error_page_unavailable code=%s", code)
    return render_template(
        "errors/error.html", code=code, message=message, correlation_id=correlation_id
    ), code


def init_app(app: Flask) -> None:
    from intake.extensions import db
    from intake.services.db import release_session

    app.jinja_env.globals["max_request_mb"] = max_request_mb

    # Registered after Flask-SQLAlchemy's own teardown, so it runs first (teardowns run in
    # reverse): a session whose connection died during the request is dropped quietly.
    @app.teardown_appcontext
    def _release_session(_exc: BaseException | None) -> None:
        release_session(db.session)

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError) -> tuple[str, int]:
        log.warning("csrf_failure endpoint=%s", request.endpoint)
        resubmit = RESUBMIT_VIEWS.get(request.endpoint or "")
        if resubmit is not None:
            return resubmit()
        return _render_error(400)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> tuple[str, int] | HTTPException:
        code = error.code or 500
        if code in (301, 302, 303, 307, 308):
            return error
        show_again = SHOW_AGAIN_ON_LIMIT.get(request.endpoint or "")
        if code == 429 and request.method == "POST" and show_again is not None:
            # Flask-Limiter still adds Retry-After to this response (RATELIMIT_HEADERS_ENABLED).
            log.warning("rate_limited_form endpoint=%s", request.endpoint)
            body, _status = show_again(str(LIMITED_FORM_MESSAGE))
            return body, 429
        return _render_error(code)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[str, int]:
        correlation_id = uuid.uuid4().hex[:12]
        # The type and the stack only: exception text can carry submitted values.
        log.error(
            "unhandled_error id=%s type=%s endpoint=%s\n%s",
            correlation_id,
            type(error).__name__,
            request.endpoint,
            "".join(traceback.format_tb(error.__traceback__)),
        )
        return _render_error(500, correlation_id)
