"""The records-release authorization of a second-opinion request (45 CFR 164.508, decision 16).

The text is one versioned list of sections, each a required element or statement of 164.508(c):
what is disclosed, who discloses, who receives, the purpose, the expiry, the representative's
authority, the right to revoke, conditioning, redisclosure, the signer's copy and the signature.
The form shows exactly these sections in the family's language; the same text, its language and
its SHA-256 are stored with the signature, and a worker turns them into the PDF kept with the
case (a Document, encrypted at rest like every upload).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from fpdf import FPDF

from intake.domain.reference import format_reference
from intake.extensions import db
from intake.models import Authorization, Referral, TimelineEvent, utcnow
from intake.services import outbox, uploads
from intake.services.auth import now

log = logging.getLogger("intake.authorization")

PDF_TASK = "families.authorization_pdf"
TEXT_VERSION = "2026-11-25.1"
VALID_DAYS = 365  # decision 16: one year by default

# (code, title, body). Bodies may use %(program)s. The codes name the 164.508(c) element.
SECTIONS: list[tuple[str, Any, Any]] = [
    (
        "information",
        _l("What information will be shared"),
        _l(
            "Medical records about my child's illness and its treatment: clinic and hospital "
            "notes, treatment summaries, pathology, flow cytometry, genetic and laboratory "
            "reports, imaging reports and images, and transplant and cell-therapy records."
        ),
    ),
    (
        "disclosers",
        _l("Who may share it"),
        _l(
            "The hospital and the treating oncologist named in this request, and any other "
            "doctor, hospital or laboratory that has treated or tested my child for this illness."
        ),
    ),
    (
        "recipient",
        _l("Who will receive it"),
        _l(
            "%(program)s: the doctors, nurse coordinators and staff who review second-opinion "
            "requests."
        ),
    ),
    (
        "purpose",
        _l("Why it will be shared"),
        _l("For a second-opinion review of my child's care, at my request."),
    ),
    (
        "expiry",
        _l("When this authorization ends"),
        _l(
            "One year after the date I sign it (the date is shown with the signature), unless I "
            "revoke it sooner."
        ),
    ),
    (
        "authority",
        _l("Signing for a child"),
        _l(
            "By signing, I confirm that I am the patient's parent or legal guardian, or another "
            "person with legal authority to make health care decisions for the patient, or the "
            "patient (18 or older). My relationship to the patient is recorded with my signature."
        ),
    ),
    (
        "revocation",
        _l("Your right to cancel (revoke)"),
        _l(
            "You may revoke this authorization at any time by writing to %(program)s and giving "
            "your reference number. Revoking it stops further requests for records, but it does "
            "not undo what was shared while it was in effect."
        ),
    ),
    (
        "conditioning",
        _l("Your choice"),
        _l(
            "Signing is voluntary. Your child's treatment, payment, enrollment in a health plan "
            "or eligibility for benefits does not depend on whether you sign. Without it, we may "
            "not be able to gather the records a second opinion needs."
        ),
    ),
    (
        "redisclosure",
        _l("Sharing again"),
        _l(
            "Once records are shared under this authorization, the person or organization that "
            "receives them could share them again, and federal privacy law might no longer "
            "protect them."
        ),
    ),
    (
        "copy",
        _l("Your copy"),
        _l(
            "You have the right to a copy of this signed authorization. We keep it with your "
            "request; ask us for a copy at any time."
        ),
    ),
    (
        "signature",
        _l("Electronic signature"),
        _l(
            "Typing my full name below is my electronic signature. The date and time of signing "
            "and the internet (IP) address it came from are recorded."
        ),
    ),
]

ELEMENT_CODES = tuple(code for code, _title, _body in SECTIONS)


def sections(language: str, program: str) -> list[dict[str, str]]:
    """The authorization text as shown on the form in ``language``."""
    with force_locale(language):
        return [
            {"code": code, "title": str(title), "body": str(body) % {"program": program}}
            for code, title, body in SECTIONS
        ]


def text_hash(shown: list[dict[str, str]]) -> str:
    canonical = json.dumps(shown, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_signature(
    referral: Referral,
    *,
    signer_name: str,
    signer_relationship: str,
    signer_ip: str | None,
    language: str,
) -> Authorization:
    """Store the signed authorization in the caller's transaction (the case has an id)."""
    shown = sections(language, current_app.config["PROGRAM_NAME"])
    signed_at = utcnow()
    authorization = Authorization(
        referral_id=referral.id,
        text_version=TEXT_VERSION,
        language=language,
        sections=shown,
        text_sha256=text_hash(shown),
        signer_name=signer_name,
        signer_relationship=signer_relationship,
        signer_ip=signer_ip,
        signed_at=signed_at,
        expires_on=expiry_date(signed_at),
    )
    db.session.add(authorization)
    return authorization


