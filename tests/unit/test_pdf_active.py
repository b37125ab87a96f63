"""Active content in PDFs (security.md §5 row 19): what is found, what is passive, evasions."""

from __future__ import annotations

import zlib

import pytest

from intake.domain import pdf_active
from intake.domain.pdf_active import active_content
from tests.samples import object_stream, tiny_pdf


def test_a_plain_document_is_passive() -> None:
    assert active_content(tiny_pdf()) == ()


@pytest.mark.parametrize(
    ("catalog", "objects", "expected"),
    [
        (
            b"/OpenAction 6 0 R",
            (b"<< /S /JavaScript /JS (app.alert(1)) >>",),
            ("JS", "JavaScript", "OpenAction"),
        ),
        (b"/OpenAction << /S /Launch /F (cmd.exe) >>", (), ("Launch", "OpenAction")),
        (b"/Names << /JavaScript 6 0 R >>", (b"<< /Names [(a) 7 0 R] >>",), ("JavaScript",)),
        (b"/AA << /O 6 0 R >>", (b"<< /S /GoTo /D [3 0 R /Fit] >>",), ("AA",)),
        (b"/Names << /EmbeddedFiles 6 0 R >>", (b"<< /Names [] >>",), ("EmbeddedFiles",)),
        (b"/AcroForm << /XFA 6 0 R >>", (b"<< /Length 0 >>",), ("XFA",)),
    ],
)
def test_scripts_actions_and_embedded_files_are_found(
    catalog: bytes, objects: tuple[bytes, ...], expected: tuple[str, ...]
) -> None:
    assert active_content(tiny_pdf(catalog, objects)) == expected


def test_an_open_action_that_only_picks_the_first_page_is_passive() -> None:
    assert active_content(tiny_pdf(b"/OpenAction [3 0 R /Fit]")) == ()
    assert active_content(tiny_pdf(b"/OpenAction\n  [3 0 R /XYZ null null 0]")) == ()


def test_names_written_with_hex_escapes_are_decoded() -> None:
    data = tiny_pdf(b"/Open#41ction 6 0 R", (b"<< /S /J#61vaScript /J#53 (x) >>",))
    assert active_content(data) == ("JS", "JavaScript", "OpenAction")


def test_script_inside_a_compressed_object_stream_is_found() -> None:
    hidden = object_stream(b"<< /S /JavaScript /JS (app.launchURL('x')) >>")
    data = tiny_pdf(b"/OpenAction 100 0 R", (hidden,))
    assert b"JavaScript" not in data  # invisible to a plain byte search
    assert active_content(data) == ("JS", "JavaScript", "OpenAction")


def test_an_object_stream_that_inflates_past_the_cap_is_unreadable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pdf_active, "MAX_INFLATED", 1000)
    bomb = zlib.compress(b" " * 100_000)
    stream = (
        b"<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d >>\nstream\n" % len(bomb)
        + bomb
        + b"\nendstream"
    )
    assert active_content(tiny_pdf(b"", (stream,))) == ("unreadable",)


def test_an_object_stream_that_is_not_deflate_data_is_unreadable() -> None:
    stream = (
        b"<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length 9 >>\n"
        b"stream\nnot zlib!\nendstream"
    )
    assert active_content(tiny_pdf(b"", (stream,))) == ("unreadable",)


@pytest.mark.parametrize(
    "data",
    [
        tiny_pdf().replace(b"%\xe2\xe3\xcf\xd3\n", b"%<html><body>hi</body></html>\n", 1),
        tiny_pdf(b"", (b"<< /Length 30 >>\nstream\n<SCRIPT>alert(1)</SCRIPT>\nendstream",)),
    ],
)
def test_html_markup_in_a_pdf_is_a_polyglot(data: bytes) -> None:
    assert "html" in active_content(data)


def test_a_name_that_only_starts_like_an_active_one_is_passive() -> None:
    data = tiny_pdf(b"/JSON 6 0 R /AAX 7 0 R", (b"<< >>", b"<< >>"))
    assert active_content(data) == ()


@pytest.mark.parametrize(
    ("catalog", "objects"),
    [
        (b"/OpenAction << /S /GoTo /D [3 0 R /Fit] >>", ()),
        (b"/OpenAction 6 0 R", (b"<< /S /GoTo /D [3 0 R /Fit] >>",)),
        # LaTeX's hyperref: the action in a compressed object stream (object 100)
        (b"/OpenAction 100 0 R", (object_stream(b"<< /S /GoTo /D [3 0 R /Fit] >>"),)),
    ],
)
def test_an_open_action_that_goes_to_a_page_is_passive(
    catalog: bytes, objects: tuple[bytes, ...]
) -> None:
    assert active_content(tiny_pdf(catalog, objects)) == ()


@pytest.mark.parametrize(
    ("catalog", "objects"),
    [
        (b"/OpenAction << /S /GoTo /D [3 0 R /Fit] /Next 6 0 R >>", (b"<< /S /Named >>",)),
        (b"/OpenAction 6 0 R", (b"<< /S /URI /URI (https://tracker.example/open) >>",)),
        (b"/OpenAction 9 0 R", ()),  # points at nothing this check can read
        (b"/OpenAction 6 0 R", (b"7 0 R",)),  # a chain of references
    ],
)
def test_any_other_open_action_is_active(catalog: bytes, objects: tuple[bytes, ...]) -> None:
    assert active_content(tiny_pdf(catalog, objects)) == ("OpenAction",)


def test_a_pdf_made_by_a_common_producer_is_passive() -> None:
    from fpdf import FPDF

    document = FPDF()
    document.add_page()
    document.set_font("helvetica", size=12)
    document.cell(text="Flow cytometry report")
    document.link(10, 10, 50, 10, "https://example.org/report")
    assert active_content(bytes(document.output())) == ()
