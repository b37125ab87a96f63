"""Helpers for the language tests: the compiled catalogue, English left in a page, page text."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from intake.config import PROJECT_ROOT

TRANSLATIONS = PROJECT_ROOT / "translations"
SPANISH_PO = TRANSLATIONS / "es" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")
# Words that only English uses; any of them in a Spanish page means something was missed.
ENGLISH_ONLY_WORDS = frozenset(
    "the and your you with please we our is are what this that for of to from will have has "
    "or if which who when how not an it".split()
)
# A reference such as 7K3M-AN9X-2HF, or a link's token, is random letters and digits: its
# "AN" is not English (CI once failed on that).
REFERENCE_SHAPED = re.compile(
    r"(?<![\w-])(?:[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{3}|[0-9A-Z]{11})(?![\w-])"
)
URL = re.compile(r"https?://\S+")


def without_random_parts(text: str) -> str:
    """``text`` without references and links, whose random characters can spell anything."""
    return REFERENCE_SHAPED.sub(" ", URL.sub(" ", text))


def read_catalog(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle)


def ensure_compiled() -> None:
    """Compile the Spanish catalogue when the .mo is missing or older (what `make translations`
    does before the tests), so a bare `pytest` sees the same texts."""
    mo = SPANISH_PO.with_suffix(".mo")
    if mo.exists() and mo.stat().st_mtime >= SPANISH_PO.stat().st_mtime:
        return
    catalog = read_catalog(SPANISH_PO)
    with mo.open("wb") as handle:
        write_mo(handle, catalog, use_fuzzy=False)


def extract_template(destination: Path) -> Catalog:
    """Every translatable string in the code and templates now, as `make translations-update`
    extracts it (babel.cfg)."""
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run(
        [
            str(pybabel),
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-k",
            "N_",
            "-k",
            "pgettext:1c,2",
            "-k",
            "lazy_pgettext:1c,2",
            "-o",
            str(destination),
            ".",
        ],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
    )
    return read_catalog(destination)


def english_fragments() -> list[str]:
    """Pieces of English source strings that must not survive in a Spanish page: every run of
    text between placeholders that is long enough to be unambiguous and differs in Spanish."""
    fragments: set[str] = set()
    for message in read_catalog(SPANISH_PO):
        if not message.id or not isinstance(message.id, str) or message.string == message.id:
            continue
        for piece in PLACEHOLDER.split(message.id):
            piece = piece.strip(" .,:;()")
            if len(piece) >= 14 and " " in piece:
                fragments.add(piece)
    return sorted(fragments)


class _TextCollector(HTMLParser):
    """Visible text plus the attributes people read (labels for assistive technology,
    placeholders, alt text); skips scripts, styles and anything marked lang="en"."""

    READ_ATTRIBUTES = ("aria-label", "title", "placeholder", "alt")
    VOID = frozenset({"input", "br", "img", "meta", "link", "hr", "source", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.stack: list[bool] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        skipping = tag in ("script", "style") or (values.get("lang") or "es").startswith("en")
        if tag == "html":
            skipping = False
        if tag not in self.VOID:
            self.stack.append(skipping)
            if skipping:
                self.skip_depth += 1
        if not self.skip_depth and not skipping:
            self.parts.extend(str(values[a]) for a in self.READ_ATTRIBUTES if values.get(a))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID or not self.stack:
            return
        if self.stack.pop():
            self.skip_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.parts.append(data)


def visible_text(html: str) -> str:
    collector = _TextCollector()
    collector.feed(html)
    return re.sub(r"\s+", " ", " ".join(collector.parts)).strip()


def english_left(text: str, *, allowed: tuple[str, ...] = ()) -> list[str]:
    """English source fragments and English-only words found in ``text``."""
    for value in allowed:
        text = text.replace(value, " ")
    text = without_random_parts(text)
    found = [
        fragment
        for fragment in english_fragments()
        if fragment in text and re.search(rf"(?<!\w){re.escape(fragment)}(?!\w)", text)
    ]
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
    found += sorted(words & ENGLISH_ONLY_WORDS)
    return found
