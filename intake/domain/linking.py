"""Duplicate-child linking (decision 12): which existing case a new case for the same child joins.

The match itself is the normalized key of :func:`intake.domain.inputs.normalize_person_key`
(NFC, case-folded, accents and punctuation removed, whitespace collapsed, plus the date of
birth). Here we only choose the case: the earliest *open* case of that child, so every later
request for one child points at the same case and coordinators see them together. Closed cases
(terminal statuses) are history, not a link target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from intake.domain.statuses import TERMINAL

__all__ = ["CaseSummary", "case_to_link", "is_open"]


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
