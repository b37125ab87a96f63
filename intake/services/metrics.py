"""Program metrics, server-side SVG charts (no outside hosts) and the admin CSV export."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from markupsafe import Markup, escape
from sqlalchemy import orm

from intake.extensions import db
from intake.forms.referral import DISEASES
from intake.models import Escalation, InfoRequest, Referral, TimelineEvent
from intake.services.auth import now

DECISIONS = ("accepted", "declined", "redirected")
# A family's message is routed to the care team, never decided on (rule R0): counted apart,
# so it does not dilute the referral figures the program reports.
MESSAGE_KIND = "existing_patient_message"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def week_start(at: datetime) -> str:
    return (at - timedelta(days=at.weekday())).date().isoformat()


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (share in 0..1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(-(-share * len(ordered) // 1)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Metrics:
    weeks: list[str]
    per_week_kind: dict[str, Counter[str]]
    per_week_disease: dict[str, Counter[str]]
    ack_hours: list[float] = field(default_factory=list)
    packet_hours: list[float] = field(default_factory=list)
    decision_hours: list[float] = field(default_factory=list)
    total: int = 0
    messages: int = 0
    message_ack_hours: list[float] = field(default_factory=list)
    needing_info: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    breaches: int = 0
    message_breaches: int = 0
    per_week_breaches: dict[str, Counter[str]] = field(default_factory=dict)

    @property
    def breach_chart(self) -> Markup:
        return stacked_bars(
            "Deadline breaches per week",
            self.weeks,
            self.per_week_breaches,
            "Bars: cases whose acknowledgement or review deadline passed, by week of the breach.",
        )

    def summary(self) -> list[tuple[str, str]]:
        def hours(value: float | None) -> str:
            return "–" if value is None else f"{value:.1f} h"

        decided = sum(self.decisions.values())

        def rate(name: str) -> str:
            return f"{100 * self.decisions[name] / decided:.0f}%" if decided else "–"

        share = f"{100 * self.needing_info / self.total:.0f}%" if self.total else "–"
        return [
            ("Referrals and second opinions", str(self.total)),
            ("Median time to acknowledgement", hours(percentile(self.ack_hours, 0.5))),
            ("90th percentile time to acknowledgement", hours(percentile(self.ack_hours, 0.9))),
            ("Median time to a complete packet", hours(percentile(self.packet_hours, 0.5))),
            (
                "90th percentile time to a complete packet",
                hours(percentile(self.packet_hours, 0.9)),
            ),
            ("Median time to decision", hours(percentile(self.decision_hours, 0.5))),
            ("90th percentile time to decision", hours(percentile(self.decision_hours, 0.9))),
            ("Share needing more information", share),
            ("Accepted", rate("accepted")),
            ("Redirected", rate("redirected")),
            ("Declined", rate("declined")),
            ("Deadline breaches", str(self.breaches)),
            ("Family messages", str(self.messages)),
            ("Family messages answered late", str(self.message_breaches)),
            (
                "Median time to a family message's first answer",
                hours(percentile(self.message_ack_hours, 0.5)),
            ),
        ]


def _packets_completed(rows: Sequence[Any]) -> dict[int, datetime]:
    """When each case's packet was first complete (no missing items) after a triage run.

    Triage and every re-run record the missing items on their timeline entries; a triage
    entry from before they did counts as complete when it was the only run and nothing is
    missing now.
    """
    cases = {row.id: row for row in rows if row.kind != MESSAGE_KIND}
    if not cases:
        return {}
    runs: dict[int, list[tuple[datetime, str, dict[str, Any]]]] = defaultdict(list)
    for referral_id, at, action, detail in db.session.execute(
        sa.select(
            TimelineEvent.referral_id, TimelineEvent.at, TimelineEvent.action, TimelineEvent.detail
        )
        .where(
            TimelineEvent.referral_id.in_(list(cases)),
            TimelineEvent.action.in_(("triaged", "retriaged")),
        )
        .order_by(TimelineEvent.at, TimelineEvent.id)
    ):
        runs[referral_id].append((at, action, detail or {}))
    completed: dict[int, datetime] = {}
    for referral_id, entries in runs.items():
        for at, _action, detail in entries:
            missing = detail.get("missing_items")
            if missing is None:
                if len(entries) > 1:
                    break  # an older triage entry among several runs: unknown, left out
                missing = cases[referral_id].missing_items or []
            if missing == []:
                completed[referral_id] = at
                break
    return completed


def compute(weeks: int = 12) -> Metrics:
    since = now() - timedelta(weeks=weeks)
    rows = db.session.execute(
        sa.select(
            Referral.id,
            Referral.kind,
            Referral.disease,
            Referral.created_at,
            Referral.acknowledged_at,
            Referral.missing_items,
        ).where(Referral.created_at >= since)
    ).all()
    ids = [row.id for row in rows]
    week_keys = [week_start(now() - timedelta(weeks=n)) for n in range(weeks - 1, -1, -1)]
    messages = sum(1 for row in rows if row.kind == MESSAGE_KIND)
    result = Metrics(
        weeks=week_keys,
        per_week_kind=defaultdict(Counter),
        per_week_disease=defaultdict(Counter),
        total=len(rows) - messages,
        messages=messages,
    )
    decided_at: dict[int, tuple[datetime, str]] = {}
    if ids:
        for referral_id, at, to_status in db.session.execute(
            sa.select(TimelineEvent.referral_id, TimelineEvent.at, TimelineEvent.to_status)
            .where(TimelineEvent.referral_id.in_(ids), TimelineEvent.to_status.in_(DECISIONS))
            .order_by(TimelineEvent.at)
        ):
            decided_at.setdefault(referral_id, (at, to_status))
        completed_at = _packets_completed(rows)
        result.needing_info = int(
            db.session.scalar(
                sa.select(sa.func.count(sa.distinct(InfoRequest.referral_id))).where(
                    InfoRequest.referral_id.in_(ids)
                )
            )
            or 0
        )
        breached = db.session.execute(
            sa.select(Escalation.referral_id, Escalation.clock, sa.func.min(Escalation.at))
            .where(Escalation.referral_id.in_(ids), Escalation.level >= 2)
            .group_by(Escalation.referral_id, Escalation.clock)
        ).all()
        messages_ids = {row.id for row in rows if row.kind == MESSAGE_KIND}
        result.breaches = len({r for r, _clock, _at in breached if r not in messages_ids})
        result.message_breaches = len({r for r, _clock, _at in breached if r in messages_ids})
        per_week: dict[str, Counter[str]] = defaultdict(Counter)
        for referral_id, clock, at in breached:
            late = "family message" if referral_id in messages_ids else f"{clock} deadline"
            per_week[week_start(at)][late] += 1
        result.per_week_breaches = per_week
    disease_names = dict(DISEASES)
    for row in rows:
        week = week_start(row.created_at)
        result.per_week_kind[week][row.kind.replace("_", " ")] += 1
        ack_hours = (
            (row.acknowledged_at - row.created_at).total_seconds() / 3600
            if row.acknowledged_at
            else None
        )
        if row.kind == MESSAGE_KIND:
            if ack_hours is not None:
                result.message_ack_hours.append(ack_hours)
            continue
        result.per_week_disease[week][str(disease_names.get(row.disease, row.disease))] += 1
        if ack_hours is not None:
            result.ack_hours.append(ack_hours)
        if row.id in completed_at:
            result.packet_hours.append(
                (completed_at[row.id] - row.created_at).total_seconds() / 3600
            )
        if row.id in decided_at:
            at, decision = decided_at[row.id]
            result.decision_hours.append((at - row.created_at).total_seconds() / 3600)
            result.decisions[decision] += 1
    return result


PALETTE = ("#0b5394", "#b45f06", "#38761d", "#741b47", "#134f5c", "#7f6000", "#444444")


def stacked_bars(
    title: str, weeks: list[str], per_week: dict[str, Counter[str]], description: str
) -> Markup:
    """A stacked bar chart per week as inline SVG, with a title and description for readers."""
    series = sorted({name for counts in per_week.values() for name in counts})
    width, height, left, bottom = 640, 240, 36, 40
    plot_h = height - bottom - 10
    peak = max([sum(per_week.get(w, Counter()).values()) for w in weeks] + [1])
    bar_w = (width - left - 10) / max(len(weeks), 1)
    ident = _chart_id(title)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 20 * len(series)}"'
        f' role="img" aria-labelledby="{ident} {ident}-d" class="chart">',
        f'<title id="{ident}">{escape(title)}</title>',
        f'<desc id="{ident}-d">{escape(description)}</desc>',
        f'<line x1="{left}" y1="{10 + plot_h}" x2="{width - 10}" y2="{10 + plot_h}" '
        'stroke="#333"/>',
        f'<text x="4" y="16" font-size="11">{peak}</text>',
    ]
    for i, week in enumerate(weeks):
        x = left + i * bar_w + 2
        y = 10 + plot_h
        for j, name in enumerate(series):
            value = per_week.get(week, Counter()).get(name, 0)
            if not value:
                continue
            h = plot_h * value / peak
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 4:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(week)}: {escape(name)} '
                f"{value}</title></rect>"
            )
        if i % 2 == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{height - bottom + 24}" font-size="10">'
                f"{escape(week[5:])}</text>"
            )
    for j, name in enumerate(series):
        y = height + 20 * j
        parts.append(
            f'<rect x="{left}" y="{y - 10}" width="12" height="12" '
            f'fill="{PALETTE[j % len(PALETTE)]}"/>'
            f'<text x="{left + 18}" y="{y}" font-size="12">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated value is escaped)


def _chart_id(title: str) -> str:
    """A stable, unique-per-page element id from a chart's title (for aria-labelledby)."""
    return "chart-" + "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


