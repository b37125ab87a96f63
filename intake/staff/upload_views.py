"""The public page where a referrer or family adds requested documents, without an account.

Decision 15: GET /upload/<token> does not spend the link (mail scanners open links); it checks
the token, keeps the request id in a short session and redirects to the clean URL /upload, so
the token leaves the address bar and any Referer. The first successful POST spends it.

The page reads in the language the request email was written in (unless the visitor picks one
with ?lang=), offers the document categories that fit who was asked (a family's own, or the
clinical ones), and asks for an answer in words to every requested item that is not a document.
"""

from __future__ import annotations

import time
from typing import Any

from flask import current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from intake.domain.files import UploadError
from intake.domain.reference import format_reference
from intake.errors import RESUBMIT_VIEWS
from intake.extensions import db, limiter
from intake.forms.family import FAMILY_DOCUMENT_SLOTS
from intake.forms.referral import DOCUMENT_SLOTS
from intake.forms.validators import upload_error_message
from intake.i18n import use_link_language
from intake.models import InfoRequest, Referral
from intake.services import info_requests, scanner
from intake.services.referrals import UploadedFile
from intake.services.uploads import UploadStoreError
from intake.staff import upload_bp
from intake.staff.forms import UploadForm, upload_form_for

SESSION_SECONDS = 3600
# What the thanks page acknowledges ("documents" or "answers").
SENT_KEY = "upload_sent"


def _session_request() -> tuple[InfoRequest | None, bool]:
    """The still usable request this browser opened the link of, and whether the page has been
    open longer than SESSION_SECONDS (the link itself may well still work)."""
    request_id = session.get("upload_request")
    if not request_id:
        return None, False
    info_request = db.session.get(InfoRequest, int(request_id))
    if info_request is None or not info_requests.is_usable(info_request):
        return None, False
    started = float(session.get("upload_at", 0))
    return info_request, time.time() - started > SESSION_SECONDS


def _invalid() -> tuple[str, int]:
    return render_template("upload/invalid.html"), 410


def _closed() -> tuple[str, int]:
    """A link to the family's doctors that their authorization no longer covers."""
    return render_template("upload/invalid.html", closed=True), 410


def _timed_out(info_request: InfoRequest) -> tuple[str, int]:
    """The page was open too long; the emailed link still works until it expires."""
    return render_template(
        "upload/timed_out.html",
        minutes=SESSION_SECONDS // 60,
        expires_at=info_request.expires_at,
    ), (400 if request.method == "POST" else 200)


def _gate() -> tuple[InfoRequest | None, tuple[str, int] | None]:
    """The request behind this page, or the page to show instead of the form."""
    info_request, timed_out = _session_request()
    if info_request is None:
        return None, _invalid()
    if info_requests.closed_to_doctors(info_request) is not None:
        if request.method == "POST":
            # Before reading any file: nothing from this upload is stored.
            info_requests.close_refused_link(info_request.id)
        return None, _closed()
    if timed_out:
        return None, _timed_out(info_request)
    return info_request, None


def _slots(info_request: InfoRequest) -> list[tuple[str, Any]]:
    """The document categories that fit who was asked: a family's own, or the clinical ones."""
    return FAMILY_DOCUMENT_SLOTS if info_request.audience == "family" else DOCUMENT_SLOTS


def _form(info_request: InfoRequest) -> UploadForm:
    questions = [
        (code, _(info_requests.item_label(code, info_request.audience)))
        for code in info_requests.answer_items(info_request)
    ]
    return upload_form_for(questions)


@upload_bp.get("/upload/<token>")
@limiter.limit("30 per minute")
def open_link(token: str) -> Response | tuple[str, int]:
    info_request = info_requests.find_by_token(token)
    if info_request is None:
        return _invalid()
    if info_requests.closed_to_doctors(info_request) is not None:
        # No side effect on GET (mail scanners open links): the POST or the sweep closes it.
        return _closed()
    session["upload_request"] = info_request.id
    session["upload_at"] = time.time()
    use_link_language(info_requests.link_language(info_request))
    return redirect(url_for("upload.upload_page"), code=303)


