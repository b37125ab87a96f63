"""Health report for /healthz: reachability with short timeouts; never publishes anything."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from intake.extensions import db
from intake.models import DeadLetter, Heartbeat, OutboxEvent, utcnow


@lru_cache(maxsize=4)
def _broker_engine(url: str) -> sa.Engine:
    return sa.create_engine(url, connect_args={"timeout": 1})


def broker_reachable(broker_url: str) -> bool:
    try:
        if broker_url.startswith(("redis://", "rediss://")):
            import redis

            client = redis.Redis.from_url(broker_url, socket_timeout=1, socket_connect_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()
        if broker_url.startswith("sqla+"):
            with _broker_engine(broker_url[len("sqla+") :]).connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            return True
    except Exception:  # noqa: BLE001 (unreachable, for whatever reason)
        return False
    return False


def report(config: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    result: dict[str, Any] = {"database": "ok", "broker": "ok"}
    try:
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("SET LOCAL statement_timeout = 1000"))
        oldest = db.session.scalar(
            sa.select(sa.func.min(OutboxEvent.created_at)).where(OutboxEvent.published_at.is_(None))
        )
        heartbeat = db.session.get(Heartbeat, "worker")
        dead_letters = db.session.scalar(sa.select(sa.func.count()).select_from(DeadLetter))
        result["outbox_oldest_pending_seconds"] = (
            round((now - _aware(oldest)).total_seconds(), 1) if oldest else 0
        )
        result["worker_heartbeat_age_seconds"] = (
            round((now - heartbeat.at).total_seconds(), 1) if heartbeat else None
        )
        result["dead_letters"] = dead_letters
        db.session.rollback()
    except Exception:  # noqa: BLE001
        db.session.rollback()
        result["database"] = "unreachable"
    if not broker_reachable(config["CELERY"]["broker_url"]):
        result["broker"] = "unreachable"
    result["ok"] = result["database"] == "ok" and result["broker"] == "ok"
    return result


def _aware(value: Any) -> Any:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)
