"""The public page where a referrer or family adds requested documents, without an account.

Decision 15: GET /upload/<token> does not spend the link (mail scanners open links); it checks
the token, keeps the request id in a short session and redirects to the clean URL /upload, so
the token leaves the address bar and any Referer. The first successful POST spends it.
"""

from __future__ import annotations

import time

from flask import current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from intake.domain.files import UploadError
from intake.domain.reference import format_reference
from intake.extensions import db, limiter
from intake.forms.referral import DOCUMENT_SLOTS
from intake.forms.validators import upload_error_message
from intake.models import InfoRequest, Referral
from intake.services import info_requests, scanner
from intake.services.referrals import UploadedFile
from intake.services.uploads import UploadStoreError
from intake.staff import upload_bp
from intake.staff.forms import UploadForm

SESSION_SECONDS = 3600


def _current_request() -> InfoRequest | None:
    request_id = session.get("upload_request")
    started = float(session.get("upload_at", 0))
    if not request_id or time.time() - started > SESSION_SECONDS:
        return None
    info_request = db.session.get(InfoRequest, int(request_id))
    return info_request if info_requests.is_usable(info_request) else None


def _invalid() -> tuple[str, int]:
    return render_template("upload/invalid.html"), 410


def _closed() -> tuple[str, int]:
    """A link to the family's doctors that their authorization no longer covers."""
    return render_template("upload/invalid.html", closed=True), 410


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
    return redirect(url_for("upload.upload_page"), code=303)


@upload_bp.route("/upload", methods=["GET", "POST"])
@limiter.limit("30 per minute", methods=["POST"])
def upload_page() -> Response | str | tuple[str, int]:
    info_request = _current_request()
    if info_request is None:
        return _invalid()
    if info_requests.closed_to_doctors(info_request) is not None:
        if request.method == "POST":
            # Before reading any file: nothing from this upload is stored.
            info_requests.close_refused_link(info_request.id)
        return _closed()
    referral = db.session.get(Referral, info_request.referral_id)
    assert referral is not None
    form = UploadForm()
    errors: list[str] = []
    if request.method == "POST" and form.validate_on_submit():
        files = _collect(errors)
        if not files and not errors:
            errors.append(_("Attach at least one document."))
        if not errors:
            try:
                info_requests.receive_upload(info_request.id, files)
            except info_requests.LinkClosed:
                return _closed()
            except info_requests.LinkSpent:
                return _invalid()
            except UploadStoreError:
                errors.append(_("We could not store the files just now. Please try again."))
            else:
                session.pop("upload_request", None)
                return redirect(url_for("upload.thanks"), code=303)
    status = 400 if errors else 200
    return render_template(
        "upload/upload.html",
        form=form,
        errors=errors,
        slots=DOCUMENT_SLOTS,
        items=[_(info_requests.item_label(code)) for code in info_request.items],
        reference=format_reference(referral.reference),
        expires_at=info_request.expires_at,
    ), status


def _collect(errors: list[str]) -> list[UploadedFile]:
    config = current_app.config
    max_bytes = config["MAX_UPLOAD_MB"] * 1024 * 1024
    accepted: list[UploadedFile] = []
    count = 0
    for slot, _label in DOCUMENT_SLOTS:
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
    return accepted


@upload_bp.get("/upload/thanks")
def thanks() -> str:
    return render_template("upload/thanks.html")
