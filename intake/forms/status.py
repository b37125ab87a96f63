"""The status lookup form: reference and the child's date of birth, both in the POST body."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, ValidationError

from intake.domain.reference import normalize_reference
from intake.forms.validators import IsoDate


def _valid_reference(form: Any, field: Any) -> None:
    canonical = normalize_reference(str(field.data or ""))
    if canonical is None:
        # Only the shape and check character are judged here, which says nothing about
        # whether such a request exists.
        raise ValidationError(
            _l(
                "Check the reference: it has 11 letters and numbers, like 7K3M-Q9TX-2HF. "
                "It may contain a typo."
            )
        )
    field.data = canonical


class StatusLookupForm(FlaskForm):
    reference = StringField(
        _l("Reference number"),
        validators=[DataRequired(message=_l("Enter the reference number.")), _valid_reference],
        description=_l("It is in the confirmation email, for example 7K3M-Q9TX-2HF."),
        render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"},
    )
    dob = StringField(
        _l("Patient's date of birth"),
        validators=[DataRequired(message=_l("Enter a date.")), IsoDate()],
        description=_l("YYYY-MM-DD, for example 2016-03-14"),
        render_kw={"placeholder": _l("YYYY-MM-DD"), "inputmode": "numeric", "autocomplete": "off"},
    )
