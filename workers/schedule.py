"""Beat entries: ticks that read due rows from the database and fan out by ID."""

from __future__ import annotations

from typing import Any


def beat_schedule(config: Any) -> dict[str, dict[str, Any]]:
    sweep = float(config["OUTBOX_SWEEP_SECONDS"])
    return {
        "outbox-relay": {
            "task": "outbox.relay",
            "schedule": sweep,
            "options": {"expires": sweep * 2},
        },
        "pipeline-reconcile": {
            "task": "pipeline.reconcile",
            "schedule": max(sweep * 3, 10.0),
            "options": {"expires": max(sweep * 3, 10.0)},
        },
        "system-heartbeat": {
            "task": "system.heartbeat",
            "schedule": 30.0,
            "options": {"expires": 30.0},
        },
        "uploads-gc": {
            "task": "uploads.gc",
            "schedule": 3600.0,
            "options": {"expires": 600.0},
        },
        # Quarantined uploads (scanner down at upload time) get their verdict (decision 18).
        "uploads-rescan": {
            "task": "uploads.rescan",
            "schedule": 600.0,
            "options": {"expires": 600.0},
        },
        # Escalations, reminders, closing unanswered requests
        "staff-sweep": {
            "task": "staff.sweep",
            "schedule": float(config["STAFF_SWEEP_SECONDS"]),
            "options": {"expires": float(config["STAFF_SWEEP_SECONDS"])},
        },
    }
