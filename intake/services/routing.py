"""Who is told about a case: the routing table, seeded from the environment (decision 2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from intake.extensions import db
from intake.models import RoutingRule, User
from intake.services import audit

CASE_KINDS = ("physician_referral", "second_opinion", "existing_patient_message")
PRIORITIES = ("P1", "P2", "P3")


# Second opinions go to the second-opinion coordinators and family messages to the care team
# (rule R0) when those lists are configured.
KIND_COORDINATOR_SETTINGS = {
    "second_opinion": "SECOND_OPINION_EMAILS",
    "existing_patient_message": "CARE_TEAM_EMAILS",
}


def seed_routing(config: dict[str, Any]) -> int:
    """Add the configured addresses for every kind and priority; existing rows are kept."""
    escalation = [("lead", email) for email in config["PROGRAM_LEAD_EMAILS"]]
    escalation += [("oncall", email) for email in config["ONCALL_EMAILS"]]
    existing = {
        (rule.kind, rule.priority, rule.role, rule.email)
        for rule in db.session.scalars(sa.select(RoutingRule))
    }
    added = 0
    for kind in CASE_KINDS:
        own = config.get(KIND_COORDINATOR_SETTINGS.get(kind, ""), [])
        coordinators = own or config["COORDINATOR_EMAILS"]
        wanted = [("coordinator", email) for email in coordinators] + escalation
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
    return list(dict.fromkeys(rows))


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
# Fallback settings when a role has no active row for a case (escalation.recipients,
# notifications.coordinator_recipients).
FALLBACK_SETTINGS = {
    "coordinator": "COORDINATOR_EMAILS",
    "lead": "PROGRAM_LEAD_EMAILS",
    "oncall": "ONCALL_EMAILS",
}
Cell = tuple[str, str]  # (kind, priority)
ALL_CELLS: tuple[Cell, ...] = tuple((k, p) for k in CASE_KINDS for p in PRIORITIES)


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
        cells = found.setdefault((rule.role, rule.email), set())
        if rule.active:
            cells.add((rule.kind, rule.priority))
    order = {role: n for n, role in enumerate(ROUTE_ROLES)}
    return [
        Entry(role, email, frozenset(cells))
        for (role, email), cells in sorted(
            found.items(), key=lambda item: (order.get(item[0][0], 99), item[0][1])
        )
    ]


def is_routed(role: str, email: str) -> bool:
    """Whether ``email`` has a row (on or off) in ``role``."""
    return (
        db.session.scalar(
            sa.select(RoutingRule.id)
            .where(RoutingRule.role == role, RoutingRule.email == email.strip().lower())
            .limit(1)
        )
        is not None
    )


def set_routes(role: str, email: str, cells: set[Cell], actor: User) -> tuple[int, int]:
    """Make ``email`` in ``role`` active for exactly ``cells``; returns (switched on, switched
    off). Rows are switched off, never deleted: the history of who was told stays readable."""
    # Lower case, as staff accounts are (auth.normalize_email, which imports this module):
    # one person, one row.
    email = email.strip().lower()
    unknown = cells - set(ALL_CELLS)
    if role not in ROUTE_ROLES or unknown:
        raise ValueError(f"unknown role or pairs: {role!r} {sorted(unknown)!r}")
    rows = {
        (rule.kind, rule.priority): rule
        for rule in db.session.scalars(
            sa.select(RoutingRule)
            .where(RoutingRule.role == role, RoutingRule.email == email)
            .with_for_update()
        )
    }
    on = off = 0
    for cell in ALL_CELLS:
        rule = rows.get(cell)
        wanted = cell in cells
        if rule is None and wanted:
            db.session.add(RoutingRule(kind=cell[0], priority=cell[1], role=role, email=email))
            on += 1
        elif rule is not None and rule.active != wanted:
            rule.active = wanted
            on, off = (on + 1, off) if wanted else (on, off + 1)
    if on or off:
        audit.record(
            audit.UPDATE,
            "routing_rule",
            f"{role}:{email}",
            detail=f"on:{on} off:{off} now:{len(cells)}",
            user=actor,
        )
    db.session.commit()
    return on, off


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
        pairs = ", ".join(f"{KIND_LABELS[kind]} {priority}" for kind, priority in missing)
        warnings.append(f"{ROLE_LABELS[role].split(':')[0]}: no address for {pairs}; {where}.")
    return warnings
