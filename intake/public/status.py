"""`/status`: families and referrers check where a request stands (decision 1).

Reference and date of birth travel in the POST body only. A wrong date, an unknown reference
and a locked reference get one identical reply; the page shows the status in plain words,
what happens next and whom to call, and nothing clinical.
"""

from __future__ import annotations

import logging
from datetime import date

import sqlalchemy as sa
from flask import current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import RequestEntityTooLarge

from intake.domain import statuses
from intake.domain.reference import format_reference, normalize_reference
from intake.errors import RESUBMIT_VIEWS
from intake.extensions import db, limiter
from intake.forms.status import StatusLookupForm
from intake.models import FamilyMessage, Referral
from intake.public import bp
from intake.services.status_lookup import find_case

log = logging.getLogger("intake.public.status")

# Per status: what it means, and what happens next, for a family reading on a phone.
# Declined and redirected say only that the doctor has been contacted (decision 9).
FAMILY_STATUS: dict[str, tuple[LazyString, LazyString]] = {
    statuses.RECEIVED: (
        _l("We have received the request."),
        _l("A nurse coordinator will contact you within 1 business day."),
    ),
    statuses.UNDER_REVIEW: (
        _l("Our team is reviewing the request."),
        _l(
            "A program physician is looking at the information we have. We will contact you "
            "if we need anything else and when the review is finished."
        ),
    ),
    statuses.NEEDS_INFO: (
        _l("We are waiting for more information or records."),
        _l(
            "We have sent a message explaining what is missing and how to send it. The review "
            "continues as soon as we receive it. If you did not get the message, call us."
        ),
    ),
    statuses.ACCEPTED: (
        _l("The program can see the patient."),
        _l("A coordinator will call you to plan the next steps, such as a first visit."),
    ),
    statuses.CONSULT_SCHEDULED: (
        _l("A consultation has been scheduled."),
        _l("A coordinator will confirm the date and time with you and tell you what to bring."),
    ),
    statuses.DECLINED: (
        _l("The review is complete."),
        _l(
            "A program physician has finished the review and has contacted the patient's "
            "doctor to talk about the outcome and the options."
        ),
    ),
    statuses.REDIRECTED: (
        _l("The review is complete."),
        _l(
            "A program physician has finished the review and has contacted the patient's "
            "doctor to talk about the outcome and the options."
        ),
    ),
    statuses.WITHDRAWN: (
        _l("The request has been withdrawn."),
        _l("Nothing more will happen with this request. You can contact us at any time."),
    ),
    statuses.CLOSED_NO_RESPONSE: (
        _l("The request was closed because we did not hear back."),
        _l("You can call us at any time to open it again."),
    ),
    statuses.CLOSED: (
        _l("The request is closed."),
        _l("If you have any questions, call us."),
    ),
}


# A family's message to the care team has its own states (decision 11).
MESSAGE_STATE: dict[str, tuple[LazyString, LazyString]] = {
    "new": (
        _l("Your message has reached the care team."),
        _l("A member of the care team will contact you, usually within 1 business day."),
    ),
    "in_progress": (
        _l("The care team is working on your message."),
        _l("A member of the care team will contact you if they need anything else."),
    ),
    "answered": (
        _l("The care team has answered your message."),
        _l("If you did not receive the answer, call us."),
    ),
    "closed": (
        _l("This message is closed."),
        _l("To ask something new, send another message or call us."),
    ),
}


def plain_status(referral: Referral) -> tuple[LazyString, LazyString]:
    """What the status means and what happens next, in plain words."""
    if referral.kind == "existing_patient_message":
        state = db.session.scalar(
            sa.select(FamilyMessage.state).where(FamilyMessage.referral_id == referral.id)
        )
        return MESSAGE_STATE[state or "new"]
    return FAMILY_STATUS[referral.status]


def _ip_limit() -> str:
    return str(current_app.config["STATUS_RATE_LIMIT"])


def _reference_limit() -> str:
    return str(current_app.config["STATUS_REFERENCE_RATE_LIMIT"])


def _reference_key() -> str:
    """Rate-limit key: the canonical reference, so dashes or case do not dodge the limit."""
    try:
        typed = request.form.get("reference", "")
    except RequestEntityTooLarge:
        typed = ""  # the view answers 413; the limiter must not take it for a storage error
    canonical = normalize_reference(typed)
    if canonical is None:
        # Typos are answered by the form; they must not share (and use up) one bucket.
        return f"status-ref:malformed:{get_remote_address()}"
    return f"status-ref:{canonical}"


@bp.route("/status", methods=["GET", "POST"])
@limiter.limit(_ip_limit, methods=["POST"])
@limiter.limit(
    _reference_limit, methods=["POST"], key_func=_reference_key, scope="status-reference"
)
def status() -> tuple[str, int] | str:
    form = StatusLookupForm()
    if request.method == "GET":
        return _render_form(form)
    if not form.validate_on_submit():
        return _render_form(form, status=422)
    referral = find_case(form.reference.data, date.fromisoformat(form.dob.data), current_app.config)
    if referral is None:
        # Nothing the user typed is shown again, so every kind of mismatch reads the same.
        return _render_form(StatusLookupForm(formdata=None), not_found=True)
    meaning, next_step = plain_status(referral)
    return render_template(
        "public/status_result.html",
        reference=format_reference(referral.reference),
        meaning=meaning,
        next_step=next_step,
    )


def _render_form(
    form: StatusLookupForm,
    *,
    not_found: bool = False,
    problems: list[str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    return render_template(
        "public/status.html", form=form, not_found=not_found, problems=problems or []
    ), status


def _resubmit_after_csrf_failure() -> tuple[str, int]:
    return _render_form(
        StatusLookupForm(formdata=None),
        problems=[
            _("Your session expired before the form was sent. Please enter the details again.")
        ],
        status=400,
    )


RESUBMIT_VIEWS["public.status"] = _resubmit_after_csrf_failure
