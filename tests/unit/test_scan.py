"""The pure scan verdicts: the EICAR test signature and clamd INSTREAM replies."""

from __future__ import annotations

import pytest

from intake.domain import scan
from intake.domain.scan import EICAR, is_eicar, parse_clamd_reply


def test_the_signature_is_the_standard_68_bytes() -> None:
    assert len(EICAR) == 68
    assert EICAR.startswith(b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR")
    assert EICAR.endswith(b"-TEST-FILE!$H+H*")


@pytest.mark.parametrize(
    "data",
    [
        EICAR,
        EICAR + b"\n",
        EICAR + b"\r\n",
        EICAR + b"  \t\r\n",
        EICAR + b"\x1a",
        EICAR + b" " * 60,
    ],
)
def test_eicar_alone_or_with_trailing_whitespace_is_detected(data: bytes) -> None:
    assert is_eicar(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        EICAR[:-1],
        b" " + EICAR,  # AV engines only accept it at the very start
        EICAR + b"X",
        EICAR + b"\n%PDF-1.4",
        EICAR + b" " * 61,  # longer than the 128 bytes the test file may have
        b"%PDF-1.4\n" + EICAR,
        EICAR.lower(),
    ],
)
def test_anything_else_is_not_the_test_file(data: bytes) -> None:
    assert not is_eicar(data)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"stream: OK\x00", (scan.CLEAN, "")),
        (b"stream: OK\n", (scan.CLEAN, "")),
        (b"stream: Eicar-Test-Signature FOUND\x00", (scan.INFECTED, "Eicar-Test-Signature")),
        (b"stream: Win.Trojan.Agent-1 FOUND\n", (scan.INFECTED, "Win.Trojan.Agent-1")),
    ],
)
def test_clamd_verdicts(reply: bytes, expected: tuple[str, str]) -> None:
    assert parse_clamd_reply(reply) == expected


@pytest.mark.parametrize(
    "reply",
    [
        b"",
        b"\x00",
        b"INSTREAM size limit exceeded. ERROR\x00",
        b"stream: INSTREAM size limit exceeded. ERROR\x00",
        b"stream: Can't allocate memory ERROR\x00",
        b"stream:  FOUND\x00",
        b"stream: O",  # cut short
        b"UNKNOWN COMMAND\n",
        b"other: OK\x00",
        b"\xff\xfe garbage",
    ],
)
def test_anything_else_from_clamd_is_an_error(reply: bytes) -> None:
    status, _detail = parse_clamd_reply(reply)
    assert status == scan.ERROR


def test_statuses() -> None:
    assert scan.STATUSES == {"pending", "clean", "infected", "error", "active"}
