"""Duplicate-child linking (decision 12): which existing case a new case for the same child joins.

The match itself is the normalized key of :func:`intake.domain.inputs.normalize_person_key`
(NFC, case-folded, accents and punctuation removed, whitespace collapsed, plus the date of
birth). Here we only choose the case: the earliest *open* case of that child, so every later
request for one child points at the same case and coordinators see them together. Closed cases
(terminal statuses) are history, not a link target.

Near matches (a typo, swapped names, a forgotten second family name, a mistyped date of birth)
are only offered to a coordinator, who links them or dismisses the offer: a wrong automatic
link would merge two children's records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from difflib import SequenceMatcher

from intake.domain.statuses import TERMINAL

__all__ = [
    "NEAR_MATCH_LABELS",
    "CaseSummary",
    "ChildIdentity",
    "case_to_link",
    "dob_variants",
    "is_open",
    "name_variants",
    "near_match",
    "parse_person_key",
]


@dataclass(frozen=True)
class CaseSummary:
    id: int
    status: str
    created_at: datetime


def is_open(status: str) -> bool:
    return status not in TERMINAL


def case_to_link(same_child: Sequence[CaseSummary]) -> int | None:
    """The id a new case for this child links to, or None when the child has no open case."""
    open_cases = sorted(
        (case for case in same_child if is_open(case.status)),
        key=lambda case: (case.created_at, case.id),
    )
    if not open_cases:
        return None
    return open_cases[0].id


# -- near matches (offered to a coordinator, never linked automatically) -------------------------

# Reasons a pair is offered, as codes (the case page and timeline show them in English).
NAMES_SWAPPED = "names_swapped"
NAME_PART_MISSING = "name_part_missing"
NAME_SPELLING = "name_spelling"
DOB_DAY_MONTH_SWAPPED = "dob_day_month_swapped"
DOB_ONE_DIGIT = "dob_one_digit"
NEAR_MATCH_LABELS = {
    NAMES_SWAPPED: "given and family names swapped",
    NAME_PART_MISSING: "a second name missing on one case",
    NAME_SPELLING: "names spelled slightly differently",
    DOB_DAY_MONTH_SWAPPED: "same name, day and month of birth swapped",
    DOB_ONE_DIGIT: "same name, one digit of the date of birth differs",
}

# A longer name may differ in more than one letter and still be the same name when the two
# spellings are this similar (difflib's ratio, 1.0 = identical).
SIMILARITY_THRESHOLD = 0.88
# A one-letter difference in a given name this short is as likely another child (Ana, Ava).
MIN_GIVEN_LENGTH_FOR_TYPO = 5


@dataclass(frozen=True)
class ChildIdentity:
    """A child as decision 12 compares them: folded given and family names and the DOB."""

    given: str
    family: str
    dob: date

    @property
    def person_key(self) -> str:
        return f"{self.given}|{self.family}|{self.dob.isoformat()}"


def parse_person_key(person_key: str) -> ChildIdentity:
    """The parts of a key made by :func:`intake.domain.inputs.normalize_person_key`.

    Folding removes punctuation, so a name never contains the ``|`` separator.
    """
    given, family, dob = person_key.split("|")
    return ChildIdentity(given, family, date.fromisoformat(dob))


def near_match(a: ChildIdentity, b: ChildIdentity) -> str | None:
    """Why ``a`` and ``b`` may be the same child though their keys differ, or None.

    Identical keys are an exact match (linked automatically), not a near one. Twins share a
    date of birth and a family name, so a different given name is never enough: a spelling
    difference in the given name counts only when it keeps the first letter and is not at the
    end of the name (Mateo/Matea, Daniel/Daniela are siblings' names, not typos).
    """
    if a == b:
        return None
    if a.dob == b.dob:
        if a.given == b.family and a.family == b.given:
            return NAMES_SWAPPED
        given = _given_close(a.given, b.given)
        family = _family_close(a.family, b.family)
        if given is not None and family is not None:
            return NAME_PART_MISSING if NAME_PART_MISSING in (given, family) else NAME_SPELLING
        return None
    if a.given == b.given and a.family == b.family:
        if a.dob == _day_month_swapped(b.dob):
            return DOB_DAY_MONTH_SWAPPED
        if _one_digit_apart(a.dob, b.dob):
            return DOB_ONE_DIGIT
    return None


def dob_variants(dob: date) -> list[date]:
    """Dates a mistyped ``dob`` could have been: day and month swapped, or one digit changed.

    Used to look candidates up by exact key (an indexed equality), so it must yield every date
    :func:`near_match` accepts for the same name.
    """
    text = dob.isoformat()
    found: set[date] = set()
    swapped = _day_month_swapped(dob)
    if swapped is not None:
        found.add(swapped)
    for position, char in enumerate(text):
        if not char.isdigit():
            continue
        for digit in "0123456789":
            if digit == char:
                continue
            candidate = _date_or_none(text[:position] + digit + text[position + 1 :])
            if candidate is not None:
                found.add(candidate)
    found.discard(dob)
    return sorted(found)


def name_variants(child: ChildIdentity) -> list[tuple[str, str]]:
    """(given, family) pairs on the same DOB that are near matches found without fuzziness:
    swapped names and one name part dropped. Also looked up by exact key."""
    variants = {(child.family, child.given)}
    for given in _shortened(child.given):
        variants.add((given, child.family))
    for family in _shortened(child.family):
        variants.add((child.given, family))
    variants.discard((child.given, child.family))
    return sorted(v for v in variants if v[0] or v[1])


def _shortened(name: str) -> list[str]:
    """The name with one of its words left out (a second family or given name forgotten)."""
    words = name.split()
    if len(words) < 2:
        return []
    return [" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))]


def _family_close(a: str, b: str) -> str | None:
    # Siblings share a family name, so any close spelling with a close given name is offered.
    if a == b or a.replace(" ", "") == b.replace(" ", ""):
        return "same"
    if _one_part_missing(a, b):
        return NAME_PART_MISSING
    if min(len(a), len(b)) >= 3 and _edit_distance_at_most_one(a, b):
        return NAME_SPELLING
    if _similar(a, b):
        return NAME_SPELLING
    return None


def _given_close(a: str, b: str) -> str | None:
    if a == b or a.replace(" ", "") == b.replace(" ", ""):
        return "same"
    if _one_part_missing(a, b):
        return NAME_PART_MISSING
    if not a or not b or a[0] != b[0] or _differs_only_at_end(a, b):
        return None
    if min(len(a), len(b)) >= MIN_GIVEN_LENGTH_FOR_TYPO and _edit_distance_at_most_one(a, b):
        return NAME_SPELLING
    if _similar(a, b):
        return NAME_SPELLING
    return None


def _one_part_missing(a: str, b: str) -> bool:
    """One name is the other with a word left out ("garcia" and "garcia lopez")."""
    short, long = sorted((a.split(), b.split()), key=len)
    if not short or len(long) != len(short) + 1:
        return False
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _differs_only_at_end(a: str, b: str) -> bool:
    """Mateo/Matea, Daniel/Daniela, Gabriel/Gabrielle: siblings' names, not typos."""
    prefix = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        prefix += 1
    tail_a, tail_b = a[prefix:], b[prefix:]
    if len(tail_a) <= 1 and len(tail_b) <= 1:
        return True
    return min(len(tail_a), len(tail_b)) == 0 and max(len(tail_a), len(tail_b)) <= 3


def _similar(a: str, b: str) -> bool:
    # Only for longer names: on short ones the ratio jumps with each letter.
    if min(len(a), len(b)) < 8:
        return False
    return SequenceMatcher(None, a, b, autojunk=False).ratio() >= SIMILARITY_THRESHOLD


def _edit_distance_at_most_one(a: str, b: str) -> bool:
    """One letter substituted, inserted, deleted, or two neighbours transposed."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _day_month_swapped(dob: date) -> date | None:
    if dob.day == dob.month or dob.day > 12:
        return None
    return date(dob.year, dob.day, dob.month)


def _one_digit_apart(a: date, b: date) -> bool:
    return sum(x != y for x, y in zip(a.isoformat(), b.isoformat(), strict=True)) == 1


def _date_or_none(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
