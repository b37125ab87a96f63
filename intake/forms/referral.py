"""The physician referral form (domain.md §1), grouped as on the page.

Only what a referral cannot exist without is required; what triage needs and is missing becomes
the case's missing-items list (rule R1). Every text input is a StringField so that a rejected
value is shown back to the user exactly as typed.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    MultipleFileField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from intake.domain.inputs import InputError, parse_iso_date
from intake.forms.validators import (
    BoundedInt,
    Email,
    Icd10,
    IsoDate,
    MultiLine,
    Npi,
    Percent,
    Phone,
    SingleLine,
)

YES_NO_UNKNOWN = [("yes", _l("Yes")), ("no", _l("No")), ("unknown", _l("Unknown"))]
YES_NO = [("yes", _l("Yes")), ("no", _l("No"))]
BLANK = [("", _l("Select…"))]

COUNTRIES = [
    ("US", _l("United States")),
    ("CA", _l("Canada")),
    ("MX", _l("Mexico")),
    ("PR", _l("Puerto Rico")),
    ("GB", _l("United Kingdom")),
    ("OTHER", _l("Another country")),
]
CREDENTIALS = [
    ("MD", "MD"),
    ("DO", "DO"),
    ("MBBS", "MBBS"),
    ("NP", "NP"),
    ("PA", "PA"),
    ("RN", "RN"),
    ("other", _l("Other")),
]
SEXES = [
    ("female", _l("Female")),
    ("male", _l("Male")),
    ("intersex", _l("Intersex / differences of sex development")),
    ("unknown", _l("Unknown")),
]
LANGUAGES = [("en", _l("English")), ("es", _l("Spanish")), ("other", _l("Another language"))]
RELATIONSHIPS = [
    ("mother", _l("Mother")),
    ("father", _l("Father")),
    ("legal_guardian", _l("Legal guardian")),
    ("grandparent", _l("Grandparent")),
    ("self", _l("Patient (adult)")),
    ("other", _l("Other")),
]
PAYER_TYPES = [
    ("commercial", _l("Commercial")),
    ("medicaid_chip", _l("Medicaid / CHIP")),
    ("international", _l("International")),
    ("self_pay", _l("Self-pay")),
    ("other", _l("Other")),
    ("unknown", _l("Unknown")),
]
DISEASES = [
    ("b_all", _l("B-cell acute lymphoblastic leukemia (B-ALL)")),
    ("t_all", _l("T-cell acute lymphoblastic leukemia (T-ALL)")),
    ("aml", _l("Acute myeloid leukemia (AML)")),
    ("b_nhl", _l("B-cell non-Hodgkin lymphoma")),
    ("cns_tumor", _l("CNS tumor")),
    ("solid_tumor", _l("Solid tumor")),
    ("other", _l("Other")),
]
GENETICS = [
    ("ph_positive", _l("Ph+ / BCR-ABL1")),
    ("kmt2a", _l("KMT2A rearranged")),
    ("ph_like", _l("Ph-like")),
    ("hypodiploid", _l("Hypodiploid")),
]
ANTIGEN = [
    ("positive", _l("Positive")),
    ("dim", _l("Dim")),
    ("negative", _l("Negative")),
    ("unknown", _l("Unknown")),
]
RELAPSE_SITES = [
    ("marrow", _l("Marrow")),
    ("cns", _l("CNS")),
    ("testis", _l("Testis")),
    ("isolated_extramedullary", _l("Isolated extramedullary")),
    ("other", _l("Other")),
]
BLINA_RESPONSE = [
    ("responded", _l("Responded")),
    ("no_response", _l("No response")),
    ("unknown", _l("Unknown")),
]
MRD_RESULTS = [
    ("positive", _l("Positive")),
    ("negative", _l("Negative")),
    ("not_done", _l("Not done")),
]
CNS_STATUS = [
    ("cns1", "CNS1"),
    ("cns2", "CNS2"),
    ("cns3", "CNS3"),
    ("unknown", _l("Unknown")),
]
GVHD_GRADES = [("0", _l("None (0)")), ("1", "1"), ("2", "2"), ("3", "3"), ("4", "4")]
PREGNANCY = [
    ("no", _l("No")),
    ("yes", _l("Yes")),
    ("unknown", _l("Unknown")),
    ("not_applicable", _l("Not applicable")),
]
REQUEST_TYPES = [
    ("car_t_evaluation", _l("CAR T evaluation")),
    ("trial_screening", _l("Clinical trial screening")),
    ("second_opinion", _l("Second opinion")),
]

# Typed document slots; each may hold one or more PDF, PNG or JPEG files.
DOCUMENT_SLOTS = [
    ("flow_cytometry", _l("Flow cytometry report")),
    ("pathology", _l("Pathology report")),
    ("marrow_mrd", _l("Marrow and MRD reports")),
    ("imaging", _l("Imaging reports")),
    ("treatment_summary", _l("Treatment summary")),
    ("other", _l("Other documents")),
]

SHORT = 100
MEDIUM = 200
LONG = 2000


class CheckboxList(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def as_choices(pairs: list[Any]) -> list[SelectChoice]:
    """WTForms 3.3 wants SelectChoice objects; the tables above stay readable pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


