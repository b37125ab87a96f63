"""Upload content checks: security.md §5 rows 18, 20, 22 and 23."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from intake.domain.files import (
    MAX_DISPLAY_NAME,
    UploadError,
    check_upload,
    safe_display_name,
    sniff_type,
)
from tests.samples import tiny_jpeg, tiny_pdf, tiny_png

MAX = 1024 * 1024


def code_of(data: bytes, name: str, max_bytes: int = MAX) -> str:
    with pytest.raises(UploadError) as caught:
        check_upload(data, name, max_bytes=max_bytes)
    assert isinstance(caught.value, ValueError)
    return caught.value.code


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


# --- samples and sniffing ------------------------------------------------------------------


def test_samples_are_well_formed() -> None:
    pdf = tiny_pdf()
    assert pdf.startswith(b"%PDF-1.4") and pdf.endswith(b"%%EOF\n")
    start = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert pdf[start:].startswith(b"xref")
    png = tiny_png()
    assert png[12:16] == b"IHDR" and struct.unpack(">II", png[16:24]) == (1, 1)
    assert png.endswith(b"IEND\xaeB`\x82")
    jpeg = tiny_jpeg()
    assert jpeg.startswith(b"\xff\xd8\xff\xe0") and jpeg.endswith(b"\xff\xd9")


def test_sniff_type() -> None:
    assert sniff_type(tiny_pdf()[:16]) == "application/pdf"
    assert sniff_type(tiny_png()[:16]) == "image/png"
    assert sniff_type(tiny_jpeg()[:16]) == "image/jpeg"
    assert sniff_type(b"") is None
    assert sniff_type(b"<html>") is None
    assert sniff_type(b" %PDF-1.4") is None  # no leading junk (polyglots)


# --- accepted ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "mime"),
    [
        (tiny_pdf(), "pathology report.pdf", "application/pdf"),
        (tiny_pdf(), "SCAN.PDF", "application/pdf"),
        (tiny_png(), "chart.png", "image/png"),
        (tiny_jpeg(), "photo.jpg", "image/jpeg"),
        (tiny_jpeg(), "photo.JPEG", "image/jpeg"),
    ],
)
def test_good_files(data: bytes, name: str, mime: str) -> None:
    assert check_upload(data, name, max_bytes=MAX) == (mime, name)


def test_pdf_with_trailing_bytes_after_eof_is_complete() -> None:
    assert check_upload(tiny_pdf() + b"\r\n", "a.pdf", max_bytes=MAX)[0] == "application/pdf"


# --- refused content -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"<!DOCTYPE html><script>alert(1)</script>", "referral.pdf"),  # row 18
        (b"<html><body>%PDF-1.4</body></html>", "referral.pdf"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "image.svg"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image.png"),
        (zip_bytes({"a.txt": b"x" * 1000}), "records.zip"),
        (zip_bytes({"word/document.xml": b"<w:document/>"}), "letter.docx"),
        (zip_bytes({"word/document.xml": b"<w:document/>"}), "letter.pdf"),
        (b"MZ\x90\x00" + b"\x00" * 60 + b"PE\x00\x00", "setup.exe"),
        (b"MZ\x90\x00" + b"\x00" * 60, "scan.pdf.exe"),
        (b"\x7fELF\x02\x01\x01", "scan.pdf"),
        (b"GIF89a\x01\x00\x01\x00", "x.png"),
        (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*", "eicar.pdf"),
        (b"plain text", "notes.txt"),
    ],
)
def test_rows_18_20_21_wrong_content(data: bytes, name: str) -> None:
    assert code_of(data, name) == "bad_type"


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (tiny_pdf(), "scan.pdf.exe"),  # row 20: the last extension counts
        (tiny_pdf(), "scan.html"),
        (tiny_pdf(), "scan.svg"),
        (tiny_pdf(), "scan"),
        (tiny_pdf(), "scan.png"),
        (tiny_png(), "scan.jpg"),
        (tiny_jpeg(), "scan.pdf"),
        (tiny_pdf(), "scan.pdf.zip"),
    ],
)
def test_extension_must_match_content(data: bytes, name: str) -> None:
    assert code_of(data, name) == "extension_mismatch"


def test_row_23_empty_file() -> None:
    assert code_of(b"", "scan.pdf") == "empty"


def test_too_large() -> None:
    assert code_of(tiny_pdf(), "scan.pdf", max_bytes=len(tiny_pdf()) - 1) == "too_large"
    assert check_upload(tiny_pdf(), "scan.pdf", max_bytes=len(tiny_pdf()))[0] == "application/pdf"


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (tiny_pdf()[:-6], "scan.pdf"),  # row 23: no %%EOF
        (tiny_pdf()[:200], "scan.pdf"),
        (tiny_pdf()[:-6] + b" " * 2000 + b"x", "scan.pdf"),  # %%EOF not near the end
        (b"%PDF-1.7\n", "scan.pdf"),
        (tiny_png()[:-12], "chart.png"),  # no IEND chunk
        (tiny_png()[:8], "chart.png"),
        (tiny_jpeg()[:-2], "photo.jpg"),  # no FFD9
        (b"\xff\xd8\xff\xe0", "photo.jpg"),
    ],
)
def test_truncated_files(data: bytes, name: str) -> None:
    assert code_of(data, name) == "truncated"


# --- names (rows 4 and 22) -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["scan\x00.pdf", "scan.pdf\x00.exe", "scan\r\n.pdf", "a\nb.pdf", "report\u202efdp.exe",
             "report\u2066.pdf", "x\u200f.pdf"],
)  # fmt: skip
def test_bad_names_rejected(name: str) -> None:
    assert code_of(tiny_pdf(), name) == "bad_name"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("..\\..\\Windows\\system32\\scan.pdf", "scan.pdf"),
        ("C:\\Users\\me\\Desktop\\scan.pdf", "scan.pdf"),
        ("/var/tmp/../scan.pdf", "scan.pdf"),
        ("CON.pdf", "_CON.pdf"),
        ("nul.pdf", "_nul.pdf"),
        ("lpt1.tar.pdf", "_lpt1.tar.pdf"),
        ("report:final?.pdf", "report_final_.pdf"),
        ("  spaced   out  .pdf ", "spaced out.pdf"),
        (".pdf", "document.pdf"),
        ("../.pdf", "document.pdf"),
        ("...pdf", "document.pdf"),
    ],
)
def test_row_22_display_names(name: str, shown: str) -> None:
    assert check_upload(tiny_pdf(), name, max_bytes=MAX) == ("application/pdf", shown)


def test_row_22_long_names_keep_the_extension() -> None:
    name = "x" * 300 + ".pdf"
    mime, shown = check_upload(tiny_pdf(), name, max_bytes=MAX)
    assert shown == "x" * (MAX_DISPLAY_NAME - 4) + ".pdf"
    assert len(shown) == MAX_DISPLAY_NAME
    accented = "é" * 300 + ".jpeg"
    assert safe_display_name(accented) == "é" * (MAX_DISPLAY_NAME - 5) + ".jpeg"


def test_safe_display_name_strips_controls_and_paths() -> None:
    assert safe_display_name("a\x00b\r\nc\t.pdf") == "abc.pdf"
    assert safe_display_name("report\u202efdp.exe") == "reportfdp.exe"
    assert safe_display_name("../../etc/passwd") == "passwd"
    assert safe_display_name("") == "document"
    assert safe_display_name("..", default_ext="pdf") == "document.pdf"
    assert safe_display_name("\u200b\ufeff.png") == "document.png"
    assert safe_display_name("<script>.pdf") == "_script_.pdf"
    for name in ("../" * 50 + "a" * 500, "\x00" * 10, "x." + "y" * 300):
        shown = safe_display_name(name)
        assert 0 < len(shown) <= MAX_DISPLAY_NAME
        assert "/" not in shown and "\\" not in shown and "\x00" not in shown
