"""Upload storage: random names outside any served folder, AES-GCM at rest, SHA-256 kept.

Blobs are written before the database commit; if the transaction fails they are removed at once,
and the hourly sweep removes any file no Document row points to (a crash between the two).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from intake.extensions import db
from intake.models import Document, utcnow

MAGIC = b"IKE1"


@dataclass(frozen=True)
class StoredBlob:
    storage_key: str
    sha256: str
    size_bytes: int
    key_id: str


class UploadStoreError(Exception):
    """The upload store is full or unavailable."""


def _key(config: dict[str, Any]) -> bytes:
    configured = config.get("UPLOAD_ENCRYPTION_KEY") or ""
    if configured:
        key = bytes.fromhex(configured)
    else:
        # Development only (production refuses to start without a key): one key per instance.
        key_file = Path(config["INSTANCE_DIR"]) / "upload-key.hex"
        if not key_file.exists():
            # Written aside then linked into place: several web workers may race here, and a
            # reader must never see the file before its content (it did: an empty key, a 500).
            key_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = key_file.with_name(f"{key_file.name}.{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
            try:
                os.link(tmp, key_file)
            except FileExistsError:
                pass  # another process won the race; use its key
            finally:
                tmp.unlink()
        key = bytes.fromhex(key_file.read_text().strip())
    if len(key) != 32:
        raise ValueError("UPLOAD_ENCRYPTION_KEY must be 64 hex characters (256 bits)")
    return key


def key_id_for(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


def _path(config: dict[str, Any], storage_key: str) -> Path:
    return Path(config["UPLOAD_DIR"]) / storage_key[:2] / storage_key


def store(data: bytes, config: dict[str, Any]) -> StoredBlob:
    key = _key(config)
    storage_key = secrets.token_hex(16)
    nonce = secrets.token_bytes(12)
    blob = MAGIC + nonce + AESGCM(key).encrypt(nonce, data, storage_key.encode())
    path = _path(config, storage_key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        with open(tmp, "wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError as exc:
        raise UploadStoreError(type(exc).__name__) from exc
    return StoredBlob(
        storage_key=storage_key,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        key_id=key_id_for(key),
    )


def document_for(
    blob: StoredBlob,
    *,
    slot: str,
    display_name: str,
    mime_type: str,
    scan_status: str = "clean",
) -> Document:
    """The Document row (case document metadata) of a stored blob.

    ``scan_status`` is the upload scan's verdict (intake.services.scanner): "clean", or
    "error" when the scanner could not answer and the file waits, quarantined, for a rescan.
    """
    return Document(
        id=str(uuid.uuid4()),
        slot=slot,
        display_name=display_name,
        mime_type=mime_type,
        size_bytes=blob.size_bytes,
        sha256=blob.sha256,
        storage_key=blob.storage_key,
        key_id=blob.key_id,
        scan_status=scan_status,
        scanned_at=utcnow() if scan_status == "clean" else None,
    )


class Upload(Protocol):
    """A checked file waiting to be stored (services.referrals.UploadedFile)."""

    slot: str
    display_name: str
    mime_type: str
    data: bytes
    scan_status: str


def attach(
    documents: list[Document], files: Iterable[Upload], config: dict[str, Any], stored: list[str]
) -> None:
    """Store each file's blob and append its Document row to ``documents`` (a case's
    collection). Each blob's key goes into ``stored`` as soon as it is written, so the caller
    can discard them all when its transaction fails."""
    for upload in files:
        blob = store(upload.data, config)
        stored.append(blob.storage_key)
        documents.append(
            document_for(
                blob,
                slot=upload.slot,
                display_name=upload.display_name,
                mime_type=upload.mime_type,
                scan_status=upload.scan_status,
            )
        )


def load(storage_key: str, expected_sha256: str, config: dict[str, Any]) -> bytes:
    """Decrypt and verify; raises ValueError when the blob was tampered with."""
    blob = _path(config, storage_key).read_bytes()
    if not blob.startswith(MAGIC):
        raise ValueError("not an Intake blob")
    nonce, ciphertext = blob[4:16], blob[16:]
    data = AESGCM(_key(config)).decrypt(nonce, ciphertext, storage_key.encode())
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ValueError("checksum mismatch")
    return data


def discard(storage_keys: list[str], config: dict[str, Any]) -> None:
    for storage_key in storage_keys:
        _path(config, storage_key).unlink(missing_ok=True)


def collect_orphans(config: dict[str, Any], older_than_seconds: int = 3600) -> int:
    """Delete blobs that no Document references (left by a crash between write and commit)."""
    root = Path(config["UPLOAD_DIR"])
    if not root.exists():
        return 0
    known = set(db.session.scalars(sa.select(Document.storage_key)))
    cutoff = time.time() - older_than_seconds
    removed = 0
    for path in root.glob("*/*"):
        name = path.name.removesuffix(".part")
        if name not in known and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
