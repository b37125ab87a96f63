"""Sign-in (password, then TOTP; enrolment with a QR code on first sign-in) and sign-out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from intake.extensions import db, limiter
from intake.models import User
from intake.services import audit, auth, staff_mail
from intake.staff import bp, recent_auth_required, staff_required
from intake.staff.forms import (
    CodeForm,
    ConfirmForm,
    LoginForm,
    LogoutForm,
    NewPasswordForm,
    RecoveryCodesForm,
    ResetRequestForm,
)

# How long the password step stays valid while the user finds their authenticator.
PENDING_SECONDS = 300
GENERIC_FAILURE = "Email or password is incorrect."
LOCKED = "Too many failed attempts. Try again in a few minutes."


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


log = logging.getLogger(__name__)
SIGN_IN_UNAVAILABLE = (
    "Sign-in is unavailable for a few minutes while a service restarts. Try again shortly; "
    "if you are already signed in, you can keep working."
)


def _fails_closed(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decision traps: sign-in throttling fails closed. When the limiter's shared store
    (Redis) is down, Flask-Limiter falls back to per-process memory counters, which a guesser
    spreading attempts over the web workers would outrun: refuse sign-in attempts until the
    store is back (public forms keep the fallback: a referral is never refused for it)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if (
            request.method == "POST"
            and current_app.config.get("RATELIMIT_ENABLED")
            # Flask-Limiter's own flag for "the store failed, counting in memory" (pinned 4.x;
            # tests/staff/test_auth.py exercises it with an unreachable Redis).
            and getattr(limiter, "_storage_dead", False)
        ):
            log.warning("sign_in_refused reason=rate_limit_store_unreachable")
            body = render_template("staff/error.html", code=503, message=SIGN_IN_UNAVAILABLE)
            return body, 503, {"Retry-After": "60"}
        return view(*args, **kwargs)

    return wrapped


def _pending_user() -> User | None:
    user_id = session.get("pending_user")
    started = session.get("pending_at", 0)
    if not user_id or time.time() - float(started) > PENDING_SECONDS:
        return None
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.active else None


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@_fails_closed
def login() -> Response | str | tuple[str, int]:
    if current_user.is_authenticated:
        return redirect(url_for("staff.queue"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    message = None
    if form.validate_on_submit():
        outcome = auth.check_password(form.email.data or "", form.password.data or "")
        if outcome.status == "ok" and outcome.user is not None:
            # A fresh cookie session: nothing from before sign-in carries over.
            session.clear()
            session["pending_user"] = outcome.user.id
            session["pending_at"] = time.time()
            session["pending_next"] = auth.safe_next(form.next.data, url_for("staff.queue"))
            if outcome.user.totp_enrolled_at is None:
                return redirect(url_for("staff.enrol"))
            return redirect(url_for("staff.second_factor"))
        audit.record(
            audit.LOGIN_FAILURE,
            "session",
            None,
            outcome="failure",
            detail=f"password:{outcome.status}",
            user=outcome.user,
            commit=True,
        )
        # The same words for a locked account as for a wrong password or an unknown email:
        # the owner learns of a lockout by email instead (auth._tell_of_lockout).
        message = GENERIC_FAILURE
    status = 200 if request.method == "GET" or message is None else 401
    return render_template("staff/login.html", form=form, message=message), status


def _finish_login(user: User) -> Response:
    target = session.get("pending_next") or url_for("staff.queue")
    session.clear()
    token = auth.start_session(user, request.remote_addr)
    user.session_token = token
    login_user(user)
    session["reauth_at"] = auth.now().timestamp()
    audit.record(audit.LOGIN, "session", None, user=user, commit=True)
    return redirect(auth.safe_next(target, url_for("staff.queue")))


def _code_failure(user: User) -> str:
    audit.record(
        audit.LOGIN_FAILURE,
        "session",
        None,
        outcome="failure",
        detail="totp",
        user=user,
        commit=True,
    )
    return LOCKED if auth.is_locked(user) else "That code is not valid. Try the next one."


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@_fails_closed
def second_factor() -> Response | str | tuple[str, int]:
    user = _pending_user()
    if user is None:
        return redirect(url_for("staff.login"))
    if user.totp_enrolled_at is None:
        return redirect(url_for("staff.enrol"))
    form = CodeForm()
    message = None
    if form.validate_on_submit():
        code = form.code.data or ""
        if auth.looks_like_recovery_code(code):
            if auth.use_recovery_code(user, code):
                left = len(user.recovery_code_hashes)
                flash(f"You signed in with a recovery code; {left} left. Make new ones if needed.")
                session["pending_next"] = url_for("staff.recovery_codes")
                return _finish_login(user)
        elif auth.verify_totp(user, code):
            return _finish_login(user)
        message = _code_failure(user)
    status = 200 if message is None else 401
    return render_template("staff/code.html", form=form, message=message), status


@bp.route("/login/enrol", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@_fails_closed
def enrol() -> Response | str | tuple[str, int]:
    user = _pending_user()
    if user is None:
        return redirect(url_for("staff.login"))
    if user.totp_enrolled_at is not None:
        return redirect(url_for("staff.second_factor"))
    secret = auth.start_enrolment(user)
    uri = auth.provisioning_uri(user)
    form = CodeForm()
    message = None
    if form.validate_on_submit():
        if auth.verify_totp(user, form.code.data or ""):
            # Next: one-time recovery codes, for the day the phone is lost.
            session["pending_next"] = url_for("staff.recovery_codes")
            return _finish_login(user)
        message = _code_failure(user)
    context: dict[str, Any] = {
        "form": form,
        "message": message,
        "qr_svg": auth.qr_svg(uri),
        "secret": secret,
    }
    return render_template("staff/enrol.html", **context), 200 if message is None else 401


@bp.post("/logout")
def logout() -> Response:
    form = LogoutForm()
    if current_user.is_authenticated and form.validate_on_submit():
        user = current_user._get_current_object()  # type: ignore[attr-defined]
        auth.end_session(user.session_token)
        audit.record(audit.LOGOUT, "session", None, user=user, commit=True)
        logout_user()
    session.clear()
    return redirect(url_for("staff.login"))


@bp.route("/confirm", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@staff_required()
@_fails_closed
def confirm() -> Response | str | tuple[str, int]:
    """Re-authentication before exports and account changes (ASVS 3.7.1)."""
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    form = ConfirmForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    message = None
    if form.validate_on_submit():
        outcome = auth.check_password(user.email, form.password.data or "")
        if outcome.status == "ok":
            session["reauth_at"] = auth.now().timestamp()
            audit.record(audit.LOGIN, "session", None, detail="reauth", user=user, commit=True)
            return redirect(auth.safe_next(form.next.data, url_for("staff.queue")))
        audit.record(
            audit.LOGIN_FAILURE,
            "session",
            None,
            outcome="failure",
            detail=f"reauth:{outcome.status}",
            user=user,
            commit=True,
        )
        if outcome.status != "invalid":
            # Locked (or deactivated) while signed in: the session ends here.
            auth.end_session(user.session_token, "locked")
            logout_user()
            session.clear()
            return redirect(url_for("staff.login"))
        message = "That password is not correct."
    status = 200 if message is None else 401
    return render_template(
        "staff/confirm.html", form=form, message=message, logout_form=LogoutForm()
    ), status


@bp.route("/account/recovery-codes", methods=["GET", "POST"])
@staff_required()
@recent_auth_required(back="staff.recovery_codes", methods=("POST",))
def recovery_codes() -> str:
    """How many recovery codes are left; POST makes a new set and shows it this once."""
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    form = RecoveryCodesForm()
    codes: list[str] = []
    if form.validate_on_submit():
        codes = auth.new_recovery_codes(user)
    return render_template(
        "staff/recovery_codes.html",
        form=form,
        codes=codes,
        left=len(user.recovery_code_hashes or []),
        logout_form=LogoutForm(),
    )


RESET_SESSION_SECONDS = 900


@bp.route("/login/reset", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def reset_request() -> str:
    """Ask for a reset link; the reply is the same whether or not the account exists."""
    form = ResetRequestForm()
    sent = False
    if form.validate_on_submit():
        staff_mail.request_reset(form.email.data or "")
        sent = True
    return render_template("staff/reset_request.html", form=form, sent=sent)


@bp.get("/login/reset/<token>")
@limiter.limit(_login_limit)
def reset_link(token: str) -> Response | tuple[str, int]:
    """Swap the emailed token for a short session and a clean URL (no token in Referer)."""
    reset = staff_mail.find_reset(token)
    if reset is None:
        return render_template("staff/reset_invalid.html"), 410
    session.clear()
    session["reset_id"] = reset.id
    session["reset_at"] = time.time()
    return redirect(url_for("staff.reset_password"), code=303)


@bp.route("/login/reset/new", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def reset_password() -> Response | str | tuple[str, int]:
    reset_id = session.get("reset_id")
    fresh = time.time() - float(session.get("reset_at", 0)) < RESET_SESSION_SECONDS
    reset = staff_mail.usable_reset(int(reset_id)) if reset_id and fresh else None
    if reset is None:
        return render_template("staff/reset_invalid.html"), 410
    # An invitation's link sets the first password of a new account; same page, own words.
    invited = staff_mail.is_invitation(reset)
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            staff_mail.complete_reset(int(reset_id), form.password.data or "")
        except auth.AccountError as error:
            form.password.errors = [error.message]
        else:
            session.clear()
            if invited:
                flash("Your password is set. Sign in with it, then set up your authenticator.")
            else:
                flash("Your password is changed. Sign in with it and your authenticator code.")
            return redirect(url_for("staff.login"), code=303)
    status = 400 if request.method == "POST" else 200
    return render_template("staff/reset_password.html", form=form, invited=invited), status
