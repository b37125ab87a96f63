"""Every setting in one place, read from the environment.

Embedded defaults (SQLite database, SQLite-backed Celery broker, local mail sink) need no server;
production sets DATABASE_URL, CELERY_BROKER_URL and SMTP_* (see README).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105 (refused in production)


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    return int(raw) if raw.strip() else default


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    return float(raw) if raw.strip() else default


def _list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def load_config(env: dict[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config mapping (which also carries the Celery settings)."""
    env = dict(os.environ if env is None else env)
    intake_env = env.get("INTAKE_ENV", "development")
    instance_dir = Path(env.get("INSTANCE_DIR", PROJECT_ROOT / "instance")).resolve()

    database_url = env.get("DATABASE_URL") or _sqlite_url(instance_dir / "intake.sqlite")
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgres://") :]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]
    broker_url = env.get("CELERY_BROKER_URL") or (
        "sqla+" + _sqlite_url(instance_dir / "broker.sqlite")
    )
    is_redis = broker_url.startswith(("redis://", "rediss://"))

    max_upload_mb = _int(env, "MAX_UPLOAD_MB", 10)
    max_files = _int(env, "MAX_UPLOAD_FILES", 8)
    visibility_timeout = _int(env, "CELERY_VISIBILITY_TIMEOUT", 3600)

    broker_options: dict[str, Any] = {}
    if is_redis:
        broker_options = {
            "visibility_timeout": visibility_timeout,
            # How often a worker looks for messages whose visibility timeout ran out (kombu
            # scans every interval x throttle seconds, 100 s by default); lowered together
            # with the timeout in fault tests.
            "unacked_restore_interval": _int(env, "CELERY_RESTORE_INTERVAL", 10),
            "unacked_restore_throttle": _int(env, "CELERY_RESTORE_THROTTLE", 10),
            "socket_timeout": 5,
            "socket_connect_timeout": 3,
            "max_retries": 2,
        }

    celery: dict[str, Any] = {
        "broker_url": broker_url,
        "broker_transport_options": broker_options,
        "broker_connection_timeout": 3,
        "broker_connection_retry_on_startup": True,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": _int(env, "TASK_SOFT_TIME_LIMIT", 60),
        "task_time_limit": _int(env, "TASK_TIME_LIMIT", 90),
        "worker_hijack_root_logger": False,
        "beat_schedule_filename": env.get(
            "CELERY_BEAT_SCHEDULE", str(instance_dir / "celerybeat-schedule")
        ),
        "timezone": "UTC",
        # A separate queue name lets test runs share one Redis without touching each other.
        "task_default_queue": env.get("CELERY_QUEUE", "intake"),
    }
    if is_redis:
        celery["visibility_timeout"] = visibility_timeout
        celery["result_backend_transport_options"] = {"visibility_timeout": visibility_timeout}

    limiter_storage = env.get("RATELIMIT_STORAGE_URI") or (
        env.get("CELERY_BROKER_URL") if is_redis else "memory://"
    )

    return {
        "INTAKE_ENV": intake_env,
        "DEBUG": False,
        "SECRET_KEY": env.get("SECRET_KEY", DEFAULT_SECRET_KEY),
        "INSTANCE_DIR": str(instance_dir),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(database_url),
        "CELERY": celery,
        # Mail
        "SMTP_HOST": env.get("SMTP_HOST", "127.0.0.1"),
        "SMTP_PORT": _int(env, "SMTP_PORT", 8025),
        "SMTP_USERNAME": env.get("SMTP_USERNAME", ""),
        "SMTP_PASSWORD": env.get("SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": _bool(env.get("SMTP_STARTTLS"), intake_env == "production"),
        "SMTP_TIMEOUT": _float(env, "SMTP_TIMEOUT", 10.0),
        "MAIL_FROM": env.get("MAIL_FROM", "Intake <intake@localhost>"),
        "MAIL_SINK_DIR": env.get("MAIL_SINK_DIR", str(instance_dir / "mail")),
        "MAIL_PAGE_ENABLED": intake_env == "development" and _bool(env.get("MAIL_PAGE"), True),
        # Routing seeds (decision 2: the routing table is seeded from these)
        "COORDINATOR_EMAILS": _list(env.get("COORDINATOR_EMAILS", "coordinators@localhost")),
        "PROGRAM_LEAD_EMAILS": _list(env.get("PROGRAM_LEAD_EMAILS", "")),
        "ONCALL_EMAILS": _list(env.get("ONCALL_EMAILS", "")),
        # Optional per-kind coordinators; a kind without its own list goes to COORDINATOR_EMAILS.
        "SECOND_OPINION_EMAILS": _list(env.get("SECOND_OPINION_EMAILS", "")),
        "CARE_TEAM_EMAILS": _list(env.get("CARE_TEAM_EMAILS", "")),
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "URGENT_PHONE": env.get("URGENT_PHONE", "+1 (555) 010-0199"),
        # The coordinators' office line, given on the status page and in family emails.
        "PROGRAM_PHONE": env.get("PROGRAM_PHONE", "+1 (555) 010-0100"),
        "PROGRAM_NAME": env.get("PROGRAM_NAME", "Cellular Therapy Program"),
        # Uploads
        "UPLOAD_DIR": env.get("UPLOAD_DIR", str(instance_dir / "uploads")),
        "UPLOAD_ENCRYPTION_KEY": env.get("UPLOAD_ENCRYPTION_KEY", ""),
        "MAX_UPLOAD_MB": max_upload_mb,
        "MAX_UPLOAD_FILES": max_files,
        # ClamAV daemon for upload scans (decision 18): a Unix socket, or host and port.
        # Unset: only the built-in EICAR check runs and its verdict is final.
        "CLAMD_SOCKET": env.get("CLAMD_SOCKET", ""),
        "CLAMD_HOST": env.get("CLAMD_HOST", ""),
        "CLAMD_PORT": _int(env, "CLAMD_PORT", 3310),
        "CLAMD_TIMEOUT": _float(env, "CLAMD_TIMEOUT", 5.0),
        # A Unicode TrueType font for generated PDFs (authorizations); the built-in Latin-1 font
        # is used when it is missing. Its bold face is looked up as <name>-Bold.ttf.
        "PDF_FONT": env.get("PDF_FONT", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
        # The whole request, files included: refused with 413 before it is buffered.
        "MAX_CONTENT_LENGTH": _int(env, "MAX_REQUEST_MB", 30) * 1024 * 1024,
        "MAX_FORM_MEMORY_SIZE": 256 * 1024,
        "MAX_FORM_PARTS": 300,
        # Calendar (decision 13)
        "PROGRAM_TZ": env.get("PROGRAM_TZ", "America/New_York"),
        "BUSINESS_DAY_START": env.get("BUSINESS_DAY_START", "08:00"),
        "BUSINESS_DAY_END": env.get("BUSINESS_DAY_END", "17:00"),
        "HOLIDAYS": env.get("HOLIDAYS", ""),
        # Triage thresholds: TRIAGE_MAX_AGE_YEARS=25, TRIAGE_HIGH_BLASTS_PCT=50, … (domain.triage)
        "TRIAGE_OVERRIDES": {
            key[len("TRIAGE_") :].lower(): value
            for key, value in env.items()
            if key.startswith("TRIAGE_") and value.strip()
        },
        # Pipeline
        "OUTBOX_SWEEP_SECONDS": _float(env, "OUTBOX_SWEEP_SECONDS", 5.0),
        "RECONCILE_AFTER_SECONDS": _int(env, "RECONCILE_AFTER_SECONDS", 60),
        "NOTIFY_MAX_ATTEMPTS": _int(env, "NOTIFY_MAX_ATTEMPTS", 8),
        # Failed runs of one task message before it is dead-lettered.
        "TASK_MAX_ATTEMPTS": _int(env, "TASK_MAX_ATTEMPTS", 5),
        "ACK_DAILY_CAP": _int(env, "ACK_DAILY_CAP", 25),
        "RETRY_BACKOFF_MAX": _int(env, "RETRY_BACKOFF_MAX", 600),
        "CLAIM_SECONDS": _int(env, "CLAIM_SECONDS", 120),
        "RELAY_IN_PROCESS": _bool(env.get("RELAY_IN_PROCESS"), True),
        # Rate limits (decision: in-memory fallback on public routes)
        "RATELIMIT_STORAGE_URI": limiter_storage,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_ENABLED": _bool(env.get("RATELIMIT_ENABLED"), True),
        "REFERRAL_RATE_LIMIT": env.get("REFERRAL_RATE_LIMIT", "20 per minute;200 per day"),
        # Status lookup (decision 1): per IP, per reference, and a lock after N wrong DOBs.
        "STATUS_RATE_LIMIT": env.get("STATUS_RATE_LIMIT", "10 per minute;60 per hour"),
        "STATUS_REFERENCE_RATE_LIMIT": env.get("STATUS_REFERENCE_RATE_LIMIT", "10 per hour"),
        "STATUS_LOCK_AFTER": _int(env, "STATUS_LOCK_AFTER", 5),
        "STATUS_LOCK_MINUTES": _int(env, "STATUS_LOCK_MINUTES", 30),
        "TRUSTED_PROXY_HOPS": _int(env, "TRUSTED_PROXY_HOPS", 0),
        # Per signed-in user: document downloads, and exports (metrics CSV); security.md 11.1.4.
        "DOWNLOAD_RATE_LIMIT": env.get("DOWNLOAD_RATE_LIMIT", "120 per hour"),
        "EXPORT_RATE_LIMIT": env.get("EXPORT_RATE_LIMIT", "20 per hour"),
        # Audit rows are kept this many years; values under the 6-year floor (H-11) count as 6
        # (intake.domain.retention).
        "AUDIT_RETENTION_YEARS": _int(env, "AUDIT_RETENTION_YEARS", 6),
        # Sessions and CSRF
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": intake_env == "production",
        "WTF_CSRF_TIME_LIMIT": 4 * 3600,
        "STAFF_IDLE_MINUTES": _int(env, "STAFF_IDLE_MINUTES", 15),
        "STAFF_ABSOLUTE_HOURS": _int(env, "STAFF_ABSOLUTE_HOURS", 12),
        "LOGIN_MAX_FAILURES": _int(env, "LOGIN_MAX_FAILURES", 5),
        "LOGIN_LOCKOUT_MINUTES": _int(env, "LOGIN_LOCKOUT_MINUTES", 15),
        "LOGIN_RATE_LIMIT": env.get("LOGIN_RATE_LIMIT", "10 per minute"),
        # How long the link in a new account's invitation email works (a reset link: 30 minutes).
        "INVITE_HOURS": max(1, _int(env, "INVITE_HOURS", 72)),
        "QUEUE_PAGE_SIZE": _int(env, "QUEUE_PAGE_SIZE", 50),
        "INFO_LINK_DAYS": _int(env, "INFO_LINK_DAYS", 14),
        "INFO_REMINDER_HOURS": _float(env, "INFO_REMINDER_HOURS", 72.0),
        "INFO_MAX_REMINDERS": _int(env, "INFO_MAX_REMINDERS", 3),
        "STAFF_SWEEP_SECONDS": _float(env, "STAFF_SWEEP_SECONDS", 60.0),
        # i18n
        "LANGUAGES": ["en", "es"],
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_TRANSLATION_DIRECTORIES": str(PROJECT_ROOT / "translations"),
    }


def engine_options(database_url: str) -> dict[str, Any]:
    # Error messages leave out bound values: they can be patient details, and database errors
    # reach logs and Celery's retry records.
    if database_url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}, "hide_parameters": True}
    return {
        "hide_parameters": True,
        "pool_pre_ping": True,
        "pool_recycle": 1800,
        "connect_args": {"connect_timeout": 5},
    }


def check_production_safety(config: dict[str, Any]) -> None:
    """Refuse to start production with development defaults (decisions.md traps)."""
    if config.get("INTAKE_ENV") != "production":
        return
    problems = []
    if config.get("SECRET_KEY") in (None, "", DEFAULT_SECRET_KEY):
        problems.append("SECRET_KEY is the development default")
    if config.get("DEBUG"):
        problems.append("DEBUG is on")
    if config.get("MAIL_PAGE_ENABLED"):
        problems.append("the development mail page is enabled")
    if not config.get("UPLOAD_ENCRYPTION_KEY"):
        problems.append("UPLOAD_ENCRYPTION_KEY is not set")
    if problems:
        raise RuntimeError("Refusing to start in production: " + "; ".join(problems))
