"""Who is told about a case: the routing table, seeded from the environment (decision 2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from intake.extensions import db
from intake.models import RoutingRule, User
from intake.services import audit
from intake.services.db import take_sqlite_write_lock

CASE_KINDS = ("physician_referral", "second_opinion", "existing_patient_message")
PRIORITIES = ("P1", "P2", "P3")


# Second opinions go to the second-opinion coordinators and family messages to the care team
# (rule R0) when those lists are configured.
KIND_COORDINATOR_SETTINGS = {
    "second_opinion": "SECOND_OPINION_EMAILS",
    "existing_patient_message": "CARE_TEAM_EMAILS",
}


def normalize_email(email: str) -> str:
    """Lower case, as staff accounts are (auth.normalize_email: that module imports this one):
    one address, one row, one email."""
    return email.strip().lower()


def seed_routing(config: dict[str, Any]) -> int:
    """Add the configured addresses for every kind and priority; existing rows are kept."""
    escalation = [("lead", normalize_email(email)) for email in config["PROGRAM_LEAD_EMAILS"]]
    escalation += [("oncall", normalize_email(email)) for email in config["ONCALL_EMAILS"]]
    existing = {
        (rule.kind, rule.priority, rule.role, normalize_email(rule.email))
        for rule in db.session.scalars(sa.select(RoutingRule))
    }
    added = 0
    for kind in CASE_KINDS:
        own = config.get(KIND_COORDINATOR_SETTINGS.get(kind, ""), [])
        coordinators = own or config["COORDINATOR_EMAILS"]
        wanted = [("coordinator", normalize_email(email)) for email in coordinators] + escalation
        for priority in PRIORITIES:
            for role, email in wanted:
                if (kind, priority, role, email) not in existing:
                    db.session.add(
                        RoutingRule(kind=kind, priority=priority, role=role, email=email)
                    )
                    added += 1
    db.session.commit()
    return added


def recipients_for(kind: str, priority: str | None, role: str = "coordinator") -> list[str]:
    rows = db.session.scalars(
        sa.select(RoutingRule.email)
        .where(
            RoutingRule.kind == kind,
            RoutingRule.priority == (priority or "P3"),
            RoutingRule.role == role,
            RoutingRule.active.is_(True),
        )
        .order_by(RoutingRule.email)
    ).all()
    return list(dict.fromkeys(normalize_email(email) for email in rows))


# -- the admin page ------------------------------------------------------------------------------

ROUTE_ROLES = ("coordinator", "lead", "oncall")
ROLE_LABELS = {
    "coordinator": "Coordinators: new cases and escalation level 1",
    "lead": "Program lead: escalation level 2 (deadline passed)",
    "oncall": "On-call: escalation level 3, and P1 cases outside business hours",
}
KIND_LABELS = {
    "physician_referral": "Physician referrals",
    "second_opinion": "Second opinions",
    "existing_patient_message": "Family messages",
}
_KIND_CODES = {"physician_referral": "PR", "second_opinion": "SO", "existing_patient_message": "FM"}
MESSAGE_KIND = "existing_patient_message"
# Fallback settings when a role has no active row for a case (escalation.recipients,
# notifications.coordinator_recipients).
FALLBACK_SETTINGS = {
    "coordinator": "COORDINATOR_EMAILS",
    "lead": "PROGRAM_LEAD_EMAILS",
    "oncall": "ONCALL_EMAILS",
}
Cell = tuple[str, str]  # (kind, priority)


def priorities_for(kind: str) -> tuple[str, ...]:
    """A family message has no priority (rule R0) and is routed as P3: one switch covers it."""
    return ("P3",) if kind == MESSAGE_KIND else PRIORITIES


ALL_CELLS: tuple[Cell, ...] = tuple((k, p) for k in CASE_KINDS for p in priorities_for(k))


def cell_label(kind: str, priority: str) -> str:
    return KIND_LABELS[kind] if kind == MESSAGE_KIND else f"{KIND_LABELS[kind]} {priority}"


@dataclass(frozen=True)
class Entry:
    """One address in one role, and the (kind, priority) pairs it is active for."""

    role: str
    email: str
    cells: frozenset[Cell]


def entries() -> list[Entry]:
    """Every address ever routed, by role then address; one with no active pair stays listed
    (switched off, not forgotten) so it can be switched back on."""
    found: dict[tuple[str, str], set[Cell]] = {}
    for rule in db.session.scalars(sa.select(RoutingRule)):
        cells = found.setdefault((rule.role, normalize_email(rule.email)), set())
        if rule.active and (rule.kind, rule.priority) in ALL_CELLS:
            cells.add((rule.kind, rule.priority))
    order = {role: n for n, role in enumerate(ROUTE_ROLES)}
    return [
        Entry(role, email, frozenset(cells))
        for (role, email), cells in sorted(
            found.items(), key=lambda item: (order.get(item[0][0], 99), item[0][1])
        )
    ]


def _rows_of(role: str, email: str, *, lock: bool = False) -> list[RoutingRule]:
    statement = sa.select(RoutingRule).where(
        RoutingRule.role == role, sa.func.lower(RoutingRule.email) == normalize_email(email)
    )
    return list(db.session.scalars(statement.with_for_update() if lock else statement))


def is_routed(role: str, email: str) -> bool:
    """Whether ``email`` has a row (on or off) in ``role``."""
    return bool(_rows_of(role, email))


def set_routes(role: str, email: str, cells: set[Cell], actor: User) -> tuple[int, int]:
    """Make ``email`` in ``role`` active for exactly ``cells``; returns (switched on, switched
    off). Rows are switched off, never deleted: the history of who was told stays readable."""
    unknown = cells - set(ALL_CELLS)
    if role not in ROUTE_ROLES or unknown:
        raise ValueError(f"unknown role or pairs: {role!r} {sorted(unknown)!r}")
    email = normalize_email(email)
    for attempt in range(2):
        try:
            return _set_routes(role, email, cells, actor)
        except IntegrityError:
            # Two admins adding the same new address at once: the second sees the first's rows.
            db.session.rollback()
            if attempt:
                raise
    raise AssertionError("unreachable")


def _set_routes(role: str, email: str, cells: set[Cell], actor: User) -> tuple[int, int]:
    take_sqlite_write_lock(db.session)
    by_cell: dict[Cell, list[RoutingRule]] = {}
    for rule in _rows_of(role, email, lock=True):
        by_cell.setdefault((rule.kind, rule.priority), []).append(rule)
    switched_on: list[Cell] = []
    switched_off: list[Cell] = []
    for kind in CASE_KINDS:
        for priority in PRIORITIES:
            # A message's one switch is its P3 row; older P1/P2 rows (from the seed) follow it.
            wanted = (kind, priorities_for(kind)[0] if kind == MESSAGE_KIND else priority) in cells
            rows = by_cell.get((kind, priority), [])
            changed = [rule for rule in rows if rule.active != wanted]
            for rule in changed:
                rule.active = wanted
            if not rows and wanted and (kind, priority) in ALL_CELLS:
                db.session.add(RoutingRule(kind=kind, priority=priority, role=role, email=email))
            if (kind, priority) in ALL_CELLS and (changed or (not rows and wanted)):
                (switched_on if wanted else switched_off).append((kind, priority))
    db.session.flush()
    if switched_on or switched_off:

        def codes(found: list[Cell]) -> str:
            return ",".join(f"{_KIND_CODES[k]}{p[1]}" for k, p in found) or "-"

        audit.record(
            audit.UPDATE,
            "routing_rule",
            f"{role}:{email}",
            detail=f"on:{codes(switched_on)} off:{codes(switched_off)}",
            user=actor,
        )
    db.session.commit()
    return len(switched_on), len(switched_off)


def gaps(config: dict[str, Any]) -> list[str]:
    """Plain-English warnings for pairs no active address in a role covers, and where their
    emails go instead."""
    covered: dict[str, set[Cell]] = {role: set() for role in ROUTE_ROLES}
    for entry in entries():
        covered.setdefault(entry.role, set()).update(entry.cells)
    warnings = []
    for role in ROUTE_ROLES:
        missing = [cell for cell in ALL_CELLS if cell not in covered[role]]
        if not missing:
            continue
        fallback = list(config.get(FALLBACK_SETTINGS[role]) or [])
        if fallback:
            where = f"they go to {', '.join(fallback)} ({FALLBACK_SETTINGS[role]})"
        elif role == "coordinator":
            where = "NOBODY is emailed about those new cases"
        else:
            where = "those escalations go to the case's coordinators instead"
        pairs = ", ".join(cell_label(kind, priority) for kind, priority in missing)
        warnings.append(f"{ROLE_LABELS[role].split(':')[0]}: no address for {pairs}; {where}.")
    return warnings
