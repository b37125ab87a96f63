"""Family forms: a second-opinion request and a message to the care team (domain.md §3).

Plain language, few required fields; clinical questions are optional yes/no/unknown answers whose
names match the physician form's, so triage reads them the same way. Every text input is a
StringField so a rejected value comes back exactly as typed.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    MultipleFileField,
    RadioField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Optional, ValidationError

from intake.domain.inputs import InputError, clean_single_line, parse_iso_date
from intake.domain.reference import normalize_reference
from intake.forms.referral import (
    PAYER_TYPES,
    YES_NO,
    CheckboxList,
    _choice,
    _date,
    _name,
    _radio,
    as_choices,
)
from intake.forms.validators import Email, MultiLine, Phone, SingleLine

SIGNER_RELATIONSHIPS = [
    ("mother", _l("Mother")),
    ("father", _l("Father")),
    ("legal_guardian", _l("Legal guardian")),
    ("power_of_attorney", _l("Health care power of attorney")),
    (
        "other_legal_authority",
        _l("Other person with legal authority (for example, court-appointed)"),
    ),
    ("self", _l("I am the patient (18 or older)")),
]
# Decision 16: a patient 18 or older signs for themselves unless the signer is their guardian
# or holds a health care power of attorney.
ADULT_PATIENT_SIGNERS = {"self", "legal_guardian", "power_of_attorney"}

CONTACT_METHODS = [
    ("email", _l("Email")),
    ("phone", _l("Phone call")),
    ("text", _l("Text message")),
]
FAMILY_LANGUAGES = [("en", _l("English")), ("es", _l("Spanish")), ("other", _l("Another language"))]
LAY_DIAGNOSES = [
    ("b_all", _l("Leukemia: B-cell acute lymphoblastic leukemia (B-ALL), the most common kind")),
    ("t_all", _l("Leukemia: T-cell acute lymphoblastic leukemia (T-ALL)")),
    ("aml", _l("Leukemia: acute myeloid leukemia (AML)")),
    ("b_nhl", _l("Lymphoma (non-Hodgkin)")),
    ("cns_tumor", _l("Brain or spinal cord tumor")),
    ("solid_tumor", _l("Another tumor, for example neuroblastoma or sarcoma")),
    ("other", _l("Something else")),
    ("not_sure", _l("I am not sure")),
]
RECORDS_CHOICES = [
    ("upload", _l("I will upload records now")),
    ("request", _l("Please ask my child's doctors for the records")),
]
MESSAGE_TOPICS = [
    ("appointment", _l("An appointment")),
    ("medication", _l("Medicines or prescriptions")),
    ("how_child_is_doing", _l("A question about how my child is doing")),
    ("records", _l("Records, letters or forms")),
    ("billing", _l("Billing or insurance")),
    # Its own context: the diagnoses' "Something else" is a different illness in Spanish.
    ("other", lazy_pgettext("message topic", "Something else")),
]

FAMILY_DOCUMENT_SLOTS = [
    ("records", _l("Medical records")),
    ("insurance_card", _l("Insurance card (front and back)")),
]

EMAIL_CONSENT_LABEL = _l(
    "You may email me. I understand that regular email is not encrypted; you will only send "
    "the reference number and a link, never my child's name or medical details."
)


def relationship_label(code: str) -> str:
    return str(dict(SIGNER_RELATIONSHIPS).get(code, code))


def _add_error(field: Any, message: Any) -> None:
    field.errors = [*field.errors, message]


def _age_years(dob: date, today: date) -> int:
    return today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))


def _dob(value: Any) -> date | None:
    if not value:
        return None
    try:
        return parse_iso_date(str(value), today=date.today())
    except InputError:
        return None


# What phones and word processors put in place of a typed ' or -: curly and modifier
# apostrophes, acute and grave accents used as apostrophes, and the Unicode dashes.
_APOSTROPHES = str.maketrans(dict.fromkeys("\u2019\u2018\u02bc\u00b4`\u2032", "'"))
_HYPHENS = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"))


def _fold(text: str) -> str:
    """A name as people type it on any keyboard: one apostrophe and one hyphen, single spaces,
    no accents, no case ("María O’Brien" and "maria o'brien" compare equal)."""
    text = text.translate(_APOSTROPHES).translate(_HYPHENS)
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split())


class _FamilyContact(FlaskForm):
    """Who is writing and how to reach them; shared by both family forms."""

    submission_id = HiddenField()
    # A field people never see; bots fill it (decision 8).
    website = StringField(_l("Leave this field empty"), validators=[Optional()])

    requester_name = _name(_l("Your full name"), required=True, max_len=200)
    requester_relationship = _choice(
        _l("Your relationship to the child"), SIGNER_RELATIONSHIPS, required=True
    )
    family_email = StringField(
        _l("Email"),
        validators=[Optional(), Email()],
        render_kw={"autocomplete": "email", "inputmode": "email"},
    )
    family_email_consent = BooleanField(EMAIL_CONSENT_LABEL)
    family_phone = StringField(
        _l("Phone"),
        validators=[Optional(), Phone()],
        description=_l("For example (215) 555-0123, or +52 55 1234 5678 outside the US."),
        render_kw={"autocomplete": "tel", "inputmode": "tel"},
    )
    contact_methods = CheckboxList(
        _l("How may we contact you?"), choices=as_choices(CONTACT_METHODS)
    )
    preferred_language = _choice(
        _l("Language you prefer"), FAMILY_LANGUAGES, required=True, default="en"
    )
    preferred_language_other = _name(_l("If another language, which one"), max_len=60)
    interpreter_needed = _radio(_l("Do you need an interpreter?"), YES_NO)

    patient_given_name = _name(_l("Child's first (given) name"), required=True)
    patient_family_name = _name(_l("Child's last (family) name"), required=True)
    patient_dob = _date(_l("Child's date of birth"), required=True)

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        # Every check runs (no short-circuit), so one answer shows every problem at once.
        contact_ok = self._check_contact()
        more_ok = self._check_more()
        return contact_ok and more_ok and valid

    def _check_contact(self) -> bool:
        ok = True
        if (
            not (self.family_email.data or "").strip()
            and not (self.family_phone.data or "").strip()
        ):
            _add_error(self.family_email, _l("Give an email address or a phone number."))
            ok = False
        if self.family_email_consent.data and not (self.family_email.data or "").strip():
            _add_error(self.family_email, _l("Enter the email address we may write to."))
            ok = False
        if (
            "text" in (self.contact_methods.data or [])
            and not (self.family_phone.data or "").strip()
        ):
            _add_error(self.family_phone, _l("Enter the phone number for text messages."))
            ok = False
        if (
            self.preferred_language.data == "other"
            and not (self.preferred_language_other.data or "").strip()
        ):
            _add_error(self.preferred_language_other, _l("Tell us which language you prefer."))
            ok = False
        return ok

    def _check_more(self) -> bool:
        return True

    def answers(self) -> dict[str, Any]:
        """Validated answers as plain JSON-ready values, keyed by field name."""
        skip = {"csrf_token", "submission_id", "website", "signature_name"}
        result: dict[str, Any] = {}
        for field in self:
            if field.name in skip or field.type == "MultipleFileField":
                continue
            value = field.data
            if isinstance(value, str):
                value = value.strip()
            result[field.name] = value
        return result

    def email_language(self) -> str:
        """The language of the family's emails: their choice, else English."""
        return (
            self.preferred_language.data if self.preferred_language.data in ("en", "es") else "en"
        )


