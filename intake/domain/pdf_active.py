"""Active content in an uploaded PDF (security.md §5 row 19), pure.

A PDF can carry JavaScript, actions that run when it opens or when a page or field is shown,
launch other programs, embed files, or double as an HTML page (a polyglot). None of that
belongs in a clinical document, and a viewer that honours it runs the sender's code on a
coordinator's machine. Such a PDF is stored quarantined and never served (the scanner service).

The check reads the file the way pdfid does, by PDF name tokens, with two additions that
defeat the usual evasions: names are decoded (``/J#61vaScript`` is ``/JavaScript``), and
compressed object streams (``/Type /ObjStm``, where PDF 1.5+ keeps its dictionaries) are
inflated, with a cap on how much, so a decompression bomb cannot hide anything either.
"""

from __future__ import annotations

import re
import zlib
from typing import Final

__all__ = ["ACTIVE_NAMES", "HTML_MARKERS", "active_content"]

# Names whose presence means code or actions: scripts, launch, open/page/field actions,
# embedded files, Flash, XML forms (XFA can script), form submission and data import.
ACTIVE_NAMES: Final = frozenset(
    {
        "JavaScript",
        "JS",
        "Launch",
        "OpenAction",
        "AA",
        "EmbeddedFile",
        "EmbeddedFiles",
        "RichMedia",
        "XFA",
        "SubmitForm",
        "ImportData",
    }
)
HTML_MARKERS: Final = (b"<html", b"<script", b"<body", b"<!doctype html", b"<iframe", b"<svg")

_HEAD: Final = 1024
# Inflating object streams: at most this many bytes in all (a bomb is a finding, not a hang).
MAX_INFLATED: Final = 32 * 1024 * 1024
# PDF delimiters and whitespace end a name token (ISO 32000-1 §7.2.2).
_NAME: Final = re.compile(rb"/([^\x00\t\n\x0c\r ()<>\[\]{}/%]+)")
_ESCAPE: Final = re.compile(rb"#([0-9A-Fa-f]{2})")
_SCRIPT_TAG: Final = re.compile(rb"<script", re.IGNORECASE)
_GOTO: Final = re.compile(rb"/S\s*/GoTo(?![A-Za-z#])")
_REFERENCE: Final = re.compile(rb"(\d+)\s+(\d+)\s+R(?![A-Za-z])")
_WHITESPACE: Final = b"\x00\t\n\x0c\r "
_VALUE: Final = 512  # bytes read after an /OpenAction or an object header
_STREAM: Final = re.compile(rb"<<((?:(?!>>\s*stream).){0,2048}?)>>\s*stream\r?\n", re.S)


def _names(data: bytes) -> tuple[set[str], list[bytes]]:
    """The decoded names in ``data``, and what follows each /OpenAction (its value)."""
    found: set[str] = set()
    open_actions: list[bytes] = []
    for match in _NAME.finditer(data):
        raw = match.group(1)
        if b"#" in raw:
            raw = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)
        name = raw.decode("latin-1")
        found.add(name)
        if name == "OpenAction":
            open_actions.append(data[match.end() : match.end() + _VALUE])
    return found, open_actions


def _object_streams(data: bytes) -> tuple[dict[int, list[bytes]], list[bytes], bool]:
    """Objects kept in object streams (by number), the inflated streams, and whether any
    stream could not be read within the cap."""
    objects: dict[int, list[bytes]] = {}
    inflated: list[bytes] = []
    budget = MAX_INFLATED
    unreadable = False
    for match in _STREAM.finditer(data):
        dictionary = match.group(1)
        if b"/ObjStm" not in dictionary:
            continue
        if b"/FlateDecode" not in dictionary or b"/Predictor" in dictionary:
            # Uncompressed object streams are scanned with the file itself; other filters
            # (LZW, ASCII85, predictors ...) are not undone here: the stream is unreadable.
            unreadable = unreadable or b"/Filter" in dictionary
            continue
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(data[match.end() :], budget + 1)
        except zlib.error:
            unreadable = True
            continue
        if len(out) > budget:
            return objects, inflated, True
        budget -= len(out)
        inflated.append(out)
        _index_object_stream(out, dictionary, objects)
    return objects, inflated, unreadable


def _index_object_stream(out: bytes, dictionary: bytes, objects: dict[int, list[bytes]]) -> None:
    """Add the objects of one inflated object stream: a header of (number, offset) pairs, and
    the bodies from /First on."""
    first = re.search(rb"/First\s+(\d+)", dictionary)
    if first is None:
        return
    start = int(first.group(1))
    numbers = [int(n) for n in re.findall(rb"\d+", out[:start])]
    pairs = list(zip(numbers[0::2], numbers[1::2], strict=False))
    for index, (number, offset) in enumerate(pairs):
        end = pairs[index + 1][1] if index + 1 < len(pairs) else len(out) - start
        objects.setdefault(number, []).append(out[start + offset : start + end])


def _object_bodies(number: int, data: bytes, stream_objects: dict[int, list[bytes]]) -> list[bytes]:
    """Every body of object ``number`` (an updated file can hold several revisions)."""
    bodies = [
        data[found.end() : found.end() + _VALUE]
        for found in re.finditer(rb"(?<![0-9])%d\s+\d+\s+obj\b" % number, data)
    ]
    return bodies + stream_objects.get(number, [])


def _is_passive_open_action(
    value: bytes, data: bytes, stream_objects: dict[int, list[bytes]], depth: int = 0
) -> bool:
    """An /OpenAction that only opens the document at a page: a destination (array or named),
    or a /GoTo action with no /Next, directly or through an indirect reference."""
    value = value.lstrip(_WHITESPACE)
    if value.startswith((b"[", b"(")):
        return True
    if value.startswith(b"<<"):
        action = value[2:].split(b">>", 1)[0]
        if b"<<" in action:
            return False
        names, _ = _names(action)
        return bool(_GOTO.search(action)) and not (names & ({"Next"} | ACTIVE_NAMES))
    reference = _REFERENCE.match(value)
    if reference is None or depth >= 2:
        return False
    bodies = _object_bodies(int(reference.group(1)), data, stream_objects)
    return bool(bodies) and all(
        _is_passive_open_action(body, data, stream_objects, depth + 1) for body in bodies
    )


def active_content(data: bytes) -> tuple[str, ...]:
    """What makes this PDF active, sorted (empty for a passive document).

    Findings are active name tokens (``JavaScript``, ``OpenAction`` ...), ``html`` for HTML
    markup (a PDF/HTML polyglot) and ``unreadable`` for object streams that could not be
    inflated within the cap, which therefore could hide anything. An ``/OpenAction`` that only
    opens the document at a page (a destination, or a /GoTo action such as LaTeX's hyperref
    writes) is passive.
    """
    names, open_actions = _names(data)
    stream_objects, streams, unreadable = _object_streams(data)
    for stream in streams:
        stream_names, stream_open_actions = _names(stream)
        names |= stream_names
        open_actions += stream_open_actions
    findings = names & ACTIVE_NAMES
    if all(_is_passive_open_action(v, data, stream_objects) for v in open_actions):
        findings.discard("OpenAction")
    lowered_head = data[:_HEAD].lower()
    if any(marker in lowered_head for marker in HTML_MARKERS) or _SCRIPT_TAG.search(data):
        findings.add("html")
    if unreadable:
        findings.add("unreadable")
    return tuple(sorted(findings))