def expiry_date(signed_at: datetime) -> date:
    # Counted from the program's date of signing, the calendar is_expired reads it in: a
    # parent signing at 9 p.m. in New York signs "today", not on tomorrow's UTC date.
    return program_date(signed_at) + timedelta(days=VALID_DAYS)


def requeue_missing_pdfs(now: datetime, cutoff: datetime) -> int:
    """Decision 6 for PDFs: an authorization still without its PDF after ``cutoff`` gets its
    task queued again (in the caller's transaction). Only for a day after signing: a PDF that
    keeps failing is dead-lettered and alerted by the worker's guard instead."""
    stuck = db.session.scalars(
        sa.select(Authorization).where(
            Authorization.document_id.is_(None),
            Authorization.pdf_queued_at < cutoff,
            Authorization.signed_at > now - timedelta(days=1),
        )
    ).all()
    for signed in stuck:
        signed.pdf_queued_at = now
        outbox.add_event(db.session, PDF_TASK, signed.id)
    return len(stuck)


def generate_pdf(authorization_id: int) -> str:
    """Build the signed authorization's PDF and add it to the case. Idempotent."""
    authorization = db.session.scalar(
        sa.select(Authorization).where(Authorization.id == authorization_id).with_for_update()
    )
    if authorization is None:
        db.session.rollback()
        return "missing"
    if authorization.document_id is not None:
        db.session.rollback()
        return "already_generated"
    referral = db.session.get(Referral, authorization.referral_id)
    assert referral is not None
    config = current_app.config
    data = render_pdf(authorization, referral, config)
    blob = uploads.store(data, config)
    try:
        document = uploads.document_for(
            blob,
            slot="authorization",
            display_name=f"authorization-{format_reference(referral.reference)}.pdf",
            mime_type="application/pdf",
        )
        referral.documents.append(document)
        db.session.flush()
        authorization.document_id = document.id
        db.session.add(
            TimelineEvent(
                referral_id=referral.id,
                action="authorization_pdf_created",
                detail={"document": document.id, "text_version": authorization.text_version},
            )
        )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        uploads.discard([blob.storage_key], config)
        raise
    log.info("authorization_pdf_created authorization=%s", authorization.id)
    return "generated"


