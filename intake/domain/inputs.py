"""Pure input checks for form fields (security.md §5, decisions 3 and 12).

Every function returns the normalized value or raises :class:`InputError` with a stable
``code``; the form layer maps codes to translated messages. Empty input is the caller's
business (Optional/DataRequired), except where noted.

Codes: ``nul_byte``, ``control_chars``, ``line_break``, ``bidi_control``, ``invalid_char``,
``too_long``, ``invalid_date``, ``future_date``, ``too_old``, ``not_number``, ``not_finite``,
``not_integer``, ``out_of_range``, ``bad_npi``, ``npi_checksum``, ``bad_phone``,
``phone_extension``, ``bad_email``, ``email_invisible``, ``email_too_long``,
``email_homoglyph``, ``bad_icd10``, ``required``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date

import phonenumbers
from email_validator import EmailNotValidError, validate_email

__all__ = [
    "BIDI_CONTROLS",
    "ZERO_WIDTH",
    "InputError",
    "check_icd10_shape",
    "clean_multi_line",
    "clean_single_line",
    "has_iso_date_shape",
    "normalize_email",
    "fold_name",
    "normalize_person_key",
    "normalize_phone",
    "parse_bounded_int",
    "parse_iso_date",
    "parse_percent",
    "valid_npi",
]


class InputError(ValueError):
    """A rejected input value; ``code`` is a stable identifier for the message catalogue."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# Invisible characters stripped from names (and refused in e-mail addresses).
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
# Bidirectional formatting characters: embeddings/overrides, isolates, marks (incl. ALM).
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
_LINE_BREAKS = frozenset("\r\n\x0b\x0c\x85\u2028\u2029")
_STRIP_ZERO_WIDTH = {ord(ch): None for ch in ZERO_WIDTH}


def _check_chars(text: str, allowed: frozenset[str]) -> None:
    """Refuse NUL, bidi controls, line breaks, other control characters and surrogates."""
    if "\x00" in text:
        raise InputError("nul_byte")
    for ch in text:
        if ch in allowed:
            continue
        if ch in BIDI_CONTROLS:
            raise InputError("bidi_control")
        if ch in _LINE_BREAKS and "\n" not in allowed:
            raise InputError("line_break")
        category = unicodedata.category(ch)
        if category == "Cc":
            raise InputError("control_chars")
        if category == "Cs" or (0xFDD0 <= ord(ch) <= 0xFDEF) or (ord(ch) & 0xFFFE) == 0xFFFE:
            raise InputError("invalid_char")  # lone surrogates and non-characters


def _clean(text: str, max_len: int, allowed: frozenset[str]) -> str:
    cleaned = unicodedata.normalize("NFC", text).translate(_STRIP_ZERO_WIDTH).strip()
    _check_chars(cleaned, allowed)
    if len(cleaned) > max_len:
        raise InputError("too_long")
    return cleaned


def clean_single_line(text: str, max_len: int) -> str:
    """NFC-normalize, strip invisibles and surrounding whitespace; refuse controls.

    Surrounding whitespace (including a pasted trailing newline) is stripped first; any line
    break, tab or other control character left inside is refused. ``max_len`` counts code
    points after normalization.
    """
    return _clean(text, max_len, frozenset())


def clean_multi_line(text: str, max_len: int) -> str:
    """Like :func:`clean_single_line` but keeps line breaks (as ``\\n``) and tabs."""
    unified = text.replace("\r\n", "\n").replace("\r", "\n")
    unified = unified.replace("\u2028", "\n").replace("\u2029", "\n")
    return _clean(unified, max_len, frozenset("\n\t"))


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _years_before(day: date, years: int) -> date | None:
    year = day.year - years
    if year < date.min.year:
        return None
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February in a non-leap year
        return day.replace(year=year, day=28)


def has_iso_date_shape(text: str) -> bool:
    """Whether ``text`` is written ``YYYY-MM-DD`` (ASCII digits), whether or not such a day
    exists: tells a wrong format from an impossible date such as ``2025-02-30``."""
    return _ISO_DATE.fullmatch(text.strip()) is not None


