"""Synthetic cases in bulk, for demos and the growth benchmark (`flask --app intake demo-data`).

Every name is invented. Cases arrive at a steady rate over the past; the newest `open_share`
of them are still open (spread over the open statuses, most under review), older ones are
closed, as in a program whose workload stays bounded while its history grows. PostgreSQL is
loaded with COPY in batches (a million cases in a couple of minutes); other databases get
multi-row INSERTs.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from intake.domain import statuses
from intake.domain.inputs import normalize_person_key
from intake.domain.reference import new_reference
from intake.domain.triage import CATEGORIES, MISSING_ITEM_LABELS
from intake.extensions import db
from intake.models import Referral, User

GIVEN_NAMES = (
    "Mateo", "Sofía", "Liam", "Olivia", "Noah", "Amara", "Ethan", "Zoë", "Lucas", "Aiyana",
    "Mia", "Kai", "Isabella", "Elijah", "Chloé", "Omar", "Leila", "Hiro", "Priya", "Santiago",
    "Nia", "Jonah", "Emma", "Diego", "Aaliyah", "Ravi", "Hannah", "Malik", "Lucía", "Owen",
)
FAMILY_NAMES = (
    "Núñez-O'Brien", "Okafor", "García", "Nguyen", "Smith", "Patel", "Johnson", "Kowalski",
    "Haddad", "Kim", "Martínez", "Brown", "Osei", "Rossi", "Müller", "Tanaka", "Lopez", "Cohen",
    "Williams", "Singh", "Dubois", "Andersson", "Hernández", "Chen", "Mensah", "Ivanova",
)
DISEASES = ("b_all",) * 14 + ("b_nhl",) * 3 + ("t_all", "aml", "cns_tumor", "solid_tumor", "other")
KINDS = ("physician_referral",) * 8 + ("second_opinion", "existing_patient_message")
PRIORITIES = ("P1",) + ("P2",) * 3 + ("P3",) * 6
# Open cases: most wait on review; the rest are spread over the other open statuses.
OPEN_STATUSES = (
    (statuses.RECEIVED,) * 2
    + (statuses.UNDER_REVIEW,) * 10
    + (statuses.NEEDS_INFO,) * 4
    + (statuses.ACCEPTED,) * 2
    + (statuses.CONSULT_SCHEDULED,) * 1
    + (statuses.DECLINED, statuses.REDIRECTED)
)
CLOSED_STATUSES = (statuses.CLOSED,) * 8 + (statuses.WITHDRAWN, statuses.CLOSED_NO_RESPONSE)
REVIEW_DAYS = {"P1": 0.5, "P2": 1.5, "P3": 3.0}
MISSING = tuple(MISSING_ITEM_LABELS)

BATCH_ROWS = 20_000


def load(
    count: int,
    *,
    open_share: float = 0.03,
    seed: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert ``count`` synthetic cases; returns how many were inserted."""
    rng = random.Random(seed)  # noqa: S311 (synthetic data, not secrets)
    staff = list(
        db.session.scalars(
            sa.select(User.id).where(User.role.in_(("coordinator", "admin")), User.active)
        )
    )
    reviewers = list(
        db.session.scalars(sa.select(User.id).where(User.role == "reviewer", User.active))
    )
    db.session.commit()
    columns = _columns()
    rows = _rows(rng, count, open_share, staff, reviewers)
    write = _copy_batch if db.engine.dialect.name == "postgresql" else _insert_batch
    inserted = 0
    while True:
        batch = [row for _i, row in zip(range(BATCH_ROWS), rows, strict=False)]
        if not batch:
            break
        write(columns, batch)
        inserted += len(batch)
        if progress:
            progress(inserted)
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            connection.execute(sa.text("ANALYZE referral"))
            connection.commit()
    return inserted


def _columns() -> list[sa.Column[Any]]:
    """The model's columns the database has, but the id; a required one we cannot fill fails."""
    table = Referral.__table__
    assert isinstance(table, sa.Table)
    present = {column["name"] for column in sa.inspect(db.engine).get_columns("referral")}
    return [column for column in table.columns if column.name != "id" and column.name in present]


