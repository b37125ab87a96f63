"""Thin views: validate, call the service, Post/Redirect/Get."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from flask import (
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from intake.domain.files import UploadError
from intake.domain.reference import format_reference
from intake.errors import RESUBMIT_VIEWS, SHOW_AGAIN_ON_LIMIT
from intake.extensions import db, limiter
from intake.forms.referral import DOCUMENT_SLOTS, REQUIRED_FIELDS, SECTIONS, ReferralForm
from intake.forms.validators import upload_error_message
from intake.models import Referral
from intake.public import bp
from intake.services import health, scanner
from intake.services.db import is_database_unavailable, keep_loaded_after_commit
from intake.services.referrals import Submission, SubmissionConflict, UploadedFile, submit_referral
from intake.services.uploads import UploadStoreError

log = logging.getLogger("intake.public")

MULTI_VALUED = {"genetics", "relapse_sites"} | {f"doc_{slot}" for slot, _label in DOCUMENT_SLOTS}


def _referral_limit() -> str:
    return str(current_app.config["REFERRAL_RATE_LIMIT"])


@bp.get("/")
def index() -> str:
    return render_template("public/index.html")


@bp.route("/refer", methods=["GET", "POST"])
@limiter.limit(_referral_limit, methods=["POST"])
def refer() -> Response | tuple[str, int] | str:
    form = ReferralForm()
    if request.method == "GET":
        form.submission_id.data = str(uuid.uuid4())
        return _render_form(form)

    problems = request_problems(form, MULTI_VALUED)
    fields_ok = form.validate_on_submit()
    files = collect_files(form, DOCUMENT_SLOTS, form.doc_other)
    if problems or not fields_ok or files is None:
        log.info("rejected_submission reason=validation fields=%s", sorted(form.errors))
        return _render_form(form, problems=problems, status=422)

    submission = Submission(
        submission_id=form.submission_id.data,
        answers=form.answers(),
        files=files,
        language=_locale(),
    )
    return store_and_confirm(
        lambda: submit_referral(submission),
        form,
        lambda problems, status: _render_form(form, problems=problems, status=status),
        "public.referral_submitted",
    )


def request_problems(form: Any, multi_valued: set[str]) -> list[str]:
    """Checks every public form makes before validating: duplicate parameters (security.md
    §5 row 17), the honeypot (decision 8, a 400) and a well-formed submission id."""
    problems: list[str] = []
    posted = request.form  # one proxy lookup, not two per field (seen in the /refer profile)
    duplicated = [key for key in posted if len(posted.getlist(key)) > 1]
    if any(key not in multi_valued for key in duplicated):
        log.warning("rejected_submission reason=duplicate_parameters")
        problems.append(_("Some fields were sent more than once. Check the form and submit again."))
    if form.website.data:
        log.warning("rejected_submission reason=honeypot")
        abort(400)
    if not _valid_submission_id(form.submission_id.data):
        form.submission_id.data = str(uuid.uuid4())
    return problems


def store_and_confirm(
    store: Callable[[], tuple[Referral, bool]],
    form: Any,
    render: Callable[[list[str], int], tuple[str, int]],
    confirm_endpoint: str,
) -> Response | tuple[str, int]:
    """Run a submit use case; Post/Redirect/Get to its confirmation, or explain what failed
    (409 conflicting resubmission, 503 store or database down) with the answers kept."""
    try:
        # Confirm with the reference already in hand: no read after the commit that a
        # database restart could turn into a 503 for a stored referral (fault F7).
        with keep_loaded_after_commit(db.session()):
            referral, _created = store()
            reference = referral.reference
    except SubmissionConflict:
        form.submission_id.data = str(uuid.uuid4())
        return render(
            [
                _(
                    "This form was already submitted with different answers. Check the form "
                    "and submit it again to create a new referral."
                )
            ],
            409,
        )
    except UploadStoreError:
        log.error("upload_store_unavailable")
        return render(
            [_("We could not store your files just now. Nothing was saved; try again.")], 503
        )
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        db.session.rollback()
        log.error("database_unavailable_at_submit")
        return render(
            [
                _(
                    "We could not save your referral just now. Nothing was saved. Your answers "
                    "are below; please submit again in a minute (files must be attached again)."
                )
            ],
            503,
        )
    session["confirmed_reference"] = reference
    return redirect(url_for(confirm_endpoint), code=303)


@bp.get("/refer/submitted")
def referral_submitted() -> Response | str:
    reference = session.get("confirmed_reference")
    if not reference:
        return redirect(url_for("public.refer"))
    return render_template("public/submitted.html", reference=format_reference(reference))


def with_files_notice(problems: list[str] | None, status: int) -> list[str]:
    """A refused form never keeps its files (a browser cannot refill a file input): when files
    were attached, say so, or the corrected form is easily sent without them."""
    problems = list(problems or [])
    attached = request.method == "POST" and any(
        upload.filename for _name, upload in request.files.items(multi=True)
    )
    if attached and status in (409, 422):
        problems.append(
            _("The files you attached were not kept. Attach them again before you send the form.")
        )
    return problems


def _render_form(
    form: ReferralForm, problems: list[str] | None = None, status: int = 200
) -> tuple[str, int]:
    return render_template(
        "public/refer.html",
        form=form,
        sections=SECTIONS,
        document_slots=[(f"doc_{slot}", label) for slot, label in DOCUMENT_SLOTS],
        required_fields=REQUIRED_FIELDS,
        problems=with_files_notice(problems, status),
        max_upload_mb=current_app.config["MAX_UPLOAD_MB"],
        max_files=current_app.config["MAX_UPLOAD_FILES"],
    ), status


def _resubmit_after_csrf_failure() -> tuple[str, int]:
    """The session or token expired: show the form again with what the user typed."""
    form = ReferralForm(meta={"csrf": True})
    if not _valid_submission_id(form.submission_id.data):
        form.submission_id.data = str(uuid.uuid4())
    return _render_form(
        form,
        problems=[
            _(
                "Your session expired before the form was sent, so nothing was saved. Your "
                "answers are below: check them, attach any files again and submit."
            )
        ],
        status=400,
    )


RESUBMIT_VIEWS["public.refer"] = _resubmit_after_csrf_failure


def _show_again(problem: str) -> tuple[str, int]:
    """The form as it was sent, with ``problem`` above it (nothing was stored)."""
    form = ReferralForm(meta={"csrf": True})
    if not _valid_submission_id(form.submission_id.data):
        form.submission_id.data = str(uuid.uuid4())
    return _render_form(form, problems=[problem], status=429)


SHOW_AGAIN_ON_LIMIT["public.refer"] = _show_again


def _valid_submission_id(value: Any) -> bool:
    try:
        return str(uuid.UUID(str(value))) == str(value)
    except ValueError:
        return False


def collect_files(
    form: Any, slots: list[tuple[str, Any]], overflow_field: Any
) -> list[UploadedFile] | None:
    """Read and check every file attached to the ``doc_<slot>`` fields; None (with field
    errors) if any is refused. Too many files in all is reported on ``overflow_field``."""
    config = current_app.config
    max_bytes = config["MAX_UPLOAD_MB"] * 1024 * 1024
    accepted: list[UploadedFile] = []
    ok = True
    count = 0
    for slot, _label in slots:
        field = getattr(form, f"doc_{slot}")
        uploads: list[FileStorage] = [
            f for f in request.files.getlist(field.name) if f and (f.filename or f.content_length)
        ]
        for upload in uploads:
            count += 1
            data = upload.stream.read(max_bytes + 1)
            filename = upload.filename or "document"
            try:
                mime, display_name, scan_status = scanner.vet_upload(
                    data, filename, max_bytes=max_bytes, config=config
                )
            except UploadError as exc:
                message = upload_error_message(exc.code)
                field.errors = [
                    *field.errors,
                    str(message).format(name=_display(filename), mb=config["MAX_UPLOAD_MB"]),
                ]
                ok = False
                continue
            accepted.append(UploadedFile(slot, display_name, mime, data, scan_status))
    if count > config["MAX_UPLOAD_FILES"]:
        overflow_field.errors = [
            *overflow_field.errors,
            _("Attach at most %(count)d files in all.", count=config["MAX_UPLOAD_FILES"]),
        ]
        ok = False
    return accepted if ok else None


def _display(filename: str) -> str:
    from intake.domain.files import safe_display_name

    return safe_display_name(filename)


def _locale() -> str:
    from flask_babel import get_locale

    return str(get_locale() or "en")


@bp.get("/healthz")
@limiter.exempt
def healthz() -> tuple[Response, int]:
    report = health.report(current_app.config)
    return jsonify(report), 200 if report["ok"] else 503
