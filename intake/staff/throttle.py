"""Per-user limits on document downloads and exports (security.md 11.1.4; alert on abnormal
volume, 8.1.4). Counted per signed-in account, not per address: coordinators share a hospital
NAT, and a stolen session moves between addresses.

Put the decorators below ``staff_required`` (and ``recent_auth_required``): the limit is
checked when the wrapped view is called, so only signed-in, authorized requests count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import current_app, request
from flask_limiter import RequestLimit
from flask_limiter.util import get_remote_address
from flask_login import current_user

from intake.extensions import db, limiter

log = logging.getLogger("intake.throttle")

DOWNLOAD, EXPORT = "download", "export"


def user_key() -> str:
    if getattr(current_user, "is_authenticated", False):
        return f"staff-user:{current_user.id}"
    return f"staff-ip:{get_remote_address()}"  # not reached behind staff_required


def _download_limit() -> str:
    return str(current_app.config["DOWNLOAD_RATE_LIMIT"])


def _export_limit() -> str:
    return str(current_app.config["EXPORT_RATE_LIMIT"])


def _on_breach(kind: str) -> Callable[[RequestLimit], None]:
    def record(request_limit: RequestLimit) -> None:
        from intake.services import throttling

        if not getattr(current_user, "is_authenticated", False):
            return
        if kind == DOWNLOAD:
            resource_type, resource_id = "document", (request.view_args or {}).get("document_id")
        else:
            resource_type, resource_id = "export", request.endpoint
        try:
            throttling.record_refusal(
                current_user._get_current_object(),  # type: ignore[attr-defined]
                kind,
                resource_type,
                str(resource_id)[:64] if resource_id else None,
                str(request_limit.limit),
            )
        except Exception:  # noqa: BLE001 (the 429 must go out; an error here would be retried
            # by Flask-Limiter as a storage failure)
            db.session.rollback()
            log.exception("throttle_record_failed kind=%s", kind)

    return record


# One budget per user for each: every download route shares the first, every export the second.
downloads = limiter.shared_limit(
    _download_limit, scope="staff-download", key_func=user_key, on_breach=_on_breach(DOWNLOAD)
)
exports = limiter.shared_limit(
    _export_limit, scope="staff-export", key_func=user_key, on_breach=_on_breach(EXPORT)
)
