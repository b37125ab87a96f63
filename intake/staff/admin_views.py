"""Admin pages (accounts, notification routing, audit trail, access report, CSV export) and
the metrics page."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.exceptions import BadRequest, NotFound

from intake.extensions import db
from intake.models import Alert, BreakGlassGrant, DeadLetter, User
from intake.models.staff import STAFF_ROLES
from intake.services import alerts, audit, auth, metrics, routing, staff_mail
from intake.services.routing import CASE_KINDS
from intake.staff import bp, recent_auth_required, staff_required, throttle
from intake.staff.forms import AlertAckForm, LogoutForm, RoutingForm, UserActionForm, UserForm


def _user() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined,no-any-return]


@bp.route("/admin/users", methods=["GET", "POST"])
@staff_required("admin")
@recent_auth_required(back="staff.users", methods=("POST",))
def users() -> Response | str | tuple[str, int]:
    form = UserForm()
    status = 200
    if form.validate_on_submit():
        try:
            # No password: the owner sets one from the emailed invitation (nobody else knows it).
            created = auth.create_user(
                form.email.data or "",
                form.role.data or "",
                display_name=form.display_name.data or "",
                queues=list(form.queues.data or []),
            )
        except auth.AccountError as error:
            getattr(form, error.field).errors = [error.message]
            status = 400
        else:
            audit.record(audit.CREATE, "staff_user", created.id, user=_user())
            staff_mail.invite(created, _user())
            hours = current_app.config["INVITE_HOURS"]
            flash(
                f"Account {created.email} created and an invitation emailed to that address: "
                f"its link sets the password (once, within {hours} hours); the second factor "
                "is set up at the first sign-in."
            )
            return redirect(url_for("staff.users"), code=303)
    elif request.method == "POST":
        status = 400
    accounts = list(db.session.scalars(sa.select(User).order_by(User.email)))
    return render_template(
        "staff/admin_users.html",
        form=form,
        accounts=accounts,
        roles=STAFF_ROLES,
        action_form=UserActionForm(),
        can_invite=staff_mail.can_invite,
        invite_hours=current_app.config["INVITE_HOURS"],
        logout_form=LogoutForm(),
    ), status


@bp.post("/admin/users/<int:user_id>")
@staff_required("admin")
@recent_auth_required(back="staff.users")
def user_action(user_id: int) -> Response:
    account = db.session.get(User, user_id)
    form = UserActionForm()
    if account is None or not form.validate_on_submit():
        raise NotFound()
    if form.action.data == "invite":
        return _invite_again(account)
    if form.action.data == "deactivate" and account.id == _user().id:
        # One click would lock the admin out mid-task (and maybe the last admin out for good).
        flash("You cannot deactivate your own account; ask another admin.")
        return redirect(url_for("staff.users"), code=303)
    if form.action.data == "deactivate":
        account.active = False
        auth.end_all_sessions(account, "deactivated")
    elif form.action.data == "activate":
        account.active = True
    elif form.action.data == "reset_totp":
        # Its own audit row and the owner's notice, in the reset's transaction.
        auth.reset_totp(account, _user())
        flash(f"{account.email}: reset totp done.")
        return redirect(url_for("staff.users"), code=303)
    detail = form.action.data
    if form.action.data == "set_queues":
        # Staffing changes move people between queues; scope is read on every request, so
        # the change applies at once (decision 10).
        wanted = request.form.getlist("queues")
        if any(kind not in CASE_KINDS for kind in wanted):
            raise NotFound()
        account.queues = [kind for kind in CASE_KINDS if kind in wanted]
        detail = "queues:" + ",".join(account.queues)
    if form.action.data == "change_role":
        role = form.role.data or ""
        if role not in STAFF_ROLES or (account.id == _user().id and role != "admin"):
            # An admin cannot demote themself (someone must be left to manage accounts).
            flash("Pick a role; admins cannot remove their own admin role.")
            return redirect(url_for("staff.users"), code=303)
        account.role = role
        # New rights (or fewer) start with a fresh sign-in.
        auth.end_all_sessions(account, "role_changed")
        detail = f"role:{role}"
    audit.record(audit.UPDATE, "staff_user", account.id, detail=detail, user=_user())
    db.session.commit()
    flash(f"{account.email}: {form.action.data.replace('_', ' ')} done.")
    return redirect(url_for("staff.users"), code=303)


def _invite_again(account: User) -> Response:
    """A new invitation link for an account that never set a password; older links stop."""
    if not staff_mail.can_invite(account):
        flash(f"{account.email} already has a password (or is deactivated): no invitation sent.")
        return redirect(url_for("staff.users"), code=303)
    staff_mail.invite(account, _user(), again=True)
    flash(f"{account.email}: a new invitation was emailed; earlier links no longer work.")
    return redirect(url_for("staff.users"), code=303)


@bp.route("/admin/routing", methods=["GET", "POST"])
@staff_required("admin")
@recent_auth_required(back="staff.routing_page", methods=("POST",))
def routing_page() -> Response | str | tuple[str, int]:
    """Who is emailed about new cases and escalations, per case kind and priority (decision 2).
    Changes apply to the next email: recipients are read when an email is queued."""
    form = RoutingForm()
    status = 200
    if form.validate_on_submit():
        email, role = form.email.data or "", form.role.data or ""
        on, off = routing.set_routes(role, email, form.chosen_cells(), _user())
        if on or off:
            flash(f"{email} ({role}): {on} switched on, {off} switched off.")
        else:
            flash(f"{email} ({role}): nothing changed.")
        return redirect(url_for("staff.routing_page"), code=303)
    if request.method == "POST":
        status = 400
    return render_template(
        "staff/admin_routing.html",
        form=form,
        entries=routing.entries(),
        gaps=routing.gaps(current_app.config),
        kinds=routing.CASE_KINDS,
        priorities_for=routing.priorities_for,
        kind_labels=routing.KIND_LABELS,
        role_labels=routing.ROLE_LABELS,
        row_form=RoutingForm(formdata=None),
        logout_form=LogoutForm(),
    ), status


@bp.get("/admin/audit")
@staff_required("admin")
def audit_log() -> str:
    user_id = request.args.get("user", "")
    resource = request.args.get("resource", "")[:64]
    events = audit.query(
        user_id=int(user_id) if user_id.isdigit() else None, resource_id=resource or None
    )
    audit.record(audit.READ, "audit_event", None, detail="browse", commit=True)
    accounts = list(db.session.scalars(sa.select(User).order_by(User.email)))
    grants = db.session.execute(
        sa.select(BreakGlassGrant, User.email)
        .join(User, User.id == BreakGlassGrant.user_id)
        .order_by(BreakGlassGrant.id.desc())
        .limit(50)
    ).all()
    return render_template(
        "staff/admin_audit.html",
        events=events,
        grants=grants,
        accounts=accounts,
        labels=audit.ACTION_LABELS,
        selected=user_id,
        resource=resource,
        logout_form=LogoutForm(),
    )


@bp.get("/admin/alerts")
@staff_required("admin")
def alerts_page() -> str:
    """Decision 7: what needs someone on call (failed emails, dead-lettered tasks, emergency
    access...): unacknowledged first (so every alert the banner counts is here), then newest."""
    rows = db.session.execute(
        sa.select(Alert, User.email)
        .outerjoin(User, User.id == Alert.acknowledged_by_id)
        .order_by(Alert.acknowledged_at.is_not(None), Alert.id.desc())
        .limit(AlertAckForm.ALL_SHOWN_MAX)
    ).all()
    dead_letters = db.session.scalar(sa.select(sa.func.count()).select_from(DeadLetter)) or 0
    audit.record(audit.READ, "alert", None, detail="browse", commit=True)
    return render_template(
        "staff/admin_alerts.html",
        rows=rows,
        open_ids=" ".join(str(a.id) for a, _ in rows if a.acknowledged_at is None),
        dead_letters=dead_letters,
        ack_form=AlertAckForm(),
        logout_form=LogoutForm(),
    )


@bp.post("/admin/alerts/acknowledge")
@staff_required("admin")
def acknowledge_alerts() -> Response:
    """Acknowledge one alert, or all unacknowledged ones the page showed (their ids are posted,
    so an alert raised since the page was opened is not acknowledged unseen)."""
    form = AlertAckForm()
    if not form.validate_on_submit():
        raise BadRequest()
    done = alerts.acknowledge(form.alert_ids(), _user())
    if done:
        flash(f"{done} alert{'' if done == 1 else 's'} acknowledged.")
    else:
        flash("Those alerts were acknowledged already.")
    return redirect(url_for("staff.alerts_page"), code=303)


@bp.get("/admin/audit/users/<int:user_id>")
@staff_required("admin")
def access_report(user_id: int) -> str:
    account = db.session.get(User, user_id)
    if account is None:
        raise NotFound()
    rows = audit.access_report(user_id)
    audit.record(audit.READ, "access_report", user_id, commit=True)
    return render_template(
        "staff/admin_report.html",
        account=account,
        rows=rows,
        labels=audit.ACTION_LABELS,
        logout_form=LogoutForm(),
    )


@bp.get("/metrics")
@staff_required()
def metrics_page() -> str:
    data = metrics.compute()
    return render_template(
        "staff/metrics.html",
        data=data,
        kind_chart=metrics.stacked_bars(
            "Cases per week by kind",
            data.weeks,
            data.per_week_kind,
            "Stacked bars: number of new cases each week, split by case kind.",
        ),
        disease_chart=metrics.stacked_bars(
            "Cases per week by disease",
            data.weeks,
            data.per_week_disease,
            "Stacked bars: number of new cases each week, split by disease.",
        ),
        timing_chart=metrics.hbars(
            "Time to acknowledgement and decision", metrics.timing_items(data), " h"
        ),
        outcome_chart=metrics.hbars("Outcomes", metrics.outcome_items(data), "%"),
        timing_items=metrics.timing_items(data),
        outcome_items=metrics.outcome_items(data),
        logout_form=LogoutForm(),
    )


@bp.get("/metrics/export.csv")
@staff_required("admin")
@recent_auth_required()
@throttle.exports
def metrics_export() -> Response:
    body = metrics.export_csv()
    audit.record(audit.EXPORT, "referral", None, detail="metrics_csv", commit=True)
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="cases.csv"'},
    )
