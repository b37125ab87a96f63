"""Work queue, case detail and case actions. Views stay thin: scope, validate, call a service."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from flask import (
    Response,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.exceptions import NotFound
from wtforms.fields.choices import SelectChoice

from intake.domain import messages, scan, statuses
from intake.domain.deadlines import TimeLeft, time_left
from intake.domain.reference import format_reference, normalize_reference
from intake.domain.triage import (
    CATEGORIES,
    CATEGORY_LABELS,
    HARD_FLAG_LABELS,
    MISSING_ITEM_LABELS,
    PRIORITY_LABELS,
    age_in_years,
)
from intake.extensions import db
from intake.forms.family import (
    MESSAGE_SECTIONS,
    SECOND_OPINION_SECTIONS,
    MessageForm,
    SecondOpinionForm,
)
from intake.forms.referral import SECTIONS, ReferralForm, as_choices
from intake.models import CaseNote, Document, InfoRequest, Notification, Referral, User
from intake.security import talisman
from intake.services import (
    alerts,
    audit,
    break_glass,
    casework,
    escalation,
    info_requests,
    near_match,
    notifications,
    queue,
    uploads,
)
from intake.services.auth import now
from intake.services.referrals import program_calendar
from intake.services.routing import CASE_KINDS
from intake.staff import bp, staff_required, throttle
from intake.staff.forms import (
    AssignForm,
    BreakGlassForm,
    InfoRequestForm,
    LogoutForm,
    NearMatchForm,
    NoteForm,
    StatusForm,
)

# The queue's message filter: unmatched messages, or messages in one state (decision 11).
MESSAGE_FILTERS = ("unmatched", *messages.MESSAGE_STATES)


def _user() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined,no-any-return]


QUEUE_SEARCH = "queue_search"  # session key of the queue's search text


@bp.post("/", endpoint="queue_search")
@staff_required()
def queue_search() -> Response:
    """The filter form posts here so a name searched for never appears in a URL (browser
    history, proxies, logs): the text goes into the session, the other filters into the URL."""
    text = " ".join(request.form.get("q", "").split())[:100]
    session[QUEUE_SEARCH] = text
    names = [f.name for f in dataclasses.fields(queue.QueueFilters) if f.name != "q"]
    args = {name: request.form.get(name, "")[:40] for name in names}
    args = {name: value for name, value in args.items() if value}
    if text:
        args["search"] = "1"
    return redirect(url_for("staff.queue", **args), code=303)


@bp.get("/", endpoint="queue")
@staff_required()
def queue_page() -> str:
    args = request.args
    # ?q= still works for links made by hand; the form's own search comes from the session.
    search = args.get("q") or (session.get(QUEUE_SEARCH, "") if args.get("search") == "1" else "")
    filters = queue.QueueFilters(
        status=args.get("status", "") if args.get("status", "") in statuses.ALL_STATUSES else "",
        kind=args.get("kind", "") if args.get("kind", "") in CASE_KINDS else "",
        category=args.get("category", "")[:40],
        priority=args.get("priority", "") if args.get("priority") in ("P1", "P2", "P3") else "",
        assignee=args.get("assignee", "")[:12],
        overdue=args.get("overdue") == "1",
        q=search[:100],
        message=args.get("message", "") if args.get("message") in MESSAGE_FILTERS else "",
    )
    page = queue.queue_page(
        _user(), filters, args.get("after"), int(current_app.config["QUEUE_PAGE_SIZE"])
    )
    html = render_template(
        "staff/queue.html",
        page=page,
        filters=filters,
        statuses=statuses,
        kinds=CASE_KINDS,
        categories=CATEGORIES,
        category_labels=CATEGORY_LABELS,
        staff=queue.staff_choices(),
        message_filters=MESSAGE_FILTERS,
        message_state_labels=messages.STATE_LABELS,
        logout_form=LogoutForm(),
    )
    # The queue shows patient names: each page viewed is an access, audited like a case view
    # (how many cases were listed; never the search text, which can be a name). After rendering:
    # the commit expires the loaded rows, and the template would reload each one.
    audit.record(
        audit.READ,
        "queue",
        None,
        detail=f"rows:{len(page.rows)}" + (":search" if filters.q else ""),
        commit=True,
    )
    return html


def _quarantine_message(scan_status: str) -> str:
    if scan_status == scan.INFECTED:
        return str(
            _("This file is quarantined: it contains a virus signature and is never served.")
        )
    if scan_status == scan.ACTIVE:
        return str(
            _(
                "This file is quarantined: it is a PDF with scripts or automatic actions and is "
                "never served. Ask the sender for a copy saved with Print to PDF."
            )
        )
    return str(_("This file is quarantined until a virus scan clears it. Try again later."))


def _display_value(form: FlaskForm, name: str, value: Any) -> str:
    """A stored answer as the form showed it (choice labels instead of codes)."""
    if value in (None, "", []):
        return ""
    field = form._fields.get(name)
    choices = _choice_labels(getattr(field, "choices", None))
    if isinstance(value, list):
        return ", ".join(choices.get(str(v), str(v)) for v in value)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return choices.get(str(value), str(value))


def _choice_labels(choices: Any) -> dict[str, str]:
    if not choices:
        return {}
    if isinstance(choices, dict):  # option groups
        choices = [item for group in choices.values() for item in group]
    labels = {}
    for item in choices:
        if isinstance(item, SelectChoice):
            labels[str(item.value)] = str(item.label)
        elif isinstance(item, (tuple, list)) and len(item) >= 2:
            labels[str(item[0])] = str(item[1])
    return labels


# Each kind of case is shown grouped as on the form it came from.
FORMS_BY_KIND: dict[str, tuple[type[FlaskForm], list[tuple[Any, list[str]]]]] = {
    "physician_referral": (ReferralForm, SECTIONS),
    "second_opinion": (SecondOpinionForm, SECOND_OPINION_SECTIONS),
    "existing_patient_message": (MessageForm, MESSAGE_SECTIONS),
}


def _sections(referral: Referral) -> list[tuple[str, list[tuple[str, str, str]]]]:
    form_class, sections = FORMS_BY_KIND.get(referral.kind, FORMS_BY_KIND["physician_referral"])
    form = form_class(formdata=None, meta={"csrf": False})
    grouped = []
    seen: set[str] = set()
    for title, names in sections:
        rows = []
        for name in names:
            seen.add(name)
            field = form._fields.get(name)
            label = str(field.label.text) if field is not None else name.replace("_", " ")
            rows.append((name, label, _display_value(form, name, referral.answers.get(name))))
        grouped.append((str(title), rows))
    extra = [
        (name, name.replace("_", " ").capitalize(), _display_value(form, name, value))
        for name, value in sorted(referral.answers.items())
        if name not in seen
        and name not in ("csrf_token", "submission_id", info_requests.ANSWERS_KEY)
    ]
    if extra:
        grouped.append(("Other answers", extra))
    return grouped


def _timeline(referral: Referral) -> list[dict[str, Any]]:
    notifications = {
        n.kind: n
        for n in db.session.scalars(
            sa.select(Notification).where(Notification.referral_id == referral.id)
        )
    }
    items = []
    for event in referral.events:
        detail = dict(event.detail or {})
        entry = {
            "at": event.at,
            "actor": event.actor,
            "action": event.action,
            "event": event,
            "detail": detail,
            "delivery": None,
        }
        if event.action in ("email_sent", "email_failed"):
            notification = notifications.get(str(detail.get("notification")))
            entry["delivery"] = notification.status if notification else None
        items.append(entry)
    return items


# The timeline's emails by kind (the part of the kind before the first dot).
NOTIFICATION_LABELS: dict[str, str] = {
    notifications.COORDINATOR_NEW: "New-case alert to the coordinators",
    notifications.REFERRER_ACK: "Acknowledgement to the referrer",
    notifications.FAMILY_ACK: "Acknowledgement to the family",
    notifications.FAMILY_MESSAGE_ACK: "Acknowledgement of the message to the family",
    notifications.CARE_TEAM_NEW: "New-message alert to the care team",
    notifications.FAMILY_MESSAGE_ANSWERED: "'Your care team answered' notice to the family",
    info_requests.INFO_KIND: "Request for more information",
    info_requests.REMINDER_KIND: "Reminder of the request for more information",
    info_requests.RECEIVED_KIND: "Notice to staff: information arrived through an upload link",
    escalation.KIND: "Deadline escalation to staff",
    "status": "Status update",
}
_AUDIENCES = {"referrer": "to the referrer", "family": "to the family"}


def notification_label(kind: str) -> str:
    """A notification kind as staff read it, e.g. ``status.12.family`` is "Status update to
    the family"; an unknown kind is shown as it is."""
    base, _dot, rest = kind.partition(".")
    label = NOTIFICATION_LABELS.get(base)
    if label is None:
        return kind
    audience = rest.rsplit(".", 1)[-1] if base == "status" else ""
    return f"{label} {_AUDIENCES[audience]}" if audience in _AUDIENCES else label


