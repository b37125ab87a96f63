"""Who is told about a case: the routing table, seeded from the environment (decision 2)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from intake.extensions import db
from intake.models import RoutingRule

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
