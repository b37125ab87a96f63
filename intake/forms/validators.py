"""WTForms validators wrapping the pure checks in :mod:`intake.domain.inputs`.

Each validator skips empty data (``Optional``/``DataRequired`` decide about emptiness), calls
the pure function and, on success, writes the normalized value back into ``field.data``.
On an :class:`~intake.domain.inputs.InputError` it raises ``ValidationError`` with a
translatable message that says what to fix; ``field.data`` then keeps the raw text so the
form re-renders what the user typed.

Written-back values stay JSON-ready: dates as ``YYYY-MM-DD`` strings, percentages as
``float``, bounded integers as ``int``, everything else as ``str``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app, has_app_context
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from wtforms.validators import ValidationError

from intake.domain import inputs
from intake.domain.inputs import InputError

__all__ = [
    "MESSAGES",
    "MESSAGES_FOR_UPLOAD_ERRORS",
    "MESSAGE_FOR_INFECTED_UPLOAD",
    "BoundedInt",
    "Email",
    "Icd10",
    "IsoDate",
    "MultiLine",
    "Npi",
    "Percent",
    "Phone",
    "SingleLine",
    "upload_error_message",
]

# One message per InputError code. Those with %(…)s placeholders are formatted by the
# validator that raises them.
MESSAGES: dict[str, LazyString] = {
    "nul_byte": _l("Remove the invalid character (a null byte) from this field."),
    "control_chars": _l("Remove the tab or other control characters from this field."),
    "line_break": _l("Keep this entry on one line, without line breaks."),
    "bidi_control": _l(
        "Remove the hidden text-direction characters from this field; retype it if you pasted it."
    ),
    "invalid_char": _l("Remove the invalid characters from this field."),
    "too_long": _l("Shorten this to %(max)d characters or fewer."),
    "required": _l("This field is required."),
    "invalid_date": _l("Use the date format YYYY-MM-DD, for example 2019-04-23."),
    # Not an InputError code: IsoDate's own, for a YYYY-MM-DD date no calendar has.
    "no_such_date": _l("This date does not exist. Check the day and the month."),
    "future_date": _l("Enter a date that is not in the future."),
    "too_old": _l("Check the year: the date cannot be more than %(years)d years ago."),
    "not_number": _l("Enter a number, for example 12.5."),
    "not_finite": _l("Enter a number, for example 12.5."),
    "not_integer": _l("Enter a whole number using digits only, for example 3."),
    "out_of_range": _l("Enter a number between %(lo)s and %(hi)s."),
    "percent": _l("Enter a percentage between 0 and 100, for example 12.5."),
    "bad_npi": _l("Enter the 10-digit NPI, digits only, for example 1234567893."),
    "npi_checksum": _l("Check the NPI: this number is not a valid NPI, so it may contain a typo."),
    "bad_phone": _l(
        "Enter a valid phone number, for example (215) 555-0123, or +44 20 7946 0958 "
        "for a number outside the selected country."
    ),
    "phone_extension": _l(
        "Enter the phone number without the extension; add the extension to the notes."
    ),
    "bad_email": _l("Enter a valid email address, for example name@example.org."),
    "email_invisible": _l(
        "This email address contains hidden characters. Type it in rather than pasting it."
    ),
    "email_too_long": _l("Enter an email address of 254 characters or fewer."),
    "email_homoglyph": _l(
        "This email address mixes letters from different alphabets. Check and retype it."
    ),
    "bad_icd10": _l("Enter an ICD-10 code such as C91.00 or C83.3."),
}

# Upload error codes (intake.domain.files.UploadError). Format with .format(name=…); the
# name must already be a safe display name. ``too_large`` may also use {mb}.
MESSAGES_FOR_UPLOAD_ERRORS: dict[str, LazyString] = {
    "empty": _l("“{name}” is empty. Choose the file again."),
    "too_large": _l("“{name}” is too large. Upload a smaller file or split it into parts."),
    "bad_type": _l("“{name}” is not a PDF, PNG or JPEG file."),
    "extension_mismatch": _l(
        "“{name}” does not match its file type. Upload it as a .pdf, .png or .jpg file."
    ),
    "truncated": _l("“{name}” seems incomplete or damaged. Save or export it again, then upload."),
    "bad_name": _l(
        "“{name}” has invalid characters in its file name. Rename the file, then upload it."
    ),
}

# security.md §5 row 24: a virus signature (EICAR, or a ClamAV match), code ``infected`` from
# intake.services.scanner.vet_upload. Shown next to the file slot; the file is not stored.
MESSAGE_FOR_INFECTED_UPLOAD: LazyString = _l(
    "This file contains a virus signature and was not accepted."
)


def upload_error_message(code: str) -> LazyString:
    """The message for an UploadError code, the scanner's ``infected`` included."""
    if code == "infected":
        return MESSAGE_FOR_INFECTED_UPLOAD
    return MESSAGES_FOR_UPLOAD_ERRORS[code]


