"""Near matches of decision 12: open cases that may be the same child as this one, offered to a
coordinator who links them ("Link as the same child") or dismisses the offer ("Not the same
child"). The domain (intake.domain.linking.near_match) decides what is near; here we find the
candidates, keep the offer honest on every action, and record what the coordinator decided.

Lookups: names alike with a mistyped DOB, swapped names and a dropped name part are found by
exact ``person_key`` (ix_referral_person_key); spelling differences are found by the same DOB
among open cases, then checked one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import orm

from intake.domain import linking
from intake.extensions import db
from intake.models import Referral, TimelineEvent, User
from intake.models.referral import OPEN_ONLY
from intake.services import audit, queue
from intake.services.db import take_sqlite_write_lock

MESSAGE_KIND = "existing_patient_message"
DISMISSED = "near_match_dismissed"
# Candidate rows are shown as a reference and a status only.
_LIGHT = (
    orm.defer(Referral.answers),
    orm.defer(Referral.triage_reasons),
    orm.defer(Referral.hard_flags),
)


@dataclass(frozen=True)
class Candidate:
    referral: Referral
    reason: str

    @property
    def reason_label(self) -> str:
        return linking.NEAR_MATCH_LABELS.get(self.reason, self.reason)


@dataclass(frozen=True)
class Offer:
    """What the viewer is shown: candidates in their scope, and how many are outside it."""

    shown: list[Candidate]
    out_of_scope: int


class NearMatchRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _takes_part(referral: Referral) -> bool:
    # A family's message is matched to its case by reference (decision 11), not linked here.
    return referral.kind != MESSAGE_KIND and linking.is_open(referral.status)


def _root_id(referral: Referral) -> int:
    """The case a group of one child's cases points at: links are one hop, to the group's
    oldest case, so every page of the group can list the others."""
    return referral.linked_case_id or referral.id


def _ordered(a: Referral, b: Referral) -> tuple[Referral, Referral]:
    """(earlier, later): the later case is the one that points at the earlier."""
    earlier, later = sorted((a, b), key=lambda r: (r.created_at, r.id))
    return earlier, later


def _dismissed_ids(referral: Referral) -> set[int]:
    details = db.session.scalars(
        sa.select(TimelineEvent.detail).where(
            TimelineEvent.referral_id == referral.id, TimelineEvent.action == DISMISSED
        )
    )
    return {int(detail["case_id"]) for detail in details if detail and "case_id" in detail}


def reason_for(
    referral: Referral, other: Referral, dismissed: set[int] | None = None
) -> str | None:
    """Why ``other`` is offered as the same child as ``referral``, or None if it is not.

    Offered only while both cases are open, the later one is not linked to any case yet (an
    exact link or an earlier decision stands) and nobody said they are different children.
    """
    if other.id == referral.id or not (_takes_part(referral) and _takes_part(other)):
        return None
    if other.person_key == referral.person_key:
        return None  # an exact match: linked at intake, listed under "Linked cases"
    if _root_id(other) == _root_id(referral):
        return None  # already one child's group of cases
    _earlier, later = _ordered(referral, other)
    if later.linked_case_id is not None:
        return None
    if other.id in (_dismissed_ids(referral) if dismissed is None else dismissed):
        return None
    return linking.near_match(
        linking.parse_person_key(referral.person_key), linking.parse_person_key(other.person_key)
    )


def candidates(referral: Referral) -> list[Candidate]:
    """Every open case offered as possibly the same child, in any scope, oldest first."""
    if not _takes_part(referral):
        return []
    child = linking.parse_person_key(referral.person_key)
    keys = {
        linking.ChildIdentity(child.given, child.family, dob).person_key
        for dob in linking.dob_variants(child.dob)
    } | {
        linking.ChildIdentity(given, family, child.dob).person_key
        for given, family in linking.name_variants(child)
    }
    wanted = (Referral.id != referral.id, Referral.kind != MESSAGE_KIND, OPEN_ONLY)
    # Two statements, not one OR: the key lookup stays an index scan whatever the DOB side does.
    found = {
        r.id: r
        for r in db.session.scalars(
            sa.select(Referral).options(*_LIGHT).where(Referral.person_key.in_(keys), *wanted)
        )
    }
    for r in db.session.scalars(
        sa.select(Referral).options(*_LIGHT).where(Referral.patient_dob == child.dob, *wanted)
    ):
        found.setdefault(r.id, r)
    dismissed = _dismissed_ids(referral)
    offered = []
    groups: set[int] = set()
    for other in sorted(found.values(), key=lambda r: (r.created_at, r.id)):
        reason = reason_for(referral, other, dismissed)
        # One offer per group of linked cases (its oldest case): linking joins whole groups.
        if reason is not None and _root_id(other) not in groups:
            groups.add(_root_id(other))
            offered.append(Candidate(other, reason))
    return offered


def offer_for(user: User, referral: Referral) -> Offer:
    """The candidates the viewer may see (decision 10); the others are only counted."""
    found = candidates(referral)
    if not found:
        return Offer([], 0)
    visible = set(
        db.session.scalars(
            sa.select(Referral.id).where(
                Referral.id.in_([c.referral.id for c in found]), queue.scope_clause(user)
            )
        )
    )
    shown = [c for c in found if c.referral.id in visible]
    return Offer(shown, len(found) - len(shown))


def _lock_pair(referral: Referral, other: Referral) -> tuple[Referral, Referral]:
    """Both rows locked in id order (no deadlock with a decision taken from the other page) and
    re-read, so the check below sees what the other decision committed. SQLite has no row
    locks: there the whole database's write lock serializes the decisions."""
    take_sqlite_write_lock(db.session)
    rows = {
        r.id: r
        for r in db.session.scalars(
            sa.select(Referral)
            .where(Referral.id.in_((referral.id, other.id)))
            .order_by(Referral.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    return rows[referral.id], rows[other.id]


def _lock_roots(referral: Referral, other: Referral) -> tuple[Referral, Referral]:
    """The two cases' group roots, locked (the roots are the rows whose links change)."""
    roots = (_root_id(referral), _root_id(other))
    if roots == (referral.id, other.id):
        return referral, other
    rows = {
        r.id: r
        for r in db.session.scalars(
            sa.select(Referral)
            .where(Referral.id.in_(roots))
            .order_by(Referral.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    return rows[roots[0]], rows[roots[1]]


def _still_offered(referral: Referral, other: Referral) -> str:
    reason = reason_for(referral, other)
    if reason is None:
        raise NearMatchRefused(
            "not_offered",
            f"Case {other.reference} is no longer offered as possibly the same child: it was "
            "linked, dismissed or closed meanwhile, or is no longer a near match. Reload the "
            "page to see the current state.",
        )
    return reason


def link(referral: Referral, other: Referral, actor: User) -> tuple[Referral, Referral]:
    """Join the two cases' groups under the older group's first case; returns (earlier, later)
    as the two group roots. Commits."""
    referral, other = _lock_pair(referral, other)
    reason = _still_offered(referral, other)
    earlier, later = _ordered(*_lock_roots(referral, other))
    # The later group's members move with it, so links stay one hop (no chains).
    db.session.execute(
        sa.update(Referral)
        .where(Referral.linked_case_id == later.id)
        .values(linked_case_id=earlier.id)
    )
    later.linked_case_id = earlier.id
    # As at intake (services.referrals._record_link): both timelines, ids only.
    db.session.add(
        TimelineEvent(
            referral_id=later.id,
            actor=actor.email,
            action="linked_to_case",
            detail={"case_id": earlier.id, "near_match": reason},
        )
    )
    db.session.add(
        TimelineEvent(
            referral_id=earlier.id,
            actor=actor.email,
            action="case_linked",
            detail={"case_id": later.id, "near_match": reason},
        )
    )
    audit.record(
        audit.UPDATE,
        "referral",
        later.reference,
        detail=f"near_match_link:{earlier.reference}",
        user=actor,
    )
    db.session.commit()
    return earlier, later


def dismiss(referral: Referral, other: Referral, actor: User) -> None:
    """Record that the two cases are different children, on both, so neither offers the other
    again. Commits."""
    referral, other = _lock_pair(referral, other)
    reason = _still_offered(referral, other)
    for case, counterpart in ((referral, other), (other, referral)):
        db.session.add(
            TimelineEvent(
                referral_id=case.id,
                actor=actor.email,
                action=DISMISSED,
                detail={"case_id": counterpart.id, "near_match": reason},
            )
        )
    audit.record(
        audit.UPDATE,
        "referral",
        referral.reference,
        detail=f"near_match_dismissed:{other.reference}",
        user=actor,
    )
    db.session.commit()


def record_refusal(referral: Referral, actor: User, error: NearMatchRefused) -> None:
    db.session.rollback()
    audit.record(
        audit.UPDATE,
        "referral",
        referral.reference,
        outcome="failure",
        detail=f"near_match:{error.code}",
        user=actor,
        commit=True,
    )