def _rows(
    rng: random.Random,
    count: int,
    open_share: float,
    staff: list[int],
    reviewers: list[int],
) -> Iterator[dict[str, Any]]:
    now = datetime.now(UTC)
    # Cases arrive every 40 minutes on average (about 13,000 a year), oldest first.
    spacing = timedelta(minutes=40)
    first_open = count - int(count * open_share)
    references: set[str] = set()
    # The folded names part of the duplicate-check key, computed once per name pair.
    folded_names: dict[tuple[str, str], str] = {}
    for index in range(count):
        created = now - spacing * (count - index) + timedelta(seconds=rng.randint(0, 600))
        is_open = index >= first_open
        status = rng.choice(OPEN_STATUSES if is_open else CLOSED_STATUSES)
        triaged = status != statuses.RECEIVED
        priority = rng.choice(PRIORITIES) if triaged else None
        given = rng.choice(GIVEN_NAMES)
        family = rng.choice(FAMILY_NAMES)
        dob = date(2002, 1, 1) + timedelta(days=int(rng.random() * 365 * 23))
        names_key = folded_names.get((given, family))
        if names_key is None:
            names_key = normalize_person_key(given, family, dob).rsplit("|", 1)[0]
            folded_names[(given, family)] = names_key
        disease = rng.choice(DISEASES)
        reference = new_reference()
        while reference in references:
            reference = new_reference()
        references.add(reference)
        referrer = rng.randint(1, 2000)
        answers = {
            "patient_given_name": given,
            "patient_family_name": family,
            "patient_dob": dob.isoformat(),
            "disease": disease,
            "referrer_name": f"Dr. Demo Referrer {referrer}",
            "referrer_email": f"referrer{referrer}@hospital{referrer % 150}.example",
            "referrer_country": "US",
            "cd19_status": rng.choice(("positive", "negative", "unknown")),
            "marrow_relapse_count": str(rng.randint(0, 3)),
            "had_hsct": rng.choice(("yes", "no", "unknown")),
            "marrow_blasts_pct": str(rng.randint(0, 95)),
            "performance_score": str(rng.choice((50, 60, 70, 80, 90, 100))),
            "request_type": "car_t_evaluation",
        }
        review_due = None
        if priority is not None and rng.random() > 0.05:
            review_due = created + timedelta(days=REVIEW_DAYS[priority])
        paused = status == statuses.NEEDS_INFO
        values: dict[str, Any] = {
            "reference": reference,
            "submission_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "payload_hash": hashlib.sha256(reference.encode()).hexdigest(),
            "kind": rng.choice(KINDS),
            "status": status,
            "status_reason": None,
            "created_at": created,
            "updated_at": created + timedelta(hours=rng.randint(0, 72)),
            "patient_given_name": given,
            "patient_family_name": family,
            "patient_dob": dob,
            "person_key": f"{names_key}|{dob.isoformat()}",
            "disease": disease,
            "referrer_name": answers["referrer_name"],
            "referrer_email": answers["referrer_email"],
            "referrer_npi": None,
            "preferred_language": rng.choice(("en", "en", "en", "es")),
            "answers": answers,
            "triage_category": rng.choice(CATEGORIES) if triaged else None,
            "triage_priority": priority,
            "triage_rules_version": "demo" if triaged else None,
            "triage_reasons": [],
            "missing_items": rng.sample(MISSING, rng.randint(0, 2)) if triaged else [],
            "hard_flags": [],
            "triaged_at": created + timedelta(seconds=2) if triaged else None,
            "triage_attempts": 1 if triaged else 0,
            "ack_due_at": created + timedelta(days=1) if triaged else None,
            "review_due_at": review_due,
            "assignee_id": rng.choice(staff) if staff and rng.random() < 0.7 else None,
            "reviewer_id": rng.choice(reviewers) if reviewers and rng.random() < 0.3 else None,
            "acknowledged_at": created + timedelta(hours=3) if status != "received" else None,
            "clock_paused_at": created + timedelta(hours=5) if paused else None,
            "clock_paused_seconds": 0,
        }
        yield values


def _fallbacks(columns: list[sa.Column[Any]], row: dict[str, Any]) -> dict[str, Any]:
    """Values for columns the generator does not know: NULL or the column's scalar default."""
    fallbacks: dict[str, Any] = {}
    for column in columns:
        if column.name in row:
            continue
        if column.nullable:
            fallbacks[column.name] = None
        elif column.default is not None and column.default.is_scalar:
            fallbacks[column.name] = column.default.arg
        else:
            raise RuntimeError(f"demo-data has no value for the new column referral.{column.name}")
    return fallbacks


def _copy_batch(columns: list[sa.Column[Any]], batch: list[dict[str, Any]]) -> None:
    names = ", ".join(f'"{column.name}"' for column in columns)
    keys = [column.name for column in columns]
    json_keys = [column.name for column in columns if isinstance(column.type, sa.JSON)]
    fallbacks = _fallbacks(columns, batch[0])
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        with cursor.copy(f"COPY referral ({names}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in batch:
                row.update(fallbacks)
                for key in json_keys:
                    row[key] = json.dumps(row[key])
                copy.write_row([row[key] for key in keys])
        connection.commit()
    finally:
        connection.close()


def _insert_batch(columns: list[sa.Column[Any]], batch: list[dict[str, Any]]) -> None:
    fallbacks = _fallbacks(columns, batch[0])
    for row in batch:
        row.update(fallbacks)
    with db.engine.begin() as connection:
        connection.execute(sa.insert(Referral.__table__), batch)