class SecondOpinionForm(_FamilyContact):
    legal_authority = BooleanField(
        _l(
            "I am the child's parent or legal guardian, or I otherwise have legal authority to "
            "consent to the child's medical care (or I am the patient, 18 or older)."
        )
    )
    patient_zip = StringField(
        _l("ZIP or postal code where the child lives"),
        [Optional(), SingleLine(12)],
        render_kw={"autocomplete": "postal-code"},
    )

    diagnosis_lay = _choice(_l("What illness does your child have?"), LAY_DIAGNOSES, required=True)
    diagnosis_details = TextAreaField(
        _l("Tell us about the illness in your own words"),
        [Optional(), MultiLine(2000)],
        description=_l("For example, when it was found and what treatment your child has had."),
    )
    diagnosis_date = _date(_l("When was it diagnosed? (if you know)"))
    relapsed = _radio(_l("Has the illness come back after treatment (relapse)?"))
    had_hsct = _radio(_l("Has your child had a bone marrow (stem cell) transplant from a donor?"))
    prior_car_t = _radio(_l("Has your child had CAR T-cell therapy before?"))
    inpatient = BooleanField(_l("My child is in the hospital now"))

    current_hospital = StringField(
        _l("Hospital where your child is treated now"),
        [Optional(), SingleLine(200)],
        description=_l(
            "We strongly encourage you to fill this in: the program works through your child's "
            "oncologist, and we cannot review the request without reaching them."
        ),
    )
    oncologist_name = _name(
        _l("Name of your child's cancer doctor (oncologist)"),
        max_len=200,
    )
    oncologist_phone = StringField(_l("The doctor's phone"), [Optional(), Phone()])
    oncologist_email = StringField(_l("The doctor's email"), [Optional(), Email()])

    hopes = TextAreaField(
        _l("What do you hope to learn from a second opinion?"), [Optional(), MultiLine(2000)]
    )

    payer_type = _choice(_l("Type of insurance"), PAYER_TYPES)
    payer_name = _name(_l("Insurance company"), max_len=200)
    member_id = _name(_l("Member ID"), max_len=40)

    records_choice = RadioField(
        _l("Medical records"),
        choices=as_choices(RECORDS_CHOICES),
        validators=[DataRequired(message=_l("Choose how we get the records."))],
        default="request",
    )

    authorize_release = BooleanField(
        _l("I authorize the release of my child's medical records as described above.")
    )
    signature_name = StringField(
        _l("Type your full name to sign"),
        validators=[DataRequired(message=_l("Type your full name to sign.")), SingleLine(200)],
        description=_l("Type it exactly as you entered it under “Your full name”."),
        render_kw={"autocomplete": "name"},
    )

    def validate_patient_zip(self, field: Any) -> None:
        value = (field.data or "").strip()
        if (
            value
            and re.fullmatch(r"[\d\s-]+", value)
            and not re.fullmatch(r"\d{5}(-\d{4})?", value)
        ):
            raise ValidationError(_l("Enter a 5-digit ZIP code, for example 19104."))

    def _check_more(self) -> bool:
        ok = True
        if not self.legal_authority.data:
            _add_error(
                self.legal_authority,
                _l("Only someone with legal authority to consent can ask for a second opinion."),
            )
            ok = False
        if not self.authorize_release.data:
            _add_error(
                self.authorize_release,
                _l("Tick the box to authorize the release of the records."),
            )
            ok = False
        signature = self.signature_name.data or ""
        name = self.requester_name.data or ""
        if signature.strip() and name.strip() and not self.signature_name.errors:
            try:
                same = _fold(clean_single_line(signature, 200)) == _fold(name)
            except InputError:
                same = False
            if not same:
                _add_error(
                    self.signature_name,
                    _l("Type your full name exactly as you entered it under “Your full name”."),
                )
                ok = False
        dob = _dob(self.patient_dob.data)
        relationship = self.requester_relationship.data
        if dob is not None and relationship and not self.requester_relationship.errors:
            adult = _age_years(dob, date.today()) >= 18
            if adult and relationship not in ADULT_PATIENT_SIGNERS:
                _add_error(
                    self.requester_relationship,
                    _l(
                        "The patient is 18 or older: the patient signs, unless you are their "
                        "legal guardian or hold a health care power of attorney."
                    ),
                )
                ok = False
            if not adult and relationship == "self":
                _add_error(
                    self.requester_relationship,
                    _l("A patient under 18 needs a parent or legal guardian to sign."),
                )
                ok = False
        return ok

    def disease(self) -> str:
        """The disease code triage reads; empty when the family is not sure (R1 asks)."""
        value = self.diagnosis_lay.data or ""
        return "" if value == "not_sure" else value


