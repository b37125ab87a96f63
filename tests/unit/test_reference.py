"""Public reference numbers: shape, randomness, normalization and the check character."""

from __future__ import annotations

import re

import pytest

from intake.domain.reference import (
    ALPHABET,
    format_reference,
    is_valid_reference,
    new_reference,
    normalize_reference,
)

CANONICAL = re.compile(r"[0-9ABCDEFGHJKMNPQRSTVWXYZ]{11}")


def sample(n: int) -> list[str]:
    return [new_reference() for _ in range(n)]


def test_new_reference_shape() -> None:
    for ref in sample(500):
        assert CANONICAL.fullmatch(ref)
        assert is_valid_reference(ref)
        assert normalize_reference(ref) == ref


def test_format_groups_for_the_phone() -> None:
    ref = new_reference()
    shown = format_reference(ref)
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{3}", shown)
    assert shown.replace("-", "") == ref
    assert format_reference(shown.lower()) == shown


def test_format_rejects_invalid() -> None:
    with pytest.raises(ValueError):
        format_reference("not a reference")


def test_unique_over_10k() -> None:
    refs = {new_reference() for _ in range(10_000)}
    assert len(refs) == 10_000


def test_not_sequential() -> None:
    refs = [new_reference() for _ in range(200)]
    assert refs != sorted(refs)
    # Every random position uses many symbols (no fixed prefix, counter or timestamp).
    for position in range(10):
        assert len({r[position] for r in refs}) > 16


def test_normalize_accepts_human_input() -> None:
    ref = new_reference()
    shown = format_reference(ref)
    assert normalize_reference(shown) == ref
    assert normalize_reference(f"  {shown.lower()}  ") == ref
    assert normalize_reference(" ".join([ref[:4], ref[4:8], ref[8:]])) == ref
    assert normalize_reference(f"{ref[:4]}\u2013{ref[4:8]}\u2013{ref[8:]}") == ref  # en dashes


def find_with(symbol: str, aliases: str) -> tuple[str, str]:
    for _ in range(10_000):
        ref = new_reference()
        if symbol in ref[:10]:
            typed = ref.replace(symbol, aliases[0], 1)
            return ref, typed
    raise AssertionError("no sample found")


@pytest.mark.parametrize(("symbol", "alias"), [("0", "O"), ("0", "o"), ("1", "I"), ("1", "l")])
def test_crockford_aliases(symbol: str, alias: str) -> None:
    ref, typed = find_with(symbol, alias)
    assert normalize_reference(typed) == ref


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ABC",
        "0123456789AB",  # too long
        "0123-4567-89",  # too short
        "ABCD-EFGH-JKU",  # U is not in the alphabet
        "ABCD_EFGH_JKM",
        "ABCD/EFGH/JKM",
        "ABCD\x00EFGH-JKM",
        "ＡＢＣＤ-ＥＦＧＨ-ＪＫＭ",  # full-width letters
        "ß" * 11,
        "A" * 10_000,
    ],
)
def test_normalize_rejects_bad_shapes(text: str) -> None:
    assert normalize_reference(text) is None
    assert not is_valid_reference(text)


def test_check_character_uses_the_alphabet_only() -> None:
    checks = {new_reference()[-1] for _ in range(3000)}
    assert checks <= set(ALPHABET)
    assert len(checks) == 32


def test_every_single_substitution_is_caught() -> None:
    for ref in sample(200):
        for i, original in enumerate(ref):
            for replacement in ALPHABET:
                if replacement == original:
                    continue
                corrupted = ref[:i] + replacement + ref[i + 1 :]
                assert normalize_reference(corrupted) is None, (ref, corrupted)


def test_every_adjacent_transposition_is_caught() -> None:
    for ref in sample(200):
        for i in range(len(ref) - 1):
            if ref[i] == ref[i + 1]:
                continue
            swapped = ref[:i] + ref[i + 1] + ref[i] + ref[i + 2 :]
            assert normalize_reference(swapped) is None, (ref, swapped)


def test_jump_transpositions_are_caught_too() -> None:
    for ref in sample(200):
        for i in range(len(ref) - 2):
            if ref[i] == ref[i + 2]:
                continue
            swapped = ref[:i] + ref[i + 2] + ref[i + 1] + ref[i] + ref[i + 3 :]
            assert normalize_reference(swapped) is None