def _name(label: Any, required: bool = False, max_len: int = SHORT) -> StringField:
    first = DataRequired(message=_l("This field is required.")) if required else Optional()
    return StringField(label, validators=[first, SingleLine(max_len)])


def _date(label: Any, required: bool = False, description: Any = "") -> StringField:
    first = DataRequired(message=_l("Enter a date.")) if required else Optional()
    return StringField(
        label,
        validators=[first, IsoDate()],
        description=description or _l("YYYY-MM-DD"),
        render_kw={"placeholder": _l("YYYY-MM-DD"), "inputmode": "numeric"},
    )


def _choice(
    label: Any, choices: list[Any], required: bool = False, default: str | None = None
) -> SelectField:
    first = DataRequired(message=_l("Choose one.")) if required else Optional()
    return SelectField(
        label,
        choices=as_choices(BLANK + choices),
        validators=[first],
        validate_choice=True,
        default=default,
    )


def _radio(label: Any, choices: list[Any] = YES_NO_UNKNOWN) -> RadioField:
    return RadioField(label, choices=as_choices(choices), validators=[Optional()])


class ReferralForm(FlaskForm):
    submission_id = HiddenField()
    # A field people never see; bots fill it (decision 8).
    website = StringField(_l("Leave this field empty"), validators=[Optional()])

    # Referrer
    referrer_name = _name(_l("Your full name"), required=True, max_len=MEDIUM)
    referrer_credentials = _choice(_l("Credentials"), CREDENTIALS)
    referrer_country = _choice(_l("Country of practice"), COUNTRIES, required=True, default="US")
    referrer_npi = StringField(
        _l("NPI (National Provider Identifier)"),
        validators=[Optional(), Npi()],
        description=_l("10 digits. Required for referrers practicing in the United States."),
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )
    referrer_institution = _name(_l("Institution"), required=True, max_len=MEDIUM)
    referrer_phone = StringField(
        _l("Phone"),
        validators=[DataRequired(message=_l("Enter a phone number.")), Phone("referrer_country")],
        render_kw={"autocomplete": "tel", "inputmode": "tel"},
    )
    referrer_fax = StringField(
        _l("Fax"),
        validators=[Optional(), Phone("referrer_country")],
        render_kw={"inputmode": "tel"},
    )
    referrer_email = StringField(
        _l("Email"),
        validators=[DataRequired(message=_l("Enter an email address.")), Email()],
        render_kw={"autocomplete": "email", "inputmode": "email"},
    )
    coordinator_name = _name(_l("Referral coordinator's name"), max_len=MEDIUM)
    coordinator_email = StringField(_l("Referral coordinator's email"), [Optional(), Email()])
    coordinator_phone = StringField(
        _l("Referral coordinator's phone"), [Optional(), Phone("referrer_country")]
    )
    is_treating_oncologist = _radio(_l("I am the patient's treating oncologist"), YES_NO)

    # Patient
    patient_given_name = _name(_l("Patient's first (given) name"), required=True)
    patient_family_name = _name(_l("Patient's last (family) name"), required=True)
    patient_dob = _date(_l("Patient's date of birth"), required=True)
    patient_sex = _choice(_l("Sex"), SEXES)
    patient_country = _choice(_l("Patient's country of residence"), COUNTRIES)
    patient_zip = StringField(
        _l("ZIP or postal code"), [Optional(), SingleLine(12)], render_kw={"autocomplete": "off"}
    )
    patient_language = _choice(_l("Family's preferred language"), LANGUAGES)
    patient_language_other = _name(_l("If another language, which one"), max_len=60)
    interpreter_needed = _radio(_l("Interpreter needed"), YES_NO)
    referring_site_mrn = _name(_l("Medical record number at your site"), max_len=40)

    # Guardian
    guardian_name = _name(_l("Parent or guardian's name"), max_len=MEDIUM)
    guardian_relationship = _choice(_l("Relationship to the patient"), RELATIONSHIPS)
    guardian_phone = StringField(
        _l("Parent or guardian's phone"), [Optional(), Phone("patient_country")]
    )
    guardian_email = StringField(_l("Parent or guardian's email"), [Optional(), Email()])

    # Insurance
    payer_type = _choice(_l("Insurance type"), PAYER_TYPES)
    payer_name = _name(_l("Insurer"), max_len=MEDIUM)
    member_id = _name(_l("Member ID"), max_len=40)

    # Diagnosis
    disease = _choice(_l("Disease"), DISEASES, required=True)
    diagnosis_date = _date(_l("Date of diagnosis"))
    icd10 = StringField(
        _l("ICD-10 code"),
        [Optional(), Icd10()],
        description=_l("For example C91.00"),
        render_kw={"autocomplete": "off"},
    )
    genetics = CheckboxList(_l("Genetics"), choices=as_choices(GENETICS), validators=[Optional()])
    tki_lines_failed = StringField(
        _l("Ph+: number of TKI lines failed"),
        [Optional(), BoundedInt(0, 10)],
        render_kw={"inputmode": "numeric"},
    )
    down_syndrome = BooleanField(_l("Down syndrome"))

    # Immunophenotype
    cd19_status = _choice(_l("CD19"), ANTIGEN)
    cd22_status = _choice(_l("CD22"), ANTIGEN)
    immunophenotype_date = _date(_l("Date of the specimen tested"))
    measured_after_targeted_therapy = _radio(
        _l("Measured after blinatumomab, inotuzumab or CAR T?")
    )

    # Relapse history
    primary_refractory = _radio(_l("Primary refractory disease"))
    marrow_relapse_count = StringField(
        _l("Number of marrow relapses"),
        [Optional(), BoundedInt(0, 20)],
        render_kw={"inputmode": "numeric"},
    )
    relapse_sites = CheckboxList(
        _l("Sites of the latest relapse"), choices=as_choices(RELAPSE_SITES)
    )
    relapse_date = _date(_l("Date of the latest relapse"))
    had_hsct = _radio(_l("Allogeneic stem cell transplant (HSCT)"))
    hsct_date = _date(_l("Date of transplant"))

    # Prior therapy
    blinatumomab = _radio(_l("Blinatumomab"))
    blinatumomab_response = _choice(_l("Response to blinatumomab"), BLINA_RESPONSE)
    inotuzumab = _radio(_l("Inotuzumab ozogamicin"))
    prior_car_t = _radio(_l("Prior CAR T-cell therapy"))
    prior_car_t_product = _name(_l("CAR T product"), max_len=MEDIUM)
    prior_car_t_date = _date(_l("Date of CAR T infusion"))
    prior_gene_therapy = _radio(_l("Any other prior gene therapy"))

    # Current status
    marrow_blasts_pct = StringField(
        _l("Marrow blasts (%)"), [Optional(), Percent()], render_kw={"inputmode": "decimal"}
    )
    marrow_date = _date(_l("Date of the marrow assessment"))
    mrd_result = _choice(_l("MRD"), MRD_RESULTS)
    mrd_value = StringField(
        _l("MRD level (%)"), [Optional(), Percent()], render_kw={"inputmode": "decimal"}
    )
    mrd_date = _date(_l("Date of the MRD assessment"))
    rising_peripheral_blasts = BooleanField(_l("Peripheral blasts are rising"))
    cns_status = _choice(_l("CNS status"), CNS_STATUS)
    cns_date = _date(_l("Date of the CNS assessment"))
    new_cns_symptoms = BooleanField(_l("New CNS symptoms"))
    extramedullary_disease = _radio(_l("Extramedullary disease now"))
    extramedullary_sites = _name(_l("Extramedullary sites"), max_len=MEDIUM)

    # Fitness
    performance_score = StringField(
        _l("Performance score: Lansky (under 16) or Karnofsky (16 and over)"),
        [Optional(), BoundedInt(0, 100)],
        description=_l("0 to 100, in steps of 10. We record the right scale from the age."),
        render_kw={"inputmode": "numeric"},
    )
    uncontrolled_infection = _radio(_l("Active or uncontrolled infection"))
    hiv_hbv_hcv = _radio(_l("Active HIV, hepatitis B or hepatitis C"))
    gvhd_grade = _choice(_l("Acute GVHD grade now"), GVHD_GRADES)
    systemic_immunosuppression = _radio(_l("On systemic immunosuppression for GVHD"))
    dli_date = _date(_l("Date of last donor lymphocyte infusion (DLI), if any"))
    pregnancy = _radio(_l("Pregnant"), PREGNANCY)
    inpatient = BooleanField(_l("Currently an inpatient"))
    icu = BooleanField(_l("Currently in intensive care"))

    # Request
    request_type = _choice(_l("What you are asking for"), REQUEST_TYPES)
    urgent = BooleanField(_l("This referral is urgent"))
    urgency_reason = StringField(_l("Why it is urgent"), [Optional(), MultiLine(500)])
    question = TextAreaField(_l("Your question for the program"), [Optional(), MultiLine(LONG)])
    family_informed = _radio(_l("The family knows about this referral"), YES_NO)

    def validate_patient_zip(self, field: Any) -> None:
        value = (field.data or "").strip()
        country = self.patient_country.data or "US"
        if value and country in ("US", "PR"):
            if not re.fullmatch(r"\d{5}(-\d{4})?", value):
                raise ValidationError(_l("Enter a 5-digit ZIP code, for example 19104."))

    def validate_performance_score(self, field: Any) -> None:
        # WTForms runs in-line validators even after the field's own chain refused the value:
        # only a number BoundedInt accepted (and wrote back as int) is checked here.
        if isinstance(field.data, int) and not field.errors and field.data % 10:
            raise ValidationError(_l("Use a multiple of 10, for example 70."))

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        # Every check runs (no short-circuit), so one answer shows every problem at once.
        conditional_ok = self._check_conditional_fields()
        dates_ok = self._check_date_order()
        return conditional_ok and dates_ok and valid

    def _check_conditional_fields(self) -> bool:
        """Fields required only by another answer (Optional() ends a field's own chain)."""
        ok = True
        if self.referrer_country.data == "US" and not (self.referrer_npi.data or "").strip():
            self._add_error(
                self.referrer_npi, _l("Enter the NPI: it is required for US referrers.")
            )
            ok = False
        if self.urgent.data and not (self.urgency_reason.data or "").strip():
            self._add_error(self.urgency_reason, _l("Tell us why the referral is urgent."))
            ok = False
        return ok

    @staticmethod
    def _add_error(field: Any, message: Any) -> None:
        field.errors = [*field.errors, message]

    def _check_date_order(self) -> bool:
        """Clinical dates cannot precede the date of birth."""
        dob = _as_date(self.patient_dob.data)
        if dob is None:
            return True
        ok = True
        for name in DATE_FIELDS:
            if name == "patient_dob":
                continue
            field = getattr(self, name)
            when = _as_date(field.data)
            if when is not None and when < dob and not field.errors:
                self._add_error(field, _l("This date is before the date of birth."))
                ok = False
        return ok

    def answers(self) -> dict[str, Any]:
        """Validated answers as plain JSON-ready values, keyed by field name."""
        skip = {"csrf_token", "submission_id", "website"}
        result: dict[str, Any] = {}
        for field in self:
            if field.name in skip or field.type == "MultipleFileField":
                continue
            value = field.data
            if isinstance(value, str):
                value = value.strip()
            result[field.name] = value
        if result.get("patient_dob"):
            dob = date.fromisoformat(result["patient_dob"])
            result["performance_scale"] = "karnofsky" if _age_years(dob) >= 16 else "lansky"
        return result


