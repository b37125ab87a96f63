"""Near matches of decision 12: offered to a coordinator, never linked by themselves."""

from __future__ import annotations

from datetime import date

import pytest

from intake.domain.inputs import normalize_person_key
from intake.domain.linking import (
    DOB_DAY_MONTH_SWAPPED,
    DOB_ONE_DIGIT,
    NAME_PART_MISSING,
    NAME_SPELLING,
    NAMES_SWAPPED,
    ChildIdentity,
    dob_variants,
    name_variants,
    near_match,
    parse_person_key,
)

DOB = "2015-03-14"


def child(given: str, family: str, dob: str = DOB) -> ChildIdentity:
    return parse_person_key(normalize_person_key(given, family, dob))


POSITIVES = [
    # (first child, second child, why)
    (("Mateo", "Núñez"), ("Mateo", "Nuñes"), NAME_SPELLING),
    (("Jonathan", "Smith"), ("Jonathon", "Smith"), NAME_SPELLING),
    (("Jonathan", "Smith"), ("Johnathan", "Smith"), NAME_SPELLING),
    (("Lucas", "Schmidt"), ("Lukas", "Schmidt"), NAME_SPELLING),
    (("Sofia", "Martinez"), ("Sofia", "Martniez"), NAME_SPELLING),  # two letters transposed
    (("Sofia", "Martinez"), ("Sofia", "Martines"), NAME_SPELLING),
    (("Alexander", "Kowalczyk"), ("Alexandre", "Kowalczyk"), NAME_SPELLING),
    (("Maximiliano", "Fernandez"), ("Maximilliano", "Fernandes"), NAME_SPELLING),
    (("Mateo", "Núñez"), ("Núñez", "Mateo"), NAMES_SWAPPED),
    (("Valentina", "García López"), ("Valentina", "García"), NAME_PART_MISSING),
    (("Valentina", "García López"), ("Valentina", "López"), NAME_PART_MISSING),
    (("Mateo Alejandro", "Núñez"), ("Mateo", "Núñez"), NAME_PART_MISSING),
    (("Liam", "O'Brien"), ("Liam", "O Brien"), NAME_SPELLING),  # "obrien" and "o brien"
]


@pytest.mark.parametrize(("first", "second", "why"), POSITIVES)
def test_near_names_on_the_same_dob(
    first: tuple[str, str], second: tuple[str, str], why: str
) -> None:
    a, b = child(*first), child(*second)
    assert near_match(a, b) == why
    assert near_match(b, a) == why


NEGATIVES = [
    # Twins: one DOB and family name, different given names.
    (("Mateo", "Núñez"), ("Lucía", "Núñez")),
    (("Ana", "Pérez"), ("Ava", "Pérez")),
    (("Mateo", "Núñez"), ("Matea", "Núñez")),
    (("Daniel", "Smith"), ("Daniela", "Smith")),
    (("Gabriel", "Smith"), ("Gabrielle", "Smith")),
    (("Isabella", "Rossi"), ("Isabelle", "Rossi")),
    (("Jayden", "Brooks"), ("Hayden", "Brooks")),
    (("Maria Jose", "Gomez"), ("Maria Fernanda", "Gomez")),
    (("Liam", "Jones"), ("Lian", "Jones")),
    # Unrelated children born the same day.
    (("Mateo", "Núñez"), ("Mateo", "Anderson")),
    (("Emma", "Smith"), ("Olivia", "Brown")),
    (("Valentina", "García López"), ("Valentina", "Ruiz Díaz")),
]


@pytest.mark.parametrize(("first", "second"), NEGATIVES)
def test_other_children_on_the_same_dob_are_not_offered(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    a, b = child(*first), child(*second)
    assert near_match(a, b) is None
    assert near_match(b, a) is None


DOBS = [
    ("2015-03-14", "2015-03-15", DOB_ONE_DIGIT),
    ("2015-03-14", "2016-03-14", DOB_ONE_DIGIT),
    ("2015-03-14", "2015-08-14", DOB_ONE_DIGIT),
    ("2015-03-04", "2015-04-03", DOB_DAY_MONTH_SWAPPED),
    ("2015-11-12", "2015-12-11", DOB_DAY_MONTH_SWAPPED),
    ("2015-03-14", "2015-03-14", None),  # identical keys: an exact match, not a near one
    ("2015-03-14", "2015-03-25", None),  # two digits
    ("2015-03-14", "2013-05-14", None),
    ("2015-03-14", "2014-03-15", None),
]


@pytest.mark.parametrize(("first", "second", "why"), DOBS)
def test_same_name_with_a_mistyped_dob(first: str, second: str, why: str | None) -> None:
    a, b = child("Mateo", "Núñez", first), child("mateo", "NUNEZ", second)
    assert near_match(a, b) == why
    assert near_match(b, a) == why


def test_a_near_name_and_a_near_dob_together_are_too_far() -> None:
    assert near_match(child("Jonathan", "Smith"), child("Jonathon", "Smith", "2015-03-15")) is None
    assert near_match(child("Mateo", "Núñez"), child("Núñez", "Mateo", "2015-03-15")) is None


def test_the_exact_lookups_cover_every_dob_and_name_variant() -> None:
    """The service finds these by indexed key equality, so the variants must be complete."""
    dob = date(2015, 3, 4)
    variants = set(dob_variants(dob))
    assert date(2015, 4, 3) in variants and date(2015, 3, 5) in variants
    assert date(2025, 3, 4) in variants and dob not in variants
    for other in variants:
        assert near_match(child("A", "B", dob.isoformat()), child("A", "B", other.isoformat()))
    base = child("Valentina", "García López")
    assert set(name_variants(base)) == {
        ("garcia lopez", "valentina"),
        ("valentina", "garcia"),
        ("valentina", "lopez"),
    }
    for given, family in name_variants(base):
        assert near_match(base, ChildIdentity(given, family, base.dob)) is not None