def parse_iso_date(
    text: str, *, today: date, max_years_back: int = 120, allow_future: bool = False
) -> date:
    """Parse a strict ``YYYY-MM-DD`` date.

    ``invalid_date`` for any other shape or an impossible day; ``future_date`` after
    ``today`` (unless ``allow_future``); ``too_old`` before ``today`` minus
    ``max_years_back`` years (that very day is accepted).
    """
    value = text.strip()
    if not _ISO_DATE.fullmatch(value):
        raise InputError("invalid_date")
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise InputError("invalid_date") from None
    if not allow_future and parsed > today:
        raise InputError("future_date")
    earliest = _years_before(today, max_years_back)
    if earliest is not None and parsed < earliest:
        raise InputError("too_old")
    return parsed


_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


def parse_percent(text: str) -> float:
    """Parse a finite percentage in ``0..100`` inclusive.

    Accepts ``45``, ``45.5``, ``45,5`` (decimal comma) and a trailing ``%``. NaN and
    infinities (including overflow such as ``1e309``) give ``not_finite``; numbers outside
    the range give ``out_of_range``; anything else gives ``not_number``.
    """
    value = text.strip()
    if value.endswith("%"):
        value = value[:-1].rstrip()
    if len(value) > 32:
        raise InputError("not_number")
    if _NON_FINITE.fullmatch(value):
        raise InputError("not_finite")
    if not _NUMBER.fullmatch(value):
        raise InputError("not_number")
    number = float(value.replace(",", "."))
    if not math.isfinite(number):
        raise InputError("not_finite")
    if not 0.0 <= number <= 100.0:  # NaN is already excluded above
        raise InputError("out_of_range")
    return number + 0.0  # turns -0.0 into 0.0


def parse_bounded_int(text: str, lo: int, hi: int) -> int:
    """Parse ASCII digits only (no sign, no separators) into an int within ``lo..hi``.

    Huge inputs are refused as ``out_of_range`` from their length, before any conversion.
    """
    value = text.strip()
    if not re.fullmatch(r"[0-9]+", value):
        raise InputError("not_integer")
    significant = value.lstrip("0") or "0"
    if len(significant) > len(str(max(abs(hi), abs(lo)))):
        raise InputError("out_of_range")
    number = int(significant)
    if not lo <= number <= hi:
        raise InputError("out_of_range")
    return number


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def valid_npi(text: str) -> str:
    """Check a US National Provider Identifier: 10 digits, Luhn over ``80840`` + NPI.

    ``bad_npi`` for the wrong shape, ``npi_checksum`` when the check digit is wrong.
    """
    value = text.strip()
    if not re.fullmatch(r"[0-9]{10}", value):
        raise InputError("bad_npi")
    if not _luhn_ok("80840" + value):
        raise InputError("npi_checksum")
    return value