def _patient_age(referral: Referral) -> int | None:
    """Whole years on the program-local receipt date, as triage counts them."""
    if referral.patient_dob is None:
        return None
    received_on = program_calendar().local_date(referral.created_at)
    return age_in_years(referral.patient_dob, received_on)


def _status_confirmations(choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """What each offered final move or decision does, for the confirmation box."""
    return [
        (label, statuses.confirmation_text(target))
        for target, label in choices
        if target in statuses.CONFIRM_REQUIRED
    ]


def _detail_context(referral: Referral, user: User, **forms: Any) -> dict[str, Any]:
    from intake.staff import document_views, family_views

    notes = list(
        db.session.scalars(
            sa.select(CaseNote).where(CaseNote.referral_id == referral.id).order_by(CaseNote.at)
        )
    )
    authors = {u.id: u.email for u in queue.staff_choices()}
    assign_form = forms.get("assign_form") or _assign_form(referral)
    if not forms.get("assign_form"):
        assign_form.assignee.data = str(referral.assignee_id or "")
        assign_form.reviewer.data = str(referral.reviewer_id or "")
    status_form = forms.get("status_form") or StatusForm()
    status_choices = _status_choices(referral, user)
    status_form.target.choices = as_choices(status_choices)
    info_form = forms.get("info_form") or _info_form(referral)
    if not forms.get("info_form"):
        info_form.items.data = info_requests.default_items(referral)
    open_requests = list(
        db.session.scalars(
            sa.select(InfoRequest)
            .where(InfoRequest.referral_id == referral.id)
            .order_by(InfoRequest.created_at.desc())
        )
    )
    return {
        "referral": referral,
        "reference": format_reference(referral.reference),
        # A family's message: no eligibility triage, missing items or reviewing physician.
        "is_message": referral.kind == casework.MESSAGE_KIND,
        "sections": _sections(referral),
        "timeline": _timeline(referral),
        "notes": notes,
        # Which notes record contact, and how (decision 4): kept on their timeline entries.
        "note_contacts": {
            e.detail["note_id"]: casework.CONTACT_CHANNELS.get(
                e.detail["contact"], e.detail["contact"]
            )
            for e in referral.events
            if e.action == "note_added" and (e.detail or {}).get("contact")
        },
        "authors": authors,
        "documents": referral.documents,
        "linked": queue.linked_cases(user, referral),
        "near_matches": near_match.offer_for(user, referral),
        "near_match_form": NearMatchForm(),
        "missing": [(code, MISSING_ITEM_LABELS.get(code, code)) for code in referral.missing_items],
        "priority_label": PRIORITY_LABELS.get(referral.triage_priority or "", ""),
        # domain.md 14: a P1 still waiting for the physician's decision is bannered.
        "urgent": referral.triage_priority == "P1"
        and referral.status in statuses.REVIEW_CLOCK | {statuses.NEEDS_INFO},
        "review_left": _review_left(referral),
        # Asking the family: what they are not asked (those go to the oncologist).
        "family_audience": "family" in dict(info_requests.audience_choices(referral)),
        "clinical_missing": [
            info_requests.item_label(code)
            for code in info_requests.clinical_items(list(referral.missing_items))
        ],
        "category_label": CATEGORY_LABELS.get(referral.triage_category or "", ""),
        "flag_labels": [HARD_FLAG_LABELS.get(f, f) for f in referral.hard_flags or []],
        "patient_age": _patient_age(referral),
        "format_reference": format_reference,
        "notification_label": notification_label,
        "status_confirmations": _status_confirmations(status_choices),
        "status_labels": statuses.STATUS_LABELS,
        "decision_reasons": statuses.DECISION_REASONS,
        "assignee": db.session.get(User, referral.assignee_id) if referral.assignee_id else None,
        "reviewer": db.session.get(User, referral.reviewer_id) if referral.reviewer_id else None,
        "assign_form": assign_form,
        "note_form": forms.get("note_form") or NoteForm(),
        "status_form": status_form,
        "info_form": info_form,
        "info_requests": open_requests,
        # Answers in words sent through the upload links, by link.
        "info_answers": info_requests.received_answers(referral),
        "item_label": info_requests.item_label,
        "can_request_info": referral.kind != info_requests.MESSAGE_KIND
        and statuses.NEEDS_INFO in statuses.TRANSITIONS.get(referral.status, ()),
        "logout_form": LogoutForm(),
        "status_error": forms.get("status_error"),
        # Family paths: the message's state and the records-release authorization.
        **family_views.case_extras(referral, user, forms),
        "documents_form": document_views.documents_form(referral, forms.get("documents_form")),
    }


def _review_left(referral: Referral) -> TimeLeft | None:
    """The review clock's time left as the queue shows it, while it runs (decision 4)."""
    if (
        referral.review_due_at is None
        or referral.clock_paused_at is not None
        or referral.status not in statuses.REVIEW_CLOCK
    ):
        return None
    return time_left(program_calendar(), now(), referral.review_due_at)


def _assign_form(referral: Referral) -> AssignForm:
    """The assignment form offering the active admins and coordinators who can see the case
    (a coordinator outside the case's queue would be handed a case they cannot open), and the
    reviewers (assigning a reviewer is what lets them see it)."""
    form = AssignForm()
    coordinators = [
        u
        for u in queue.staff_choices()
        if u.role == "admin" or (u.role == "coordinator" and referral.kind in (u.queues or []))
    ]
    nobody = [("", "Nobody")]
    form.assignee.choices = as_choices(nobody + [(str(u.id), u.email) for u in coordinators])
    form.reviewer.choices = as_choices(
        nobody + [(str(u.id), u.email) for u in queue.staff_choices("reviewer")]
    )
    return form


def _info_form(referral: Referral) -> InfoRequestForm:
    form = InfoRequestForm()
    form.items.choices = as_choices(info_requests.item_choices(referral))
    form.audience.choices = as_choices(info_requests.audience_choices(referral))
    return form


def _status_choices(referral: Referral, user: User) -> list[tuple[str, str]]:
    allowed = statuses.allowed_next(referral.status, user.role)
    return [(s, statuses.STATUS_LABELS[s]) for s in allowed if s != statuses.NEEDS_INFO]


@bp.route("/break-glass", methods=["GET", "POST"])
@staff_required("coordinator", "reviewer")
def break_glass_page() -> Response | str | tuple[str, int]:
    """Emergency access to one case outside the user's scope, for a short time (H-2)."""
    form = BreakGlassForm()
    if form.validate_on_submit():
        reference = normalize_reference(form.reference.data or "")
        assert reference is not None  # validated
        break_glass.request_access(_user(), reference, form.reason.data or "")
        flash(
            f"Emergency access granted for {break_glass.GRANT_MINUTES} minutes. An alert has "
            "been raised for the admins and every view is recorded."
        )
        return redirect(url_for("staff.case_detail", reference=reference), code=303)
    status = 400 if request.method == "POST" else 200
    return render_template(
        "staff/break_glass.html",
        form=form,
        minutes=break_glass.GRANT_MINUTES,
        logout_form=LogoutForm(),
    ), status


@bp.get("/referrals/<reference>")
@staff_required()
def case_detail(reference: str) -> str:
    user = _user()
    referral = queue.get_referral_for(user, reference, log_read=True)
    return render_template("staff/case.html", **_detail_context(referral, user))


def _rerender(referral: Referral, status: int = 400, **forms: Any) -> tuple[str, int]:
    return render_template("staff/case.html", **_detail_context(referral, _user(), **forms)), status


def _back(referral: Referral) -> Response:
    return redirect(url_for("staff.case_detail", reference=referral.reference), code=303)


@bp.post("/referrals/<reference>/assign")
@staff_required()
def assign(reference: str) -> Response | tuple[str, int]:
    user = _user()
    referral = queue.get_referral_for(user, reference)
    form = _assign_form(referral)
    if request.form.get("assign_to_me"):
        form.assignee.data = str(user.id)
    if not form.validate_on_submit():
        return _rerender(referral, assign_form=form)
    assignee = db.session.get(User, int(form.assignee.data)) if form.assignee.data else None
    reviewer = db.session.get(User, int(form.reviewer.data)) if form.reviewer.data else None
    casework.assign(referral, user, assignee, reviewer)
    if not queue.can_see(user, referral):
        # e.g. a reviewer who handed the review on: the case page would now be a 404.
        shown = format_reference(referral.reference)
        flash(f"Assignment saved. Case {shown} is no longer in your view.")
        return redirect(url_for("staff.queue"), code=303)
    flash("Assignment saved.")
    return _back(referral)


@bp.post("/referrals/<reference>/notes")
@staff_required()
def add_note(reference: str) -> Response | tuple[str, int]:
    user = _user()
    referral = queue.get_referral_for(user, reference)
    form = NoteForm()
    if not form.validate_on_submit():
        return _rerender(referral, note_form=form)
    contact = form.channel.data if form.contact.data else None
    casework.add_note(referral, user, form.body.data or "", contact=contact or None)
    flash("Note added as a contact with the referrer or family." if contact else "Note added.")
    return _back(referral)


def _record_refusal(referral: Referral, user: User, error: statuses.TransitionError) -> None:
    """Undo the attempted move and keep a failure row in the audit trail."""
    db.session.rollback()
    audit.record(
        audit.UPDATE,
        "referral",
        referral.reference,
        outcome="failure",
        detail=f"status:{error.code}",
        user=user,
        commit=True,
    )


@bp.post("/referrals/<reference>/status")
@staff_required()
def change_status(reference: str) -> Response | tuple[str, int]:
    user = _user()
    referral = queue.get_referral_for(user, reference)
    form = StatusForm()
    # Every known status is accepted by the form; the state machine gives the clear message.
    form.target.choices = as_choices([(s, s) for s in statuses.ALL_STATUSES])
    if not form.validate_on_submit():
        return _rerender(referral, status_form=form)
    target = form.target.data or ""
    try:
        if target in statuses.CONFIRM_REQUIRED and not form.confirm.data:
            # A refused move says why first; a possible one waits for the ticked box.
            casework.check_status_change(referral, user, target, form.reason_code.data)
            form.confirm.errors = [
                f"Tick the box to confirm “{statuses.STATUS_LABELS[target]}”: "
                + statuses.confirmation_text(target)
            ]
            return _rerender(referral, status_form=form)
        casework.change_status(referral, user, target, form.reason_code.data)
    except statuses.TransitionError as error:
        _record_refusal(referral, user, error)
        form.target.errors = [error.message]
        return _rerender(referral, 409, status_form=form, status_error=error.message)
    flash(f"Status changed to {statuses.STATUS_LABELS[form.target.data or '']}.")
    return _back(referral)


@bp.post("/referrals/<reference>/request-info")
@staff_required()
def request_info(reference: str) -> Response | tuple[str, int]:
    user = _user()
    referral = queue.get_referral_for(user, reference)
    try:
        # Before the form: a message case has nothing to pick, the refusal is the answer.
        info_requests.check_can_request(referral)
    except statuses.TransitionError as error:
        _record_refusal(referral, user, error)
        return _rerender(referral, 409, status_error=error.message)
    form = _info_form(referral)
    if not form.validate_on_submit():
        return _rerender(referral, info_form=form)
    items = list(form.items.data or [])
    refusal = (
        info_requests.family_refusal(referral, items) if form.audience.data == "family" else None
    )
    if refusal:
        form.items.errors = [refusal]
        return _rerender(referral, info_form=form)
    try:
        info_requests.request_info(referral, user, items, form.audience.data)
    except statuses.TransitionError as error:
        _record_refusal(referral, user, error)
        form.items.errors = [error.message]
        # Shown above the actions too: the form itself is hidden when the move is impossible.
        return _rerender(referral, 409, info_form=form, status_error=error.message)
    who = info_requests.AUDIENCE_NAMES.get(form.audience.data or "", "the referring clinician")
    flash(f"Request sent: {who} gets an email with an upload link; the review clock is paused.")
    return _back(referral)


# Linking two cases, or saying they are different children, changes what the care team sees
# together: coordinators and admins decide; reviewers see the offer only.
NEAR_MATCH_ROLES = ("coordinator", "admin")


def _near_match_decision(
    reference: str, decide: Callable[[Referral, Referral, User], str]
) -> Response | tuple[str, int]:
    user = _user()
    referral = queue.get_referral_for(user, reference)
    form = NearMatchForm()
    if not form.validate_on_submit():
        return _rerender(
            referral, status_error="Choose a case under “Possible same child” and try again."
        )
    # Out of the user's scope: 404 and a logged denial, like opening that case.
    other = queue.get_referral_for(user, form.candidate.data or "")
    try:
        done = decide(referral, other, user)
    except near_match.NearMatchRefused as error:
        near_match.record_refusal(referral, user, error)
        return _rerender(referral, 409, status_error=error.message)
    flash(done)
    return _back(referral)


def _link(referral: Referral, other: Referral, user: User) -> str:
    earlier, later = near_match.link(referral, other, user)
    return (
        f"Linked as the same child: case {format_reference(later.reference)} now points at "
        f"case {format_reference(earlier.reference)}."
    )


def _dismiss(referral: Referral, other: Referral, user: User) -> str:
    near_match.dismiss(referral, other, user)
    return (
        f"Recorded as a different child: case {format_reference(other.reference)} will not be "
        "offered again."
    )


@bp.post("/referrals/<reference>/near-match/link")
@staff_required(*NEAR_MATCH_ROLES)
def link_near_match(reference: str) -> Response | tuple[str, int]:
    return _near_match_decision(reference, _link)


@bp.post("/referrals/<reference>/near-match/dismiss")
@staff_required(*NEAR_MATCH_ROLES)
def dismiss_near_match(reference: str) -> Response | tuple[str, int]:
    return _near_match_decision(reference, _dismiss)


@bp.get("/referrals/<reference>/documents/<document_id>")
@talisman(content_security_policy="default-src 'none'; sandbox")
@staff_required()
@throttle.downloads
def download(reference: str, document_id: str) -> Response | tuple[str, int]:
    user = _user()
    referral = queue.get_referral_for(user, reference)
    document = db.session.scalar(
        sa.select(Document).where(
            Document.id == document_id[:36], Document.referral_id == referral.id
        )
    )
    if document is None:
        audit.record(
            audit.DENIED, "document", document_id[:64], outcome="denied", user=user, commit=True
        )
        raise NotFound()
    if document.scan_status != scan.CLEAN:
        # Decision 18: fail closed. A file without a clean verdict (scanner down, or a
        # signature found on rescan) is never served, whoever asks.
        audit.record(
            audit.DENIED,
            "document",
            document.id,
            outcome="denied",
            detail=f"quarantined:{document.scan_status}",
            user=user,
            commit=True,
        )
        return render_template(
            "staff/error.html",
            code=404,
            message=_quarantine_message(document.scan_status),
        ), 404
    try:
        data = uploads.load(document.storage_key, document.sha256, current_app.config)
    except (OSError, ValueError, InvalidTag):
        # H-6: a missing or tampered blob fails closed and somebody is told.
        alerts.raise_alert(
            code="document_integrity",
            dedupe_key=f"document_integrity:{document.id}",
            referral_id=referral.id,
            message=f"Document {document.id} failed its integrity check on download.",
        )
        audit.record(
            audit.READ,
            "document",
            document.id,
            outcome="failure",
            detail="integrity",
            user=user,
            commit=True,
        )
        raise NotFound() from None
    audit.record(
        audit.READ, "document", document.id, detail=referral.reference, user=user, commit=True
    )
    response = make_response(data)
    response.headers["Content-Type"] = "application/octet-stream"
    ascii_name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\;' else "_"
        for c in document.display_name
    )
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(document.display_name)}"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Document-SHA256"] = document.sha256
    return response