@dataclass(frozen=True)
class _Pdf:
    pdf: FPDF
    unicode: bool

    def text(self, value: str) -> str:
        if self.unicode:
            return value
        # The built-in PDF fonts cover Latin-1 only (no DejaVu font on this machine).
        for fancy, plain in (("’", "'"), ("‘", "'"), ("“", '"'), ("”", '"'), ("–", "-")):
            value = value.replace(fancy, plain)
        return value.encode("latin-1", "replace").decode("latin-1")

    def font(self, size: float, bold: bool = False) -> None:
        family = "intake" if self.unicode else "Helvetica"
        self.pdf.set_font(family, "B" if bold else "", size)

    def paragraph(self, value: str, size: float = 10, bold: bool = False, gap: float = 1) -> None:
        self.font(size, bold)
        self.pdf.multi_cell(0, size * 0.5, self.text(value), new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(gap)


def _open_pdf(config: dict[str, Any]) -> _Pdf:
    pdf = FPDF(format="letter")
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(True, margin=18)
    regular = Path(config.get("PDF_FONT") or "")
    bold = regular.with_name(regular.stem + "-Bold" + regular.suffix)
    unicode_font = regular.is_file() and bold.is_file()
    if unicode_font:
        pdf.add_font("intake", "", str(regular))
        pdf.add_font("intake", "B", str(bold))
    pdf.set_title("Authorization")
    pdf.set_creator(str(config["PROGRAM_NAME"]))
    pdf.add_page()
    return _Pdf(pdf, unicode_font)


def render_pdf(authorization: Authorization, referral: Referral, config: dict[str, Any]) -> bytes:
    """The signed authorization as a PDF, in the language it was signed in."""
    from intake.forms.family import relationship_label

    answers = referral.answers
    doc = _open_pdf(config)
    with force_locale(authorization.language):
        doc.paragraph(_("Authorization to release medical records"), size=15, bold=True)
        doc.paragraph(
            _(
                "HIPAA authorization (45 CFR 164.508) for second-opinion request %(reference)s",
                reference=format_reference(referral.reference),
            ),
            gap=3,
        )
        doctors = ", ".join(
            value
            for value in (answers.get("current_hospital"), answers.get("oncologist_name"))
            if value
        )
        details = [
            (_("Patient"), f"{referral.patient_given_name} {referral.patient_family_name}"),
            (_("Date of birth"), referral.patient_dob.isoformat()),
            (_("Records from"), doctors or _("The patient's treating doctors and hospitals")),
            (_("Records to"), str(config["PROGRAM_NAME"])),
            (_("Purpose"), _("Second-opinion review at the request of the signer")),
            (_("Expires on"), authorization.expires_on.isoformat()),
        ]
        for label, value in details:
            doc.paragraph(f"{label}: {value}", gap=0.5)
        doc.pdf.ln(3)
        for section in authorization.sections:
            doc.paragraph(section["title"], size=11, bold=True, gap=0.5)
            doc.paragraph(section["body"], gap=2)
        doc.pdf.ln(2)
        doc.paragraph(_("Signature"), size=11, bold=True, gap=0.5)
        signature = [
            (_("Signed electronically by"), authorization.signer_name),
            (
                _("Relationship to the patient"),
                relationship_label(authorization.signer_relationship),
            ),
            (_("Legal authority"), _("Confirmed by the signer")),
            (
                _("Signed at"),
                authorization.signed_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            ),
            (_("IP address"), authorization.signer_ip or _("not recorded")),
        ]
        for label, value in signature:
            doc.paragraph(f"{label}: {value}", gap=0.5)
        doc.pdf.ln(3)
        doc.paragraph(
            _(
                "Text version %(version)s, language %(language)s, SHA-256 %(hash)s",
                version=authorization.text_version,
                language=authorization.language,
                hash=authorization.text_sha256,
            ),
            size=8,
        )
    return bytes(doc.pdf.output())


def for_case(referral: Referral) -> Authorization | None:
    return db.session.scalar(
        sa.select(Authorization).where(Authorization.referral_id == referral.id)
    )


def program_date(at: datetime) -> date:
    """The program's calendar date at ``at``: expiry and revocation dates are read in it."""
    return at.astimezone(ZoneInfo(current_app.config["PROGRAM_TZ"])).date()


def program_today() -> date:
    return program_date(now())


def is_expired(signed: Authorization, today: date | None = None) -> bool:
    """In effect through its expiry date (in the program's time zone), expired after it."""
    return signed.expires_on < (today or program_today())


def check_records_request(referral: Referral, today: date | None = None) -> None:
    """Refuse a request for records that relies on the family's authorization when it was
    revoked (decision 16) or has expired. Raises statuses.TransitionError with a clear message.

    ``today`` is the program's date (default: now). A physician's referral has no family
    authorization (the treating provider asks) and is not affected; what the program already
    received stays with the case either way.
    """
    from intake.domain.statuses import TransitionError

    signed = for_case(referral)
    if signed is None:
        return
    if signed.revoked_at is not None:
        received = signed.revocation_received_on or program_date(signed.revoked_at)
        raise TransitionError(
            "authorization_revoked",
            _(
                "The family revoked the records-release authorization (received "
                "%(date)s): no more records can be requested from their doctors. Ask the "
                "family to send records themselves, or to sign a new authorization.",
                date=received.isoformat(),
            ),
        )
    if is_expired(signed, today):
        raise TransitionError(
            "authorization_expired",
            _(
                "The records-release authorization expired on %(date)s: no more records can be "
                "requested from the family's doctors until the family signs a new one.",
                date=signed.expires_on.isoformat(),
            ),
        )