@upload_bp.route("/upload", methods=["GET", "POST"])
@limiter.limit("30 per minute", methods=["POST"])
def upload_page() -> Response | str | tuple[str, int]:
    info_request, refusal = _gate()
    if refusal is not None:
        return refusal
    assert info_request is not None
    form = _form(info_request)
    errors: list[str] = []
    if request.method == "POST":
        # Files and answers are checked together, so every problem shows at once.
        answered = form.validate()
        files, chosen = _collect(_slots(info_request), errors)
        if not chosen and not errors and info_requests.asks_for_documents(info_request):
            errors.append(_("Attach at least one document."))
        if answered and not errors:
            answers = {
                code: str(form[f"answer_{code}"].data)
                for code in info_requests.answer_items(info_request)
            }
            try:
                info_requests.receive_upload(info_request.id, files, answers)
            except info_requests.LinkClosed:
                return _closed()
            except info_requests.LinkSpent:
                return _invalid()
            except UploadStoreError:
                errors.append(_("We could not store the files just now. Please try again."))
            else:
                session.pop("upload_request", None)
                session[SENT_KEY] = "answers" if answers else "documents"
                return redirect(url_for("upload.thanks"), code=303)
        if chosen:
            errors.append(_("Nothing was sent yet: attach your files again before you send."))
    status = 400 if errors or form.errors else 200
    return _render(info_request, form, errors, status)


def _render(
    info_request: InfoRequest, form: UploadForm, errors: list[str], status: int
) -> tuple[str, int]:
    referral = db.session.get(Referral, info_request.referral_id)
    assert referral is not None
    return render_template(
        "upload/upload.html",
        form=form,
        errors=errors,
        slots=_slots(info_request),
        questions=[f"answer_{code}" for code in info_requests.answer_items(info_request)],
        asks_for_documents=info_requests.asks_for_documents(info_request),
        items=[
            _(info_requests.item_label(code, info_request.audience)) for code in info_request.items
        ],
        reference=format_reference(referral.reference),
        expires_at=info_request.expires_at,
    ), status


def _resubmit_after_csrf_failure() -> tuple[str, int]:
    """The page's token expired or went missing: show the page again with what was typed,
    or say why it cannot be used."""
    info_request, refusal = _gate()
    if refusal is not None:
        return refusal
    assert info_request is not None
    message = _(
        "The page expired before it was sent, so nothing was saved. Check your answers "
        "below, attach any files again and send."
    )
    return _render(info_request, _form(info_request), [message], 400)


RESUBMIT_VIEWS["upload.upload_page"] = _resubmit_after_csrf_failure


def _collect(slots: list[tuple[str, Any]], errors: list[str]) -> tuple[list[UploadedFile], int]:
    """The accepted files of the page's slots, and how many files were chosen in all."""
    config = current_app.config
    max_bytes = config["MAX_UPLOAD_MB"] * 1024 * 1024
    accepted: list[UploadedFile] = []
    count = 0
    for slot, _label in slots:
        uploads: list[FileStorage] = [
            f for f in request.files.getlist(f"doc_{slot}") if f and f.filename
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
                safe_name = "".join(c for c in filename if c.isprintable())[:80]
                errors.append(str(message).format(name=safe_name, mb=config["MAX_UPLOAD_MB"]))
                continue
            accepted.append(UploadedFile(slot, display_name, mime, data, scan_status))
    if count > config["MAX_UPLOAD_FILES"]:
        errors.append(_("Attach at most %(count)d files in all.", count=config["MAX_UPLOAD_FILES"]))
    return accepted, count


@upload_bp.get("/upload/thanks")
def thanks() -> str:
    return render_template("upload/thanks.html", answers=session.pop(SENT_KEY, None) == "answers")