class MessageForm(_FamilyContact):
    case_reference = StringField(
        _l("Your reference number, if you have one"),
        [Optional(), SingleLine(20)],
        description=_l("It is in the emails we sent you, for example 7K3M-Q9TX-2HF."),
        render_kw={"autocomplete": "off"},
    )
    mrn = _name(_l("Your child's medical record number (MRN), if you have it"), max_len=40)
    topic = _choice(_l("What is your message about?"), MESSAGE_TOPICS, required=True)
    message = TextAreaField(
        _l("Your message"),
        [DataRequired(message=_l("Write your message.")), MultiLine(2000)],
    )

    def validate_case_reference(self, field: Any) -> None:
        value = (field.data or "").strip()
        if value and normalize_reference(value) is None:
            raise ValidationError(
                _l(
                    "Check the reference: it has 11 letters and numbers, like 7K3M-Q9TX-2HF. "
                    "It may contain a typo."
                )
            )


def add_document_fields() -> None:
    for slot, label in FAMILY_DOCUMENT_SLOTS:
        setattr(
            SecondOpinionForm,
            f"doc_{slot}",
            MultipleFileField(label, render_kw={"accept": ".pdf,.png,.jpg,.jpeg"}),
        )


add_document_fields()

CONTACT_FIELDS = [
    "requester_name",
    "requester_relationship",
    "family_email",
    "family_email_consent",
    "family_phone",
    "contact_methods",
    "preferred_language",
    "preferred_language_other",
    "interpreter_needed",
]

