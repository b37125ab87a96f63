"""Every string the code and templates mark for translation has a Spanish text in the
committed catalogue, and the catalogue compiles."""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo

from intake.domain.reference import ALPHABET, format_reference, normalize_reference
from tests.i18n.catalogue import (
    PLACEHOLDER,
    SPANISH_PO,
    english_left,
    extract_template,
    read_catalog,
)


def test_every_translatable_string_has_a_spanish_translation(tmp_path: Path) -> None:
    template = extract_template(tmp_path / "messages.pot")
    spanish = read_catalog(SPANISH_PO)
    assert len(template) > 100, "extraction found the project's strings"
    missing, fuzzy, placeholders = [], [], []
    for message in template:
        if not message.id:
            continue
        translated = spanish.get(message.id, message.context)
        if translated is None or not translated.string:
            missing.append(message.id)
        elif translated.fuzzy:
            fuzzy.append(message.id)
        elif sorted(PLACEHOLDER.findall(str(message.id))) != sorted(
            PLACEHOLDER.findall(str(translated.string))
        ):
            placeholders.append(message.id)
    hint = "run `make translations-update` and translate in " + str(SPANISH_PO)
    assert missing == [], f"{len(missing)} strings have no Spanish text; {hint}"
    assert fuzzy == [], f"fuzzy (unchecked) translations: {fuzzy}"
    assert placeholders == [], f"placeholders differ between English and Spanish: {placeholders}"


def test_spanish_catalogue_compiles_without_errors(tmp_path: Path) -> None:
    catalog = read_catalog(SPANISH_PO)
    problems = [(message.id, errors) for message, errors in catalog.check() if errors]
    assert problems == []
    with (tmp_path / "messages.mo").open("wb") as handle:
        write_mo(handle, catalog)
    assert (tmp_path / "messages.mo").stat().st_size > 10_000


def test_compiled_catalogues_are_built_not_committed() -> None:
    root = SPANISH_PO.parents[3]
    ignored = (root / ".gitignore").read_text().split()
    assert "*.mo" in ignored
    makefile = (root / "Makefile").read_text()
    assert "test: install translations" in makefile
    assert "run: install translations" in makefile


def test_a_reference_with_english_looking_letters_is_not_english_left() -> None:
    # CI once failed on a random reference holding "AN" in a Spanish page.
    reference = next(
        ref for ref in (normalize_reference(f"7K3MAN9THE{c}") for c in ALPHABET) if ref
    )
    page = f"Su número de referencia es {format_reference(reference)} ({reference})."
    assert english_left(page) == []
    assert english_left(page + " Please") != []