def hbars(title: str, items: list[tuple[str, float]], unit: str) -> Markup:
    """Horizontal bars with their values written beside them, titled for screen readers."""
    width, row_h, left = 640, 26, 260
    peak = max([v for _k, v in items] + [1.0])
    ident = _chart_id(title)
    summary = "; ".join(f"{label}: {value:.1f}{unit}" for label, value in items)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {row_h * len(items) + 10}"'
        f' role="img" aria-labelledby="{ident} {ident}-d" class="chart">'
        f'<title id="{ident}">{escape(title)}</title><desc id="{ident}-d">{escape(summary)}</desc>'
    ]
    for i, (label, value) in enumerate(items):
        y = 5 + i * row_h
        w = (width - left - 80) * value / peak
        parts.append(
            f'<text x="0" y="{y + 16}" font-size="12">{escape(label)}</text>'
            f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="16" fill="{PALETTE[0]}"/>'
            f'<text x="{left + w + 6:.1f}" y="{y + 16}" font-size="12">'
            f"{value:.1f}{escape(unit)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated value is escaped)


def timing_items(metrics: Metrics) -> list[tuple[str, float]]:
    items = []
    for label, values in (
        ("acknowledgement", metrics.ack_hours),
        ("a complete packet", metrics.packet_hours),
        ("decision", metrics.decision_hours),
    ):
        for name, share in (("median", 0.5), ("p90", 0.9)):
            value = percentile(values, share)
            items.append((f"{name} time to {label}", value or 0.0))
    return items


def outcome_items(metrics: Metrics) -> list[tuple[str, float]]:
    decided = sum(metrics.decisions.values())
    items = [
        (name, 100.0 * metrics.decisions[name] / decided if decided else 0.0) for name in DECISIONS
    ]
    share = 100.0 * metrics.needing_info / metrics.total if metrics.total else 0.0
    return [*items, ("needing more information", share)]


def neutralize(value: Any) -> str:
    """CSV formula injection: a cell a spreadsheet would evaluate is prefixed with a quote."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START):
        return "'" + text
    return text


CSV_COLUMNS = (
    "reference",
    "kind",
    "disease",
    "status",
    "priority",
    "category",
    "referrer_institution",
    "created_at",
    "acknowledged_at",
    "review_due_at",
    # The first decision on the case, as the metrics count it, and its coded reason.
    "decision",
    "decided_at",
    "decision_reason",
    "deadline_breached",
    "linked_case",
)


def export_csv() -> str:
    """One row per case, no names or dates of birth; every cell neutralized."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    decided: dict[int, tuple[datetime, str, str]] = {}
    for referral_id, at, to_status, detail in db.session.execute(
        sa.select(
            TimelineEvent.referral_id,
            TimelineEvent.at,
            TimelineEvent.to_status,
            TimelineEvent.detail,
        )
        .where(TimelineEvent.to_status.in_(DECISIONS))
        .order_by(TimelineEvent.at, TimelineEvent.id)
    ):
        decided.setdefault(referral_id, (at, to_status, (detail or {}).get("reason_code") or ""))
    breached = set(
        db.session.scalars(sa.select(Escalation.referral_id).where(Escalation.level >= 2))
    )
    linked = orm.aliased(Referral)
    for referral, linked_reference in db.session.execute(
        sa.select(Referral, linked.reference)
        .outerjoin(linked, linked.id == Referral.linked_case_id)
        .order_by(Referral.created_at)
    ):
        decided_at, decision, reason = decided.get(referral.id, (None, "", ""))
        writer.writerow(
            neutralize(value)
            for value in (
                referral.reference,
                referral.kind,
                referral.disease,
                referral.status,
                referral.triage_priority,
                referral.triage_category,
                referral.answers.get("referrer_institution"),
                referral.created_at.isoformat(),
                referral.acknowledged_at.isoformat() if referral.acknowledged_at else "",
                referral.review_due_at.isoformat() if referral.review_due_at else "",
                decision,
                decided_at.isoformat() if decided_at else "",
                reason,
                "yes" if referral.id in breached else "no",
                linked_reference or "",
            )
        )
    return buffer.getvalue()