def _message(code: str, **params: object) -> str | LazyString:
    message = MESSAGES.get(code) or MESSAGES["invalid_char"]
    return str(message) % params if params else message


def _is_empty(data: Any) -> bool:
    return data is None or (isinstance(data, str) and not data.strip())


class _Check(ABC):
    """Base class: run ``self.clean`` on non-empty string data and write the result back."""

    def __call__(self, form: Any, field: Any) -> None:
        if _is_empty(field.data):
            return
        try:
            value = self.clean(str(field.data), form)
        except InputError as exc:
            raise ValidationError(self.message(exc.code)) from None
        if value == "" and getattr(field.flags, "required", False):
            raise ValidationError(MESSAGES["required"])
        field.data = value

    @abstractmethod
    def clean(self, text: str, form: Any) -> object:
        """The cleaned value of ``text``; raises InputError (its code picks the message)."""

    def message(self, code: str) -> str | LazyString:
        return _message(code)


class SingleLine(_Check):
    """One line of text of at most ``max_len`` characters (after normalization)."""

    def __init__(self, max_len: int) -> None:
        self.max_len = max_len

    def clean(self, text: str, form: Any) -> object:
        return inputs.clean_single_line(text, self.max_len)

    def message(self, code: str) -> str | LazyString:
        return _message(code, max=self.max_len) if code == "too_long" else _message(code)


class MultiLine(SingleLine):
    """Several lines of text (line breaks and tabs kept) of at most ``max_len`` characters."""

    def clean(self, text: str, form: Any) -> object:
        return inputs.clean_multi_line(text, self.max_len)


def _program_today() -> date:
    if has_app_context():
        try:
            tz = ZoneInfo(str(current_app.config.get("PROGRAM_TZ") or "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            tz = ZoneInfo("UTC")
        return datetime.now(tz).date()
    return date.today()


class IsoDate(_Check):
    """A ``YYYY-MM-DD`` date, not in the future unless allowed, at most N years back.

    "Today" is the program's local date (``PROGRAM_TZ``); pass ``today`` to inject a clock.
    The normalized value written back is the ISO string.
    """

    def __init__(
        self,
        max_years_back: int = 120,
        allow_future: bool = False,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.max_years_back = max_years_back
        self.allow_future = allow_future
        self.today = today or _program_today

    def clean(self, text: str, form: Any) -> object:
        try:
            parsed = inputs.parse_iso_date(
                text,
                today=self.today(),
                max_years_back=self.max_years_back,
                allow_future=self.allow_future,
            )
        except InputError as exc:
            # Right format, impossible day (2025-02-30, 2025-13-01): saying "use the format"
            # would send people looking for a mistake they did not make.
            if exc.code == "invalid_date" and inputs.has_iso_date_shape(text):
                raise InputError("no_such_date") from None
            raise
        return parsed.isoformat()

    def message(self, code: str) -> str | LazyString:
        if code == "too_old":
            return _message(code, years=self.max_years_back)
        return _message(code)


class Percent(_Check):
    """A finite percentage between 0 and 100; written back as ``float``."""

    def clean(self, text: str, form: Any) -> object:
        return inputs.parse_percent(text)

    def message(self, code: str) -> str | LazyString:
        return _message("percent" if code in ("out_of_range", "not_number", "not_finite") else code)


class BoundedInt(_Check):
    """A whole number of digits within ``lo..hi``; written back as ``int``."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo = lo
        self.hi = hi

    def clean(self, text: str, form: Any) -> object:
        return inputs.parse_bounded_int(text, self.lo, self.hi)

    def message(self, code: str) -> str | LazyString:
        if code == "out_of_range":
            return _message(code, lo=self.lo, hi=self.hi)
        return _message(code)


class Npi(_Check):
    """A US National Provider Identifier with a valid check digit."""

    def clean(self, text: str, form: Any) -> object:
        return inputs.valid_npi(text)


class Phone(_Check):
    """A valid phone number, written back in E.164.

    ``region_field`` names another field of the form (e.g. a country select) whose data is
    the ISO region for numbers written without ``+``; default ``US``.
    """

    def __init__(self, region_field: str | None = None) -> None:
        self.region_field = region_field

    def clean(self, text: str, form: Any) -> object:
        region = "US"
        if self.region_field:
            other = form[self.region_field] if self.region_field in form else None
            if other is not None and isinstance(other.data, str) and other.data.strip():
                region = other.data.strip()
        return inputs.normalize_phone(text, region)


class Email(_Check):
    """A syntactically valid e-mail address (no DNS lookup), written back normalized."""

    def clean(self, text: str, form: Any) -> object:
        return inputs.normalize_email(text)


class Icd10(_Check):
    """An ICD-10 code shape such as ``C91.00``, written back upper-case with its dot."""

    def clean(self, text: str, form: Any) -> object:
        return inputs.check_icd10_shape(text)