def normalize_phone(text: str, region: str = "US") -> str:
    """Parse a valid phone number and return it in E.164.

    ``region`` is an ISO 3166 code for numbers written without ``+``; an unknown region
    (e.g. ``OTHER``) requires the international format. Numbers with an extension are
    refused (``phone_extension``): E.164 cannot carry it, and dropping it silently would lose
    the way to reach the person.
    """
    value = text.strip()
    if not value or len(value) > 40:
        raise InputError("bad_phone")
    _check_chars(value, frozenset())
    code = region.strip().upper()
    default = code if code in phonenumbers.SUPPORTED_REGIONS else None
    try:
        number = phonenumbers.parse(value, default)
    except phonenumbers.NumberParseException:
        raise InputError("bad_phone") from None
    if number.extension:
        raise InputError("phone_extension")
    if not phonenumbers.is_valid_number(number):
        raise InputError("bad_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_MAX_EMAIL = 254


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    for script in ("LATIN", "CYRILLIC", "GREEK"):
        if name.startswith(script):
            return script
    return "OTHER"


def normalize_email(text: str) -> str:
    """Validate an e-mail address (syntax only, no DNS) and return its normalized ASCII form.

    Invisible characters are refused, not stripped (``email_invisible``). The local part must
    be ASCII; an internationalized domain is returned in its ``xn--`` form so homoglyphs are
    visible to staff, and a domain label mixing Latin with Cyrillic or Greek letters is
    refused (``email_homoglyph``).
    """
    value = text.strip()
    for ch in value:
        if ch in ZERO_WIDTH or ch in BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cf"):
            raise InputError("email_invisible")
    if len(value) > _MAX_EMAIL:
        raise InputError("email_too_long")
    try:
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        raise InputError("bad_email") from None
    for label in result.domain.split("."):
        scripts = {_script(ch) for ch in label if ch.isalpha()}
        if "LATIN" in scripts and scripts & {"CYRILLIC", "GREEK"}:
            raise InputError("email_homoglyph")
    normalized = result.ascii_email or result.normalized
    if len(normalized) > _MAX_EMAIL:
        raise InputError("email_too_long")
    return normalized


_ICD10 = re.compile(r"([A-Z][0-9][0-9A-Z])(?:\.?([0-9A-Z]{1,4}))?")


def check_icd10_shape(text: str) -> str:
    """Check the shape of an ICD-10(-CM) code and return it upper-case with its dot.

    ``C91.00``, ``c9100`` and ``C91.0`` are accepted (``C91.00``, ``C91.00``, ``C91.0``);
    whether the code exists is not checked.
    """
    match = _ICD10.fullmatch(text.strip().upper())
    if match is None:
        raise InputError("bad_icd10")
    category, detail = match.groups()
    return f"{category}.{detail}" if detail else category


# Latin letters without a canonical decomposition, folded for matching.
_FOLD = str.maketrans(
    {"ø": "o", "đ": "d", "ð": "d", "ł": "l", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe", "þ": "th"}
)


def fold_name(text: str) -> str:
    """A name as the duplicate-child key holds it (decision 12): for searching by name the way
    people type it (``zoe`` finds ``Zoë``; ``o'brien`` finds ``O'Brien``)."""
    return _fold_name(text)


def _fold_name(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFC", text).casefold())
    out: list[str] = []
    base_is_latin = False
    for ch in decomposed:
        category = unicodedata.category(ch)
        if category.startswith("M"):
            # Accents on Latin letters are dropped; marks in other scripts (e.g. Cyrillic
            # "й", Japanese dakuten) change the letter and are kept.
            if not base_is_latin:
                out.append(ch)
            continue
        base_is_latin = ch.isascii() or _script(ch) == "LATIN"
        if category == "Pd" or ch.isspace():
            out.append(" ")
        elif category.startswith(("P", "S", "C")):
            continue
        else:
            out.append(ch)
    folded = "".join(out).translate(_FOLD)
    return unicodedata.normalize("NFC", " ".join(folded.split()))


def normalize_person_key(given: str, family: str, dob: date | str) -> str:
    """A matching key for the duplicate-child check (decision 12).

    Names are NFC-normalized, case-folded, stripped of accents and punctuation (dashes count
    as spaces) with whitespace collapsed; ``dob`` is a date or an ISO ``YYYY-MM-DD`` string.
    The key is ``given|family|YYYY-MM-DD``. Raises ``InputError("required")`` if both names
    are empty after folding, or ``InputError("invalid_date")`` for a bad ``dob`` string.
    """
    if isinstance(dob, str):
        value = dob.strip()
        if not _ISO_DATE.fullmatch(value):
            raise InputError("invalid_date")
        try:
            dob = date.fromisoformat(value)
        except ValueError:
            raise InputError("invalid_date") from None
    given_key = _fold_name(given)
    family_key = _fold_name(family)
    if not given_key and not family_key:
        raise InputError("required")
    return f"{given_key}|{family_key}|{dob.isoformat()}"