DATE_FIELDS = [
    "patient_dob",
    "diagnosis_date",
    "immunophenotype_date",
    "relapse_date",
    "hsct_date",
    "prior_car_t_date",
    "marrow_date",
    "mrd_date",
    "cns_date",
    "dli_date",
]


def _as_date(value: Any) -> date | None:
    if not value:
        return None
    try:
        return parse_iso_date(str(value), today=date.today())
    except InputError:
        return None


def _age_years(dob: date, today: date | None = None) -> int:
    today = today or date.today()
    return today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))


def add_document_fields() -> None:
    for slot, label in DOCUMENT_SLOTS:
        setattr(
            ReferralForm,
            f"doc_{slot}",
            MultipleFileField(label, render_kw={"accept": ".pdf,.png,.jpg,.jpeg"}),
        )


add_document_fields()

SECTIONS: list[tuple[Any, list[str]]] = [
    (
        _l("About you (the referring clinician)"),
        [
            "referrer_name",
            "referrer_credentials",
            "referrer_country",
            "referrer_npi",
            "referrer_institution",
            "referrer_phone",
            "referrer_fax",
            "referrer_email",
            "coordinator_name",
            "coordinator_email",
            "coordinator_phone",
            "is_treating_oncologist",
        ],
    ),
    (
        _l("Patient"),
        [
            "patient_given_name",
            "patient_family_name",
            "patient_dob",
            "patient_sex",
            "patient_country",
            "patient_zip",
            "patient_language",
            "patient_language_other",
            "interpreter_needed",
            "referring_site_mrn",
        ],
    ),
    (
        _l("Parent or guardian"),
        ["guardian_name", "guardian_relationship", "guardian_phone", "guardian_email"],
    ),
    (_l("Insurance"), ["payer_type", "payer_name", "member_id"]),
    (
        _l("Diagnosis"),
        ["disease", "diagnosis_date", "icd10", "genetics", "tki_lines_failed", "down_syndrome"],
    ),
    (
        _l("Immunophenotype"),
        ["cd19_status", "cd22_status", "immunophenotype_date", "measured_after_targeted_therapy"],
    ),
    (
        _l("Relapse history"),
        [
            "primary_refractory",
            "marrow_relapse_count",
            "relapse_sites",
            "relapse_date",
            "had_hsct",
            "hsct_date",
        ],
    ),
    (
        _l("Prior therapy"),
        [
            "blinatumomab",
            "blinatumomab_response",
            "inotuzumab",
            "prior_car_t",
            "prior_car_t_product",
            "prior_car_t_date",
            "prior_gene_therapy",
        ],
    ),
    (
        _l("Current disease status"),
        [
            "marrow_blasts_pct",
            "marrow_date",
            "mrd_result",
            "mrd_value",
            "mrd_date",
            "rising_peripheral_blasts",
            "cns_status",
            "cns_date",
            "new_cns_symptoms",
            "extramedullary_disease",
            "extramedullary_sites",
        ],
    ),
    (
        _l("Fitness and safety"),
        [
            "performance_score",
            "uncontrolled_infection",
            "hiv_hbv_hcv",
            "gvhd_grade",
            "systemic_immunosuppression",
            "dli_date",
            "pregnancy",
            "inpatient",
            "icu",
        ],
    ),
    (
        _l("Your request"),
        ["request_type", "urgent", "urgency_reason", "question", "family_informed"],
    ),
]

REQUIRED_FIELDS = {
    "referrer_name",
    "referrer_country",
    "referrer_institution",
    "referrer_phone",
    "referrer_email",
    "patient_given_name",
    "patient_family_name",
    "patient_dob",
    "disease",
}
