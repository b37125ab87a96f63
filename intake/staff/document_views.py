"""Documents that reach the program another way (fax, email, post), attached to a case by a
coordinator. The same checks as the public forms' files (size, type by content, virus scan,
encrypted at rest), the same case-scope and role checks as every case action."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from flask import flash
from werkzeug.wrappers import Response

from intake.forms.family import FAMILY_DOCUMENT_SLOTS
from intake.forms.referral import DOCUMENT_SLOTS, as_choices
from intake.models import Referral
from intake.public.views import collect_files
from intake.services import casework, queue
from intake.services.uploads import UploadStoreError
from intake.staff import bp, staff_required
from intake.staff.case_views import _back, _rerender, _user
from intake.staff.forms import StaffDocumentsForm

CARE_TEAM = ("coordinator", "admin")
SLOTS = [*DOCUMENT_SLOTS, *FAMILY_DOCUMENT_SLOTS]
NOT_ADDED = "The documents were not added: see “Add documents received another way” below."


def documents_form(referral: Referral, form: StaffDocumentsForm | None = None) -> Any:
    """The case page's form, or None for a family's message (it has no documents to add)."""
    if referral.kind == casework.MESSAGE_KIND:
        return None
    form = form or StaffDocumentsForm()
    form.document_slot.choices = as_choices([("", "Choose…"), *SLOTS])
    return form


@bp.post("/referrals/<reference>/documents")
@staff_required(*CARE_TEAM)
def add_documents(reference: str) -> Response | tuple[str, int]:
    user = _user()
    referral = queue.get_referral_for(user, reference)
    form = documents_form(referral)
    if form is None:
        return _rerender(referral, 409, status_error="A family's message has no documents.")
    valid = form.validate_on_submit()
    slot = form.document_slot.data or "unchosen"
    # collect_files reads the doc_<slot> field of the slot chosen (see the public forms).
    files = collect_files(
        SimpleNamespace(**{f"doc_{slot}": form.staff_documents}),
        [(slot, "")],
        form.staff_documents,
    )
    if files == [] and not form.staff_documents.errors:
        form.staff_documents.errors = ["Choose at least one file."]
    if not valid or not files:
        return _rerender(referral, documents_form=form, status_error=NOT_ADDED)
    try:
        added = casework.add_documents(referral, user, files, form.arrived_by.data or "other")
    except UploadStoreError:
        form.staff_documents.errors = ["The files could not be stored just now: try again."]
        return _rerender(referral, 503, documents_form=form, status_error=NOT_ADDED)
    if referral.status == "needs_info":
        flash(
            f"{added} document(s) added. The case still waits for the information asked for: "
            "if this is it, move the case back to review."
        )
    else:
        flash(f"{added} document(s) added to the case; its missing items were checked again.")
    return _back(referral)
