"""Public reference numbers for referrals (decision 1).

A reference is 10 random Crockford base32 characters (50 bits from :mod:`secrets`, never
derived from identity or from a sequence) followed by one check character, 11 characters in
all. It is displayed in groups of four, four and three (``7K3M-Q9TX-2HF``) so it can be read
over the phone.

Check character: a *mod-32 scheme* rather than Crockford's mod-37 symbols, so the reference
stays alphanumeric (no ``* ~ $ =`` to spell out on the phone or escape in URLs). The scheme is
the Damm algorithm over the quasigroup ``x ∘ y = α·x ⊕ y`` in GF(32) (field polynomial
``x⁵ + x² + 1``, ``α = 2``). Because multiplication by ``α`` is a bijection and ``α ≠ 1``:

* every single-character substitution is detected (each position has a non-zero weight);
* every adjacent transposition is detected, including one with the check character
  (``(c∘x)∘y = (c∘y)∘x`` implies ``(α + 1)(x ⊕ y) = 0``, hence ``x = y``);
* transpositions across one character (``a b c`` → ``c b a``) are detected as well.

A valid reference drives the running interim value to 0.
"""

from __future__ import annotations

import secrets

__all__ = [
    "ALPHABET",
    "REFERENCE_LENGTH",
    "format_reference",
    "is_valid_reference",
    "new_reference",
    "normalize_reference",
]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_LENGTH = 10
REFERENCE_LENGTH = RANDOM_LENGTH + 1
_GROUPS = (4, 4, 3)
_MAX_INPUT = 64  # longer input cannot be a reference, however it is punctuated

_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
# Crockford's decoding aliases: letters that are easily read as digits.
_ALIASES = {"O": "0", "I": "1", "L": "1"}
# Characters people put between groups: spaces, hyphen-minus and the Unicode dashes that word
# processors and phones substitute for it.
_SEPARATORS = frozenset(" \t\u00a0-\u2010\u2011\u2012\u2013\u2014\u2015\u2212")

_FIELD_POLY = 0b100101  # x^5 + x^2 + 1, primitive over GF(2)
_ALPHA = 2


def _gf32_mul(a: int, b: int) -> int:
    product = 0
    while b:
        if b & 1:
            product ^= a
        b >>= 1
        a <<= 1
        if a & 0b100000:
            a ^= _FIELD_POLY
    return product


_TIMES_ALPHA = tuple(_gf32_mul(_ALPHA, x) for x in range(32))


def _interim(values: list[int]) -> int:
    state = 0
    for value in values:
        state = _TIMES_ALPHA[state] ^ value
    return state


def _check_value(values: list[int]) -> int:
    # The check value c makes α·interim ⊕ c = 0, i.e. c = α·interim.
    return _TIMES_ALPHA[_interim(values)]


def new_reference() -> str:
    """Return a fresh canonical reference: 10 random characters plus the check character."""
    # One call for all the randomness: the low 5 bits of a uniform byte are uniform (256 = 8·32).
    values = [byte & 31 for byte in secrets.token_bytes(RANDOM_LENGTH)]
    values.append(_check_value(values))
    return "".join(ALPHABET[v] for v in values)


def normalize_reference(text: str) -> str | None:
    """Return the canonical 11-character form of ``text``, or ``None`` if it is not a reference.

    Accepts lower case, spaces and dashes anywhere, and Crockford's aliases (``O`` → ``0``,
    ``I``/``L`` → ``1``). Anything else, a wrong length or a wrong check character gives
    ``None``.
    """
    if len(text) > _MAX_INPUT:
        return None
    chars: list[str] = []
    for raw in text:
        if raw in _SEPARATORS:
            continue
        # Only ASCII letters and digits: str.upper() would turn "ß" into "SS".
        if not (raw.isascii() and raw.isalnum()):
            return None
        ch = raw.upper()
        ch = _ALIASES.get(ch, ch)
        if ch not in _VALUE:  # "U"
            return None
        chars.append(ch)
    if len(chars) != REFERENCE_LENGTH:
        return None
    if _interim([_VALUE[ch] for ch in chars]) != 0:
        return None
    return "".join(chars)


def is_valid_reference(text: str) -> bool:
    """Whether ``text`` normalizes to a reference with a correct check character."""
    return normalize_reference(text) is not None


def format_reference(ref: str) -> str:
    """Group a reference in fours, fours and threes (``7K3M-Q9TX-2HF``) for display.

    Accepts any form :func:`normalize_reference` accepts; raises ``ValueError`` otherwise.
    """
    canonical = normalize_reference(ref)
    if canonical is None:
        raise ValueError("not a valid reference")
    parts: list[str] = []
    start = 0
    for size in _GROUPS:
        parts.append(canonical[start : start + size])
        start += size
    return "-".join(parts)