SECOND_OPINION_SECTIONS: list[tuple[Any, list[str]]] = [
    (_l("About you"), [*CONTACT_FIELDS[:2], "legal_authority", *CONTACT_FIELDS[2:]]),
    (
        _l("Your child"),
        ["patient_given_name", "patient_family_name", "patient_dob", "patient_zip"],
    ),
    (
        _l("Your child's illness"),
        [
            "diagnosis_lay",
            "diagnosis_details",
            "diagnosis_date",
            "relapsed",
            "had_hsct",
            "prior_car_t",
            "inpatient",
        ],
    ),
    (
        _l("Your child's doctors"),
        ["current_hospital", "oncologist_name", "oncologist_phone", "oncologist_email"],
    ),
    (_l("Your questions"), ["hopes"]),
    (_l("Insurance"), ["payer_type", "payer_name", "member_id"]),
]

SECOND_OPINION_REQUIRED = {
    "requester_name",
    "requester_relationship",
    "legal_authority",
    "preferred_language",
    "patient_given_name",
    "patient_family_name",
    "patient_dob",
    "diagnosis_lay",
    "records_choice",
    "authorize_release",
    "signature_name",
}

MESSAGE_SECTIONS: list[tuple[Any, list[str]]] = [
    (_l("About you"), CONTACT_FIELDS),
    (
        _l("Your child"),
        ["patient_given_name", "patient_family_name", "patient_dob", "case_reference", "mrn"],
    ),
    (_l("Your message"), ["topic", "message"]),
]

MESSAGE_REQUIRED = {
    "requester_name",
    "requester_relationship",
    "preferred_language",
    "patient_given_name",
    "patient_family_name",
    "patient_dob",
    "topic",
    "message",
}
