"""Pure input checks: security.md §5 rows 2, 4, 5, 6, 10-16 and 26, plus NPI, phone, ICD-10."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict
from wtforms import Form, StringField
from wtforms.validators import DataRequired, Optional

from intake.domain.inputs import (
    InputError,
    check_icd10_shape,
    clean_multi_line,
    clean_single_line,
    normalize_email,
    normalize_person_key,
    normalize_phone,
    parse_bounded_int,
    parse_iso_date,
    parse_percent,
    valid_npi,
)
from intake.forms import validators as v
from intake.forms.validators import MESSAGES, MESSAGES_FOR_UPLOAD_ERRORS

TODAY = date(2026, 11, 25)


def code_of(call: object, *args: object, **kwargs: object) -> str:
    assert callable(call)
    with pytest.raises(InputError) as caught:
        call(*args, **kwargs)
    assert isinstance(caught.value, ValueError)
    return caught.value.code


# --- single-line text ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["O'Brien", "Núñez", "Smith-Jones", "José María", "Zoë", "李小龙", "Анна", "محمد", "D’Angelo"],
)
def test_real_names_are_accepted(name: str) -> None:
    assert clean_single_line(name, 100) == name


def test_row_11_sql_looking_text_is_kept_literally() -> None:
    text = "O'Brien'); DROP TABLE referrals;--"
    assert clean_single_line(text, 100) == text


def test_row_7_8_markup_is_kept_literally() -> None:
    for text in ("<script>alert(1)</script>", '"><img onerror=x>', "{{7*7}}", "${7*7}"):
        assert clean_single_line(text, 100) == text


def test_row_2_one_character_over_max() -> None:
    assert clean_single_line("x" * 100, 100) == "x" * 100
    assert code_of(clean_single_line, "x" * 101, 100) == "too_long"


def test_length_counts_after_normalization() -> None:
    decomposed = unicodedata.normalize("NFD", "Núñez")
    assert len(decomposed) == 7
    assert clean_single_line(decomposed, 5) == "Núñez"
    # Stripped invisibles and surrounding spaces do not count either.
    assert clean_single_line("  \u200bAnn\ufeff  ", 3) == "Ann"


def test_row_4_rtl_override_rejected() -> None:
    for ch in ("\u202e", "\u202a", "\u2066", "\u2069", "\u200e", "\u200f"):
        assert code_of(clean_single_line, f"Jane{ch}Doe", 100) == "bidi_control"
        assert code_of(clean_multi_line, f"Jane{ch}Doe", 100) == "bidi_control"


def test_row_5_invisibles_are_stripped_from_names() -> None:
    assert clean_single_line("Ja\u200bne\u200c \u200dDoe\u2060\ufeff", 100) == "Jane Doe"
    assert normalize_person_key("Ja\u200bne", "Doe", "2019-04-23") == normalize_person_key(
        "Jane", "Doe", "2019-04-23"
    )


def test_row_6_nul_byte() -> None:
    assert code_of(clean_single_line, "Jane\x00Doe", 100) == "nul_byte"
    assert code_of(clean_multi_line, "Jane\x00Doe", 100) == "nul_byte"


@pytest.mark.parametrize("text", ["Jane\r\nBcc: x@evil.test", "Jane\nDoe", "Jane\rDoe", "A\u2028B"])
def test_row_10_line_breaks_rejected_in_single_line(text: str) -> None:
    assert code_of(clean_single_line, text, 100) == "line_break"


@pytest.mark.parametrize("ch", ["\t", "\x01", "\x1b", "\x7f", "\x9b"])
def test_other_control_characters_rejected(ch: str) -> None:
    assert code_of(clean_single_line, f"Jane{ch}Doe", 100) == "control_chars"


def test_lone_surrogates_and_noncharacters_rejected() -> None:
    assert code_of(clean_single_line, "Jane\ud800", 100) == "invalid_char"
    assert code_of(clean_single_line, "Jane\uffff", 100) == "invalid_char"


def test_surrounding_whitespace_is_stripped() -> None:
    assert clean_single_line("  Jane Doe \r\n", 100) == "Jane Doe"


# --- multi-line text -----------------------------------------------------------------------


def test_multi_line_keeps_lines_and_tabs() -> None:
    text = "Line one\r\nLine two\rLine\tthree\u2028four"
    assert clean_multi_line(text, 100) == "Line one\nLine two\nLine\tthree\nfour"


def test_multi_line_limits() -> None:
    assert code_of(clean_multi_line, "a\x0bb", 100) == "control_chars"
    assert code_of(clean_multi_line, "a\x0cb", 100) == "control_chars"
    assert code_of(clean_multi_line, "a\x07b", 100) == "control_chars"
    assert code_of(clean_multi_line, "ab\r\n" * 40, 100) == "too_long"
    assert clean_multi_line("ab\r\n" * 25, 100) == "\n".join(["ab"] * 25)


# --- dates (rows 12-14) --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2025-02-30",
        "2025-13-01",
        "30/02/2025",
        "02/03/2019",
        "2019-4-23",
        "20190423",
        "2019-04-23T00:00",
        "2019-W17-2",
        "0000-01-01",
        "٢٠١٩-٠٤-٢٣",  # Arabic-Indic digits
        "",
    ],
)
def test_row_12_invalid_dates(text: str) -> None:
    assert code_of(parse_iso_date, text, today=TODAY) == "invalid_date"


def test_valid_date() -> None:
    assert parse_iso_date(" 2019-04-23 ", today=TODAY) == date(2019, 4, 23)
    assert parse_iso_date("2024-02-29", today=TODAY) == date(2024, 2, 29)
    assert parse_iso_date("2026-11-25", today=TODAY) == TODAY


def test_row_13_future_dates() -> None:
    assert code_of(parse_iso_date, "2026-11-26", today=TODAY) == "future_date"
    assert code_of(parse_iso_date, "9999-12-31", today=TODAY) == "future_date"
    assert parse_iso_date("2027-01-05", today=TODAY, allow_future=True) == date(2027, 1, 5)


def test_row_14_old_dates() -> None:
    # Decision 3: any DOB up to 120 years ago is accepted; routing handles age (R3/R7).
    assert parse_iso_date("1990-01-01", today=TODAY) == date(1990, 1, 1)
    assert parse_iso_date("1906-11-25", today=TODAY) == date(1906, 11, 25)
    assert code_of(parse_iso_date, "1906-11-24", today=TODAY) == "too_old"
    assert code_of(parse_iso_date, "0001-01-01", today=TODAY) == "too_old"
    assert code_of(parse_iso_date, "1990-01-01", today=TODAY, max_years_back=25) == "too_old"


def test_too_old_cutoff_on_leap_day() -> None:
    leap = date(2024, 2, 29)
    assert parse_iso_date("2004-02-29", today=leap, max_years_back=20) == date(2004, 2, 29)
    assert parse_iso_date("2003-02-28", today=leap, max_years_back=21) == date(2003, 2, 28)
    assert code_of(parse_iso_date, "2003-02-27", today=leap, max_years_back=21) == "too_old"


# --- percent (row 15) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0.0), ("100", 100.0), ("45", 45.0), ("12.5", 12.5), ("12,5", 12.5), (".5", 0.5),
     ("0.01 %", 0.01), ("45%", 45.0), ("-0", 0.0), ("1e1", 10.0)],
)  # fmt: skip
def test_percent_accepted(text: str, value: float) -> None:
    result = parse_percent(text)
    assert result == value
    assert str(result) != "-0.0"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("-5", "out_of_range"),
        ("150", "out_of_range"),
        ("100.0001", "out_of_range"),
        ("NaN", "not_finite"),
        ("nan", "not_finite"),
        ("-nan", "not_finite"),
        ("Infinity", "not_finite"),
        ("inf", "not_finite"),
        ("-Infinity", "not_finite"),
        ("1e309", "not_finite"),
        ("abc", "not_number"),
        ("1_0", "not_number"),
        ("1,000.5", "not_number"),
        ("٥", "not_number"),
        ("0x10", "not_number"),
        ("1" * 400, "not_number"),
    ],
)
def test_row_15_bad_percent(text: str, code: str) -> None:
    assert code_of(parse_percent, text) == code


# --- integers (row 16) ---------------------------------------------------------------------


def test_bounded_int() -> None:
    assert parse_bounded_int("7", 0, 10) == 7
    assert parse_bounded_int(" 007 ", 0, 10) == 7
    assert parse_bounded_int("0", 0, 10) == 0
    assert code_of(parse_bounded_int, "11", 0, 10) == "out_of_range"
    assert code_of(parse_bounded_int, "99999999999999999999", 0, 100) == "out_of_range"
    assert code_of(parse_bounded_int, "9" * 100_000, 0, 100) == "out_of_range"
    assert code_of(parse_bounded_int, "2", 5, 10) == "out_of_range"


@pytest.mark.parametrize("text", ["-1", "+1", "1.0", "1e3", "ten", "١", "1 000", ""])
def test_bounded_int_digits_only(text: str) -> None:
    assert code_of(parse_bounded_int, text, 0, 10_000) == "not_integer"


# --- NPI -----------------------------------------------------------------------------------


@pytest.mark.parametrize("npi", ["1234567893", "1245319599", "1003000126"])
def test_valid_npis(npi: str) -> None:
    assert valid_npi(npi) == npi
    assert valid_npi(f" {npi} ") == npi


def test_npi_check_digit() -> None:
    assert code_of(valid_npi, "1234567890") == "npi_checksum"
    assert code_of(valid_npi, "1234567839") == "npi_checksum"  # adjacent swap
    for wrong in "012456789":
        assert code_of(valid_npi, "123456789" + wrong) == "npi_checksum"


@pytest.mark.parametrize("text", ["123456789", "12345678930", "123456789X", "1234-567-893", ""])
def test_npi_shape(text: str) -> None:
    assert code_of(valid_npi, text) == "bad_npi"


# --- phone ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("(202) 456-1414", "US", "+12024561414"),
        ("202.456.1414", "US", "+12024561414"),
        ("+1 202 456 1414", "GB", "+12024561414"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("020 7946 0958", "gb", "+442079460958"),
        ("+44 20 7946 0958", "OTHER", "+442079460958"),
        ("(416) 555-0199", "CA", "+14165550199"),
    ],
)
def test_phone_normalized_to_e164(text: str, region: str, expected: str) -> None:
    assert normalize_phone(text, region) == expected


def test_phone_default_region_is_us() -> None:
    assert normalize_phone("202-456-1414") == "+12024561414"


@pytest.mark.parametrize(
    ("text", "region", "code"),
    [
        ("12345", "US", "bad_phone"),
        ("not a phone", "US", "bad_phone"),
        ("(202) 456-1414", "OTHER", "bad_phone"),  # no country to read it in
        ("000-000-0000", "US", "bad_phone"),
        ("1" * 60, "US", "bad_phone"),
        ("202-456-1414\r\nBcc: x", "US", "line_break"),
        ("202-456-1414 ext. 12", "US", "phone_extension"),
    ],
)
def test_bad_phones(text: str, region: str, code: str) -> None:
    assert code_of(normalize_phone, text, region) == code


# --- e-mail (rows 5 and 26) ----------------------------------------------------------------


def test_email_normalized() -> None:
    assert normalize_email(" Jane.Doe@Example.ORG ") == "Jane.Doe@example.org"
    assert normalize_email("jane@bücher.de") == "jane@xn--bcher-kva.de"


@pytest.mark.parametrize(
    "ch", ["\u200b", "\ufeff", "\u200c", "\u200d", "\u2060", "\u202e", "\u00ad"]
)
def test_row_5_invisible_characters_reject_email(ch: str) -> None:
    assert code_of(normalize_email, f"jane{ch}@example.org") == "email_invisible"
    assert code_of(normalize_email, f"jane@example.org{ch}") == "email_invisible"


def test_row_26_invalid_emails() -> None:
    assert code_of(normalize_email, "a@b") == "bad_email"
    assert code_of(normalize_email, "a" * 309 + "@example.org") == "email_too_long"
    assert len("a" * 309 + "@example.org") == 321
    for text in ("jane", "jane@", "@example.org", "jane@@example.org", "jane doe@example.org",
                 "jane@example..org", '"jane"@example.org', "Jane <jane@example.org>",
                 "jöhn@example.org"):  # fmt: skip
        assert code_of(normalize_email, text) == "bad_email", text


def test_row_26_homoglyph_domain() -> None:
    # Mixed Latin/Cyrillic in one label is refused...
    assert code_of(normalize_email, "jane@ex\u0430mple.org") == "email_homoglyph"
    # ...and an all-Cyrillic look-alike comes back in punycode, visibly not "apple".
    assert normalize_email("jane@\u0430\u0440\u0440\u04cf\u0435.com") == "jane@xn--80ak6aa92e.com"


def test_row_10_header_injection_in_email() -> None:
    assert code_of(normalize_email, "jane@example.org\r\nBcc: x@evil.test") == "email_invisible"


# --- ICD-10 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("C91.00", "C91.00"),
        ("c91.00", "C91.00"),
        ("C9100", "C91.00"),
        ("C83.3", "C83.3"),
        ("C91.0", "C91.0"),
        (" C91 ", "C91"),
        ("C83.38", "C83.38"),
        ("Z94.84", "Z94.84"),
        ("S72.001A", "S72.001A"),
        ("U07.1", "U07.1"),
    ],
)
def test_icd10_shapes(text: str, expected: str) -> None:
    assert check_icd10_shape(text) == expected


@pytest.mark.parametrize(
    "text", ["91.00", "CC1.00", "C9", "C91.", "C91.00000", "C91-00", "C91.0 0", "ALL", ""]
)
def test_icd10_bad_shapes(text: str) -> None:
    assert code_of(check_icd10_shape, text) == "bad_icd10"


# --- duplicate-child key (decision 12) -----------------------------------------------------


def test_person_key_matches_variants() -> None:
    dob = date(2015, 3, 4)
    key = normalize_person_key("María José", "Núñez O'Brien", dob)
    assert key == "maria jose|nunez obrien|2015-03-04"
    for given, family in [
        ("MARIA JOSE", "NUNEZ OBRIEN"),
        ("  Maria   José ", "Núñez  O’Brien"),
        ("Maria-Jose", "Nunez O'Brien."),
        (unicodedata.normalize("NFD", "María José"), "Núñez O'Brien"),
        ("ＭＡＲＩＡ ＪＯＳＥ", "Nunez OBrien"),  # full-width
    ]:
        assert normalize_person_key(given, family, "2015-03-04") == key, (given, family)


def test_person_key_folding() -> None:
    assert normalize_person_key("Zoë", "Ødegård", "2015-03-04") == "zoe|odegard|2015-03-04"
    assert normalize_person_key("Jürgen", "Straße", "2015-03-04") == "jurgen|strasse|2015-03-04"
    # Non-Latin names keep their letters (marks are part of them there).
    assert normalize_person_key("Йосиф", "李", "2015-03-04") == "йосиф|李|2015-03-04"


def test_person_key_distinguishes() -> None:
    base = normalize_person_key("Ana", "Ruiz", "2015-03-04")
    assert normalize_person_key("Ana", "Ruiz", "2015-03-05") != base
    assert normalize_person_key("Ruiz", "Ana", "2015-03-04") != base
    assert normalize_person_key("Anna", "Ruiz", "2015-03-04") != base


def test_person_key_errors() -> None:
    assert code_of(normalize_person_key, "...", "  ", "2015-03-04") == "required"
    assert code_of(normalize_person_key, "Ana", "Ruiz", "2015-02-30") == "invalid_date"
    assert code_of(normalize_person_key, "Ana", "Ruiz", "04/03/2015") == "invalid_date"


# --- the WTForms wrappers (intake/forms/validators.py) -------------------------------------


class SampleForm(Form):
    name = StringField(validators=[DataRequired(), v.SingleLine(5)])
    notes = StringField(validators=[Optional(), v.MultiLine(50)])
    dob = StringField(validators=[Optional(), v.IsoDate(today=lambda: TODAY)])
    pct = StringField(validators=[Optional(), v.Percent()])
    count = StringField(validators=[Optional(), v.BoundedInt(0, 10)])
    npi = StringField(validators=[Optional(), v.Npi()])
    country = StringField(validators=[Optional()])
    phone = StringField(validators=[Optional(), v.Phone("country")])
    email = StringField(validators=[Optional(), v.Email()])
    icd = StringField(validators=[Optional(), v.Icd10()])


def _validate(data: dict[str, str]) -> tuple[bool, dict[str, object], dict[str, object]]:
    form = SampleForm(MultiDict(data))
    ok = form.validate()
    errors = {name: [str(e) for e in errs] for name, errs in form.errors.items()}
    return ok, errors, {name: form[name].data for name in data}


def test_validators_write_back_normalized_values() -> None:
    ok, errors, values = _validate(
        {"name": " Nu\u0301n\u0303ez ", "notes": "a\r\nb", "dob": "2019-04-23", "pct": "12,5",
         "count": "07", "npi": "1234567893", "country": "GB", "phone": "020 7946 0958",
         "email": "A@Example.ORG", "icd": "c9100"}
    )  # fmt: skip
    assert ok, errors
    assert values == {
        "name": "Núñez", "notes": "a\nb", "dob": "2019-04-23", "pct": 12.5, "count": 7,
        "npi": "1234567893", "country": "GB", "phone": "+442079460958",
        "email": "A@example.org", "icd": "C91.00",
    }  # fmt: skip


def test_validators_keep_raw_text_and_explain() -> None:
    raw = {"name": "Jane\r\nBcc: x", "notes": "a\x00", "dob": "30/02/2025", "pct": "NaN",
           "count": "99999999999999999999", "npi": "1234567890", "country": "US",
           "phone": "020 7946 0958", "email": "a@b", "icd": "ALL"}  # fmt: skip
    ok, errors, values = _validate(raw)
    assert not ok
    assert values == raw
    assert errors["dob"] == ["Use the date format YYYY-MM-DD, for example 2019-04-23."]
    assert errors["pct"] == ["Enter a percentage between 0 and 100, for example 12.5."]
    assert errors["count"] == ["Enter a number between 0 and 10."]
    assert errors["name"] == ["Keep this entry on one line, without line breaks."]
    assert set(errors) == set(raw) - {"country"}


def test_validators_messages_with_limits() -> None:
    _, errors, _ = _validate({"name": "Janet", "dob": "1800-01-01", "pct": "150"})
    assert errors == {
        "dob": ["Check the year: the date cannot be more than 120 years ago."],
        "pct": ["Enter a percentage between 0 and 100, for example 12.5."],
    }
    _, errors, _ = _validate({"name": "Janette"})
    assert errors == {"name": ["Shorten this to 5 characters or fewer."]}


def test_invisible_only_required_value_is_missing() -> None:
    _, errors, _ = _validate({"name": "\u200b\ufeff"})
    assert errors == {"name": ["This field is required."]}


def test_every_code_has_a_message() -> None:
    domain = Path(__file__).resolve().parents[2] / "intake" / "domain"
    source = (domain / "inputs.py").read_text(encoding="utf-8")
    codes = set(re.findall(r'InputError\("([a-z_0-9]+)"\)', source))
    assert codes <= set(MESSAGES), codes - set(MESSAGES)
    files = (domain / "files.py").read_text(encoding="utf-8")
    upload_codes = set(re.findall(r'UploadError\("([a-z_]+)"\)', files))
    assert upload_codes == set(MESSAGES_FOR_UPLOAD_ERRORS)
    for message in MESSAGES_FOR_UPLOAD_ERRORS.values():
        assert "“x.pdf”" in message.format(name="x.pdf", mb=10)
