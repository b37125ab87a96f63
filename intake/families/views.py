"""Thin views for families: validate, call the service, Post/Redirect/Get.

They share the physician form's request checks, file checks and submit handling
(:mod:`intake.public.views`), so every public form behaves the same on bad input.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import current_app, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from intake.domain.reference import format_reference
from intake.errors import RESUBMIT_VIEWS, SHOW_AGAIN_ON_LIMIT
from intake.extensions import limiter
from intake.families import bp
from intake.forms.family import (
    FAMILY_DOCUMENT_SLOTS,
    MESSAGE_REQUIRED,
    MESSAGE_SECTIONS,
    SECOND_OPINION_REQUIRED,
    SECOND_OPINION_SECTIONS,
    MessageForm,
    SecondOpinionForm,
)
from intake.public.views import (
    collect_files,
    request_problems,
    store_and_confirm,
    with_files_notice,
)
from intake.services import authorization
from intake.services.families import submit_message, submit_second_opinion
from intake.services.referrals import Submission

log = logging.getLogger("intake.families")

SECOND_OPINION_MULTI = {"contact_methods"} | {f"doc_{slot}" for slot, _l in FAMILY_DOCUMENT_SLOTS}
MESSAGE_MULTI = {"contact_methods"}


def _limit() -> str:
    return str(current_app.config["REFERRAL_RATE_LIMIT"])


def _locale() -> str:
    return str(get_locale() or "en")


@bp.route("/second-opinion", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
def second_opinion() -> Response | tuple[str, int] | str:
    form = SecondOpinionForm()
    if request.method == "GET":
        form.submission_id.data = str(uuid.uuid4())
        return _render_second_opinion(form)[0]

    problems = request_problems(form, SECOND_OPINION_MULTI)
    fields_ok = form.validate_on_submit()
    files = collect_files(form, FAMILY_DOCUMENT_SLOTS, form.doc_records)
    if files is not None and form.records_choice.data == "upload" and not files:
        form.doc_records.errors = [
            *form.doc_records.errors,
            _("Attach the records, or choose that we ask your child's doctors for them."),
        ]
        files = None
    if problems or not fields_ok or files is None:
        log.info("rejected_submission form=second_opinion fields=%s", sorted(form.errors))
        return _render_second_opinion(form, problems=problems, status=422)

    submission = Submission(
        submission_id=form.submission_id.data,
        answers=form.answers(),
        files=files,
        language=form.email_language(),
    )
    return store_and_confirm(
        lambda: submit_second_opinion(
            submission,
            disease=form.disease(),
            signer_name=form.signature_name.data,
            signer_ip=request.remote_addr,
            authorization_language=_locale(),
        ),
        form,
        lambda problems, status: _render_second_opinion(form, problems=problems, status=status),
        "families.second_opinion_submitted",
    )


@bp.get("/second-opinion/submitted")
def second_opinion_submitted() -> Response | str:
    reference = session.get("confirmed_reference")
    if not reference:
        return redirect(url_for("families.second_opinion"))
    return render_template(
        "families/second_opinion_submitted.html", reference=format_reference(reference)
    )


@bp.route("/message", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
def message() -> Response | tuple[str, int] | str:
    form = MessageForm()
    if request.method == "GET":
        form.submission_id.data = str(uuid.uuid4())
        return _render_message(form)[0]

    problems = request_problems(form, MESSAGE_MULTI)
    if problems or not form.validate_on_submit():
        log.info("rejected_submission form=message fields=%s", sorted(form.errors))
        return _render_message(form, problems=problems, status=422)
    submission = Submission(
        submission_id=form.submission_id.data,
        answers=form.answers(),
        language=form.email_language(),
    )
    return store_and_confirm(
        lambda: submit_message(submission),
        form,
        lambda problems, status: _render_message(form, problems=problems, status=status),
        "families.message_sent",
    )


@bp.get("/message/sent")
def message_sent() -> Response | str:
    reference = session.get("confirmed_reference")
    if not reference:
        return redirect(url_for("families.message"))
    return render_template("families/message_sent.html", reference=format_reference(reference))


def _render_second_opinion(
    form: SecondOpinionForm, problems: list[str] | None = None, status: int = 200
) -> tuple[str, int]:
    return render_template(
        "families/second_opinion.html",
        form=form,
        sections=SECOND_OPINION_SECTIONS,
        required_fields=SECOND_OPINION_REQUIRED,
        document_fields=[f"doc_{slot}" for slot, _label in FAMILY_DOCUMENT_SLOTS],
        authorization_sections=authorization.sections(
            _locale(), current_app.config["PROGRAM_NAME"]
        ),
        problems=with_files_notice(problems, status),
        max_upload_mb=current_app.config["MAX_UPLOAD_MB"],
        max_files=current_app.config["MAX_UPLOAD_FILES"],
    ), status


def _render_message(
    form: MessageForm, problems: list[str] | None = None, status: int = 200
) -> tuple[str, int]:
    return render_template(
        "families/message.html",
        form=form,
        sections=MESSAGE_SECTIONS,
        required_fields=MESSAGE_REQUIRED,
        problems=problems or [],
    ), status


def _resubmit(form_class: Any, render: Any) -> tuple[str, int]:
    """The session or token expired: show the form again with what the family typed."""
    form = form_class(meta={"csrf": True})
    try:
        uuid.UUID(str(form.submission_id.data))
    except ValueError:
        form.submission_id.data = str(uuid.uuid4())
    return render(
        form,
        problems=[
            _(
                "Your session expired before the form was sent, so nothing was saved. Your "
                "answers are below: check them, attach any files again and send the form."
            )
        ],
        status=400,
    )


RESUBMIT_VIEWS["families.second_opinion"] = lambda: _resubmit(
    SecondOpinionForm, _render_second_opinion
)
RESUBMIT_VIEWS["families.message"] = lambda: _resubmit(MessageForm, _render_message)


def _show_again(form_class: Any, render: Any, problem: str) -> tuple[str, int]:
    """The form as it was sent, with ``problem`` above it (nothing was stored)."""
    form = form_class(meta={"csrf": True})
    try:
        uuid.UUID(str(form.submission_id.data))
    except ValueError:
        form.submission_id.data = str(uuid.uuid4())
    return render(form, problems=[problem], status=429)  # type: ignore[no-any-return]


SHOW_AGAIN_ON_LIMIT["families.second_opinion"] = lambda problem: _show_again(
    SecondOpinionForm, _render_second_opinion, problem
)
SHOW_AGAIN_ON_LIMIT["families.message"] = lambda problem: _show_again(
    MessageForm, _render_message, problem
)
