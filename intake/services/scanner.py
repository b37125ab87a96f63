"""Upload malware scans (decision 18; security.md §5 row 24), failing closed.

Every uploaded file gets the built-in EICAR check; with a ClamAV daemon configured
(``CLAMD_SOCKET`` or ``CLAMD_HOST``/``CLAMD_PORT``) its bytes are also streamed to it with the
INSTREAM command. Infected files are refused at the form and never stored. When the daemon
cannot answer, the file is stored as ``error`` (quarantined: never served) so no referral is
lost, and the beat task ``uploads.rescan`` scans it again until there is a verdict.
"""

from __future__ import annotations

import logging
import socket
import struct
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag

from intake.domain import scan as verdicts
from intake.domain.files import PDF, UploadError, check_upload
from intake.domain.pdf_active import active_content
from intake.extensions import db
from intake.models import Document, utcnow
from intake.services import alerts, uploads

log = logging.getLogger("intake.scanner")

_CHUNK = 64 * 1024
_MAX_REPLY = 4096
RESCAN_BATCH = 50


@dataclass(frozen=True)
class ScanResult:
    status: str
    detail: str = ""


def is_configured(config: dict[str, Any]) -> bool:
    return bool(config.get("CLAMD_SOCKET") or config.get("CLAMD_HOST"))


def scan(data: bytes, config: dict[str, Any]) -> ScanResult:
    """The verdict on ``data``: clean, infected, or error when the daemon could not answer."""
    if verdicts.is_eicar(data):
        return ScanResult(verdicts.INFECTED, verdicts.EICAR_NAME)
    if not is_configured(config):
        # Without ClamAV the built-in check is all there is; its verdict is final.
        return ScanResult(verdicts.CLEAN)
    try:
        reply = _instream(data, config)
    except (OSError, ValueError) as exc:
        log.warning("scanner_unavailable error=%s", type(exc).__name__)
        return ScanResult(verdicts.ERROR, type(exc).__name__)
    status, detail = verdicts.parse_clamd_reply(reply)
    if status == verdicts.ERROR:
        log.warning("scanner_error reply=%s", detail)
    return ScanResult(status, detail)


def _connect(config: dict[str, Any]) -> socket.socket:
    timeout = float(config.get("CLAMD_TIMEOUT") or 5.0)
    path = config.get("CLAMD_SOCKET")
    if path:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError:
            sock.close()
            raise
        return sock
    return socket.create_connection(
        (str(config["CLAMD_HOST"]), int(config.get("CLAMD_PORT") or 3310)), timeout=timeout
    )


def _instream(data: bytes, config: dict[str, Any]) -> bytes:
    """Send ``data`` with zINSTREAM (4-byte big-endian chunk lengths, zero length ends it)."""
    with _connect(config) as sock:
        sock.sendall(b"zINSTREAM\x00")
        for start in range(0, len(data), _CHUNK):
            chunk = data[start : start + _CHUNK]
            sock.sendall(struct.pack(">I", len(chunk)) + chunk)
        sock.sendall(struct.pack(">I", 0))
        reply = b""
        while b"\x00" not in reply and len(reply) < _MAX_REPLY:
            part = sock.recv(_MAX_REPLY)
            if not part:
                break
            reply += part
    return reply


def vet_upload(
    data: bytes, filename: str, *, max_bytes: int, config: dict[str, Any]
) -> tuple[str, str, str]:
    """Check and scan one upload: (mime type, display name, scan status).

    The status is ``clean``, ``error`` (the scanner could not answer; rescanned later) or
    ``active`` (a PDF with scripts or automatic actions: kept, so the referral is whole, but
    quarantined for good; security.md §5 row 19). Raises UploadError (code ``infected`` for a
    virus signature). The EICAR test file is named as a virus before the type check, which
    would otherwise call it "not a PDF".
    """
    if verdicts.is_eicar(data):
        log.warning("upload_refused reason=infected signature=%s", verdicts.EICAR_NAME)
        raise UploadError("infected")
    mime, display_name = check_upload(data, filename, max_bytes=max_bytes)
    result = scan(data, config)
    if result.status == verdicts.INFECTED:
        log.warning("upload_refused reason=infected signature=%s", result.detail)
        raise UploadError("infected")
    if mime == PDF:
        findings = active_content(data)
        if findings:
            log.warning("upload_quarantined reason=active_content found=%s", ",".join(findings))
            return mime, display_name, verdicts.ACTIVE
    return mime, display_name, result.status


def rescan_due(config: dict[str, Any], limit: int = RESCAN_BATCH) -> dict[str, int]:
    """Rescan quarantined documents (status error or pending), oldest first."""
    ids = list(
        db.session.scalars(
            sa.select(Document.id)
            .where(Document.scan_status.in_((verdicts.ERROR, verdicts.PENDING)))
            .order_by(Document.created_at)
            .limit(limit)
        )
    )
    db.session.rollback()
    counts: dict[str, int] = {}
    for document_id in ids:
        outcome = rescan_document(document_id, config)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def rescan_document(document_id: str, config: dict[str, Any]) -> str:
    """Scan one stored document again and record the verdict. Idempotent: a document
    that has a verdict is left alone. An infected one raises one alert for the admins."""
    document = db.session.scalar(
        sa.select(Document).where(Document.id == document_id).with_for_update()
    )
    if document is None:
        db.session.rollback()
        return "missing"
    if document.scan_status not in (verdicts.ERROR, verdicts.PENDING):
        db.session.rollback()
        return "already_scanned"
    try:
        data = uploads.load(document.storage_key, document.sha256, config)
    except (OSError, ValueError, InvalidTag):
        # A missing or tampered blob is the integrity alert's business; it stays quarantined.
        db.session.rollback()
        log.error("rescan_unreadable document=%s", document_id)
        return "unreadable"
    result = scan(data, config)
    if result.status == verdicts.ERROR:
        db.session.rollback()
        return verdicts.ERROR
    document.scan_status = result.status
    document.scanned_at = utcnow()
    if result.status == verdicts.INFECTED:
        alerts.raise_alert(
            code="document_infected",
            dedupe_key=f"document_infected:{document.id}",
            referral_id=document.referral_id,
            message=(
                f"Document {document.id} matched virus signature {result.detail} on rescan; "
                "it stays quarantined and is never served."
            ),
        )
    db.session.commit()
    log.info("rescan document=%s status=%s", document_id, result.status)
    return result.status
