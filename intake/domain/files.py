"""Upload content checks (security.md §5 rows 18-23).

Only PDF, PNG and JPEG are accepted, decided by magic bytes (never by the name or the
browser's Content-Type); the extension must agree with the content. Blobs are stored under
a UUID elsewhere; the name kept here is for display only.

Error codes (``UploadError.code``), checked in this order: ``bad_name``, ``empty``,
``too_large``, ``bad_type``, ``extension_mismatch``, ``truncated``.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "ALLOWED_EXTENSIONS",
    "MAX_DISPLAY_NAME",
    "UploadError",
    "check_upload",
    "safe_display_name",
    "sniff_type",
]

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"

ALLOWED_EXTENSIONS: dict[str, str] = {"pdf": PDF, "png": PNG, "jpg": JPEG, "jpeg": JPEG}
_DEFAULT_EXTENSION = {PDF: "pdf", PNG: "png", JPEG: "jpg"}
MAX_DISPLAY_NAME = 120
_MAX_EXTENSION = 10
_TAIL = 1024

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND\xaeB`\x82"

_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_BAD_NAME_CHARS = frozenset("\x00\r\n") | _BIDI
# Characters Windows or shells treat specially; replaced in display names.
_RESERVED_CHARS = re.compile(r'[<>:"|?*]')
_WINDOWS_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)


class UploadError(ValueError):
    """A refused upload; ``code`` is a stable identifier for the message catalogue."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def sniff_type(head: bytes) -> str | None:
    """The MIME type of ``head`` by magic bytes: PDF, PNG, JPEG, or ``None`` for anything else."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(_PNG_SIGNATURE):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    return None


def _is_complete(data: bytes, mime: str) -> bool:
    tail = data[-_TAIL:]
    if mime == PDF:
        return b"%%EOF" in tail
    if mime == PNG:
        # The first chunk must be a whole IHDR and the file must end with IEND.
        return data[8:16] == b"\x00\x00\x00\rIHDR" and len(data) >= 45 and _PNG_IEND in tail
    # FFD9 (end of image) cannot occur inside entropy-coded data, where FF is stuffed.
    return b"\xff\xd9" in tail


def _split_extension(name: str, *, allow_empty_stem: bool = False) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not (stem or allow_empty_stem):
        return name, ""
    if not ext or len(ext) > _MAX_EXTENSION or not ext.isalnum():
        return name, ""
    return stem, ext


def _extension(filename: str) -> str:
    base = re.split(r"[\\/]", filename)[-1].rstrip(" .")
    return _split_extension(base, allow_empty_stem=True)[1].lower()


def safe_display_name(filename: str, *, default_ext: str | None = None) -> str:
    """A display-safe version of a client file name.

    Keeps only the base name (``/`` and ``\\`` both separate paths), removes control, format
    and bidi characters, replaces ``<>:"|?*``, drops leading dots and trailing dots/spaces,
    prefixes Windows device names (``CON.pdf`` → ``_CON.pdf``) and shortens the stem so the
    whole name is at most 120 characters with its extension kept. An empty result becomes
    ``document.<ext>`` (the name's own extension, else ``default_ext``).
    """
    text = unicodedata.normalize("NFC", filename)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    text = re.split(r"[\\/]", text)[-1]
    text = _RESERVED_CHARS.sub("_", text)
    text = " ".join(text.split())  # collapse whitespace runs
    stem, ext = _split_extension(text.rstrip(" ."), allow_empty_stem=True)
    stem = stem.lstrip(" .").rstrip(" .")
    if not ext and default_ext:
        ext = default_ext
    if not stem.strip(" ._-"):
        stem = "document"
    if stem.split(".")[0].strip().upper() in _WINDOWS_DEVICES:
        stem = "_" + stem
    suffix = f".{ext}" if ext else ""
    stem = stem[: MAX_DISPLAY_NAME - len(suffix)].rstrip(" .")
    return stem + suffix


def check_upload(data: bytes, filename: str, *, max_bytes: int) -> tuple[str, str]:
    """Check an uploaded file; return ``(mime, safe_display_name)`` or raise UploadError.

    ``data`` may be read as ``max_bytes + 1`` bytes so that ``too_large`` is detected without
    buffering the whole upload.
    """
    if any(ch in _BAD_NAME_CHARS for ch in filename):
        raise UploadError("bad_name")
    if not data:
        raise UploadError("empty")
    if len(data) > max_bytes:
        raise UploadError("too_large")
    mime = sniff_type(data[:16])
    if mime is None:
        raise UploadError("bad_type")
    if ALLOWED_EXTENSIONS.get(_extension(filename)) != mime:
        raise UploadError("extension_mismatch")
    if not _is_complete(data, mime):
        raise UploadError("truncated")
    return mime, safe_display_name(filename, default_ext=_DEFAULT_EXTENSION[mime])
