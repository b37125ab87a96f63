"""Coordinator workspace (/coordinator/...) and the public upload page for requested documents."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import (
    Blueprint,
    Flask,
    abort,
    g,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, current_user
from werkzeug.wrappers import Response

bp = Blueprint("staff", __name__, url_prefix="/coordinator")
upload_bp = Blueprint("upload", __name__)
login_manager = LoginManager()

F = TypeVar("F", bound=Callable[..., Any])


def staff_required(*roles: str) -> Callable[[F], F]:
    """Signed in (with both factors) and, when roles are given, one of them (else 403)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if roles and current_user.role not in roles:
                from intake.services import audit

                audit.record(audit.DENIED, "page", request.endpoint, outcome="denied", commit=True)
                abort(403)
            return view(*args, **kwargs)

        # Read by the tests that walk the URL map (who may reach which page).
        wrapped.staff_roles = roles  # type: ignore[attr-defined]
        return cast(F, wrapped)

    return decorator


# ASVS 3.7.1: exports and account changes need the password again if the last proof of it
# (sign-in or confirmation) is older than this.
REAUTH_SECONDS = 300


def recent_auth_required(
    back: str = "staff.queue", methods: tuple[str, ...] = ()
) -> Callable[[F], F]:
    """Send the user to confirm their password first when their last proof is stale.

    Only for ``methods`` when given. A GET comes back to the same URL afterwards; a POST
    (whose data is not kept) comes back to the ``back`` page to be repeated.
    """

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            from intake.services.auth import now

            proven = float(session.get("reauth_at", 0))
            applies = not methods or request.method in methods
            if applies and now().timestamp() - proven > REAUTH_SECONDS:
                target = request.full_path.rstrip("?") if request.method == "GET" else url_for(back)
                return redirect(url_for("staff.confirm", next=target))
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator


def init_app(app: Flask) -> None:
    from intake.services import auth

    login_manager.init_app(app)
    login_manager.login_view = "staff.login"
    login_manager.login_message = ""
    # Our own server-side session records replace Flask-Login's identifier checks.
    login_manager.session_protection = None

    @login_manager.user_loader
    def _load(token: str) -> Any:
        return auth.load_session(token)

    @login_manager.unauthorized_handler
    def _unauthorized() -> Response:
        if request.method == "GET" and request.blueprint == "staff":
            target = request.full_path.rstrip("?")
            return redirect(url_for("staff.login", next=target))
        return redirect(url_for("staff.login"))

    @app.before_request
    def _request_id() -> None:
        from intake.services.audit import request_id

        request_id()

    @app.after_request
    def _staff_headers(response: Response) -> Response:
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        return response

    def _alert_banner() -> Any:
        """Decision 7's admin banner. Called by staff/layout.html for admins only, so other
        users and other pages cost no query; asked once per request at most."""
        from intake.services import alerts

        if "alert_banner" not in g:
            g.alert_banner = alerts.banner()
        return g.alert_banner

    @app.context_processor
    def _staff_context() -> dict[str, Any]:
        # Emails are rendered outside requests (workers): no user there.
        if not has_request_context() or not getattr(current_user, "is_authenticated", False):
            return {"staff_user": None, "alert_banner": _alert_banner}
        return {"staff_user": current_user, "alert_banner": _alert_banner}

    from intake.services import escalation, info_requests  # noqa: F401 (register email kinds)

    # Missing-item codes as coordinators read them (queue rows, case page).
    app.jinja_env.filters["missing_label"] = info_requests.item_label
    from intake.staff import (  # noqa: F401
        admin_views,
        case_views,
        document_views,
        family_views,
        login_views,
        upload_views,
    )

    app.register_blueprint(bp)
    app.register_blueprint(upload_bp)
    from intake.staff.cli import users_cli

    app.cli.add_command(users_cli)
