"""Gunicorn's access log without secrets or PHI from URLs.

Upload links (`/upload/<token>`) and password-reset links (`/coordinator/login/reset/<token>`)
carry bearer tokens in their path; query strings can carry a patient's name (the work queue's
search) and the Referer header can carry either. An access log is read by more people and kept
longer than the audit log, so it records the path with tokens replaced, no query string and no
Referer. Used by the Procfile's web process: `--logger-class intake.access_log.RedactingLogger`.
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

_TOKEN_IN_PATH = re.compile(r"^(/upload|/coordinator/login/reset)/[^/]+")
REDACTED = "[redacted]"


def loggable_path(path: str) -> str:
    """The request path as it may appear in a log: tokens replaced, nothing else changed."""
    return _TOKEN_IN_PATH.sub(lambda found: f"{found.group(1)}/{REDACTED}", path)


class RedactingLogger(Logger):  # type: ignore[misc]
    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> Any:
        atoms = super().atoms(resp, req, environ, request_time)
        path = loggable_path(environ.get("PATH_INFO") or "")
        has_query = bool(environ.get("QUERY_STRING"))
        atoms["U"] = path
        atoms["q"] = REDACTED if has_query else ""
        atoms["r"] = "{} {}{} {}".format(
            environ.get("REQUEST_METHOD"),
            path,
            f"?{REDACTED}" if has_query else "",
            environ.get("SERVER_PROTOCOL"),
        )
        atoms["f"] = "-"
        # Request headers are atoms too ("%({referer}i)s"): blank the ones that hold secrets.
        for header in ("{referer}i", "{cookie}i", "{authorization}i"):
            if header in atoms:
                atoms[header] = REDACTED
        return atoms
