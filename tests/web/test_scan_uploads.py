"""Upload malware scanning end to end (decision 18; security.md §5 row 24).

A tiny clamd stand-in speaks the INSTREAM protocol on a free port; a closed port plays the
scanner being down. The EICAR file is refused at every upload point with a field error and
nothing stored; a file the scanner could not check is stored quarantined, never served,
and the rescan task gives it its verdict.
"""

from __future__ import annotations

import io
import re
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake.domain.scan import EICAR
from intake.extensions import db
from intake.models import Alert, Document, Notification, Referral
from intake.services import notifications, scanner, uploads
from intake.services.referrals import run_triage
from tests.families.family_data import second_opinion
from tests.referral_data import valid_referral
from tests.samples import tiny_pdf
from tests.staff.helpers import audit_count, make_referral, make_user, sign_in

VIRUS_MESSAGE = "This file contains a virus signature and was not accepted."


class FakeClamd:
    """Answers zINSTREAM with ``reply`` (``stream: OK`` by default) and keeps what it got."""

    def __init__(self) -> None:
        self.reply = b"stream: OK\x00"
        self.received: list[bytes] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _address = self._server.accept()
            except OSError:
                return
            with connection:
                self._answer(connection)

    def _read(self, connection: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            part = connection.recv(size - len(data))
            if not part:
                raise ConnectionError("client went away")
            data += part
        return data

    def _answer(self, connection: socket.socket) -> None:
        try:
            command = self._read(connection, len(b"zINSTREAM\x00"))
            assert command == b"zINSTREAM\x00", command
            body = b""
            while True:
                (length,) = struct.unpack(">I", self._read(connection, 4))
                if length == 0:
                    break
                body += self._read(connection, length)
            self.received.append(body)
            connection.sendall(self.reply)
        except (ConnectionError, AssertionError):
            return

    def close(self) -> None:
        self._server.close()


def closed_port() -> int:
    """A port nothing listens on: the scanner is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def clamd() -> Iterator[FakeClamd]:
    server = FakeClamd()
    yield server
    server.close()


@pytest.fixture
def app_config(app_config: dict[str, Any], clamd: FakeClamd) -> dict[str, Any]:
    app_config.update(CLAMD_HOST="127.0.0.1", CLAMD_PORT=clamd.port, CLAMD_TIMEOUT=2.0)
    return app_config


def scanner_down(app: Flask) -> None:
    app.config["CLAMD_PORT"] = closed_port()


def counts(app: Flask) -> dict[str, int]:
    with app.app_context():
        result = {
            model.__tablename__: int(
                db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0
            )
            for model in (Referral, Document)
        }
    upload_dir = Path(app.config["UPLOAD_DIR"])
    result["blobs"] = (
        len([p for p in upload_dir.rglob("*") if p.is_file()]) if upload_dir.exists() else 0
    )
    return result


def eicar_file() -> tuple[io.BytesIO, str]:
    return io.BytesIO(EICAR + b"\r\n"), "eicar.pdf"


def upload_link(app: Flask, client: FlaskClient, reference: str) -> str:
    """Ask the referrer for the flow report; the /upload/<token> path from the email."""
    response = client.post(
        f"/coordinator/referrals/{reference}/request-info",
        data={"items": ["flow_report"], "audience": "referrer"},
    )
    assert response.status_code == 303
    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert referral is not None
        notification = db.session.scalar(
            sa.select(Notification).where(
                Notification.referral_id == referral.id,
                Notification.kind.like("info_request.%"),
            )
        )
        assert notification is not None
        text = notifications.render(notification, referral).text
    link = re.search(r"http://intake\.test(/upload/[A-Za-z0-9_-]+)", text)
    assert link, text
    return link.group(1)


def refer(app: Flask, submission_id: str) -> str:
    """Submit a referral with its flow report through the public form; its reference."""
    response = app.test_client().post(
        "/refer",
        data={
            "submission_id": submission_id,
            **valid_referral(),
            "doc_flow_cytometry": (io.BytesIO(tiny_pdf()), "flow.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    with app.app_context():
        return str(db.session.scalars(sa.select(Referral.reference)).one())


@pytest.fixture
def coordinator(app: Flask, client: FlaskClient) -> Any:
    account = make_user(app, "scan-coord@program.test")
    sign_in(app, client, account)
    return account


def test_eicar_is_refused_on_the_referral_form_and_nothing_is_stored(
    app: Flask, client: FlaskClient
) -> None:
    data = valid_referral()
    response = client.post(
        "/refer",
        data={
            "submission_id": "5d1b2f0e-8a3c-4f57-9b1e-0c2d3e4f5a6b",
            **data,
            "doc_flow_cytometry": eicar_file(),
        },
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="doc_flow_cytometry-error"' in html
    error = html[html.index('id="doc_flow_cytometry-error"') :][:400]
    assert VIRUS_MESSAGE in error
    assert data["referrer_institution"].replace("'", "&#39;") in html  # what they typed is kept
    assert counts(app) == {"referral": 0, "document": 0, "blobs": 0}


def test_eicar_is_refused_on_the_second_opinion_form_and_nothing_is_stored(
    app: Flask, client: FlaskClient
) -> None:
    data = second_opinion(records_choice="upload")
    data["doc_records"] = eicar_file()
    response = client.post(
        "/second-opinion",
        data={"submission_id": "6e2c3a1f-9b4d-4a68-8c2f-1d3e4f5a6b7c", **data},
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="doc_records-error"' in html
    assert VIRUS_MESSAGE in html[html.index('id="doc_records-error"') :][:400]
    assert counts(app) == {"referral": 0, "document": 0, "blobs": 0}


def test_eicar_is_refused_on_the_upload_page_and_nothing_is_stored(
    app: Flask, client: FlaskClient, coordinator: Any
) -> None:
    reference = make_referral(app, flow_report=False)
    link = upload_link(app, client, reference)
    before = counts(app)
    family = app.test_client()
    assert family.get(link).status_code == 303
    response = family.post(
        "/upload", data={"doc_flow_cytometry": eicar_file()}, content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert VIRUS_MESSAGE in response.get_data(as_text=True)
    assert counts(app) == before
    # The link was not spent: a clean file is still accepted.
    done = family.post(
        "/upload",
        data={"doc_flow_cytometry": (io.BytesIO(tiny_pdf()), "flow.pdf")},
        content_type="multipart/form-data",
    )
    assert done.status_code == 303


def test_a_signature_found_by_clamd_is_refused_too(
    app: Flask, client: FlaskClient, clamd: FakeClamd
) -> None:
    clamd.reply = b"stream: Pdf.Exploit.CVE_2018_4993-1 FOUND\x00"
    response = client.post(
        "/refer",
        data={
            "submission_id": "7f3d4b2a-0c5e-4b79-9d3a-2e4f5a6b7c8d",
            **valid_referral(),
            "doc_flow_cytometry": (io.BytesIO(tiny_pdf()), "flow.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert VIRUS_MESSAGE in response.get_data(as_text=True)
    assert clamd.received == [tiny_pdf()]  # the whole file went through INSTREAM
    assert counts(app) == {"referral": 0, "document": 0, "blobs": 0}


def test_a_clean_upload_is_scanned_stored_clean_and_served(
    app: Flask, client: FlaskClient, clamd: FakeClamd, coordinator: Any
) -> None:
    reference = refer(app, "9b5f6d4c-2e7a-4d9b-9f5c-4a6b7c8d9e0f")
    assert clamd.received == [tiny_pdf()]
    with app.app_context():
        document = db.session.scalars(sa.select(Document)).one()
        assert document.scan_status == "clean" and document.scanned_at is not None
        document_id = document.id
    download = client.get(f"/coordinator/referrals/{reference}/documents/{document_id}")
    assert download.status_code == 200 and download.data == tiny_pdf()


def test_scanner_down_quarantines_then_rescan_clears(
    app: Flask, client: FlaskClient, clamd: FakeClamd, coordinator: Any
) -> None:
    scanner_down(app)
    # Never lose a referral: it is stored, its file quarantined.
    reference = refer(app, "0c6a7e5d-3f8b-4eac-8a6d-5b7c8d9e0f1a")
    with app.app_context():
        document = db.session.scalars(sa.select(Document)).one()
        assert document.scan_status == "error" and document.scanned_at is None
        document_id = document.id
        # Stored encrypted as usual.
        assert uploads.load(document.storage_key, document.sha256, app.config) == tiny_pdf()

    url = f"/coordinator/referrals/{reference}/documents/{document_id}"
    refused = client.get(url)
    assert refused.status_code == 404
    assert tiny_pdf() not in refused.data
    assert "quarantined until a virus scan clears it" in refused.get_data(as_text=True)
    assert audit_count(app, action="denied", resource_id=document_id, outcome="denied") == 1
    page = client.get(f"/coordinator/referrals/{reference}").get_data(as_text=True)
    assert "Quarantined: waiting for a virus scan" in page
    assert url not in page  # no download link for a quarantined file

    with app.app_context():  # still down: stays quarantined
        assert scanner.rescan_due(app.config) == {"error": 1}
    app.config["CLAMD_PORT"] = clamd.port
    with app.app_context():
        assert scanner.rescan_due(app.config) == {"clean": 1}
        assert scanner.rescan_due(app.config) == {}  # nothing left to do
        assert scanner.rescan_document(document_id, app.config) == "already_scanned"
        document = db.session.get(Document, document_id)
        assert document is not None
        assert document.scan_status == "clean" and document.scanned_at is not None
    served = client.get(url)
    assert served.status_code == 200 and served.data == tiny_pdf()
    assert "Quarantined" not in client.get(f"/coordinator/referrals/{reference}").get_data(
        as_text=True
    )


def test_a_signature_found_on_rescan_is_never_served_and_alerts_once(
    app: Flask, client: FlaskClient, clamd: FakeClamd, coordinator: Any
) -> None:
    scanner_down(app)
    family = app.test_client()
    response = family.post(
        "/second-opinion",
        data={
            "submission_id": "8a4e5c3b-1d6f-4c8a-8e4b-3f5a6b7c8d9e",
            **second_opinion(records_choice="upload"),
            "doc_records": (io.BytesIO(tiny_pdf()), "records.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303  # the family's request is not lost
    app.config["CLAMD_PORT"] = clamd.port
    clamd.reply = b"stream: Pdf.Dropper.Agent-7 FOUND\x00"
    with app.app_context():
        document = db.session.scalars(sa.select(Document).where(Document.slot == "records")).one()
        assert document.scan_status == "error"
        document_id = document.id
        referral = db.session.get(Referral, document.referral_id)
        assert referral is not None
        reference = referral.reference
        assert scanner.rescan_due(app.config) == {"infected": 1}
        assert scanner.rescan_due(app.config) == {}
        assert scanner.rescan_document(document_id, app.config) == "already_scanned"
        alerts = list(db.session.scalars(sa.select(Alert).where(Alert.code == "document_infected")))
        assert len(alerts) == 1
        assert document_id in alerts[0].message and "Pdf.Dropper.Agent-7" in alerts[0].message
        assert alerts[0].referral_id == referral.id

    admin = make_user(app, "scan-admin@program.test", role="admin")
    admin_client = app.test_client()
    sign_in(app, admin_client, admin)
    assert document_id in admin_client.get("/coordinator/admin/alerts").get_data(as_text=True)

    url = f"/coordinator/referrals/{reference}/documents/{document_id}"
    refused = admin_client.get(url)
    assert refused.status_code == 404 and tiny_pdf() not in refused.data
    assert "contains a virus signature and is never served" in refused.get_data(as_text=True)
    assert audit_count(app, action="denied", resource_id=document_id) == 1
    page = admin_client.get(f"/coordinator/referrals/{reference}").get_data(as_text=True)
    assert "Quarantined: virus signature found, never served" in page


def test_the_rescan_task_is_scheduled(app: Flask) -> None:
    from workers.schedule import beat_schedule

    entry = beat_schedule({"OUTBOX_SWEEP_SECONDS": 5, "STAFF_SWEEP_SECONDS": 60})["uploads-rescan"]
    assert entry["task"] == "uploads.rescan"


def scripted_pdf() -> bytes:
    """A PDF that runs JavaScript when opened (security.md §5 row 19)."""
    return tiny_pdf(b"/OpenAction 6 0 R", (b"<< /S /JavaScript /JS (app.alert(1)) >>",))


def test_a_pdf_with_scripts_is_kept_quarantined_never_served_and_counts_as_missing(
    app: Flask, client: FlaskClient, coordinator: Any
) -> None:
    response = app.test_client().post(
        "/refer",
        data={
            "submission_id": "5d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a",
            **valid_referral(),
            "doc_flow_cytometry": (io.BytesIO(scripted_pdf()), "flow.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303  # the referral itself is never refused for it
    with app.app_context():
        referral = db.session.scalars(sa.select(Referral)).one()
        document = db.session.scalars(sa.select(Document)).one()
        assert document.scan_status == "active"
        reference, document_id, referral_id = referral.reference, document.id, referral.id
        run_triage(referral_id)
        db.session.expire_all()
        triaged = db.session.get(Referral, referral_id)
        assert triaged is not None
        # Unreadable, so the flow report is still missing (rule R1) and can be asked for.
        assert any("flow" in item.lower() for item in triaged.missing_items), triaged.missing_items

    url = f"/coordinator/referrals/{reference}/documents/{document_id}"
    refused = client.get(url)
    assert refused.status_code == 404 and scripted_pdf() not in refused.data
    assert "scripts or automatic actions" in refused.get_data(as_text=True)
    assert audit_count(app, action="denied", resource_id=document_id, outcome="denied") == 1
    page = client.get(f"/coordinator/referrals/{reference}").get_data(as_text=True)
    assert "Quarantined: a PDF with scripts or automatic actions" in page
    assert url not in page
    with app.app_context():  # final: the rescan task leaves it alone
        assert scanner.rescan_due(app.config) == {}


def test_a_pdf_with_scripts_sent_through_an_upload_link_is_quarantined_too(
    app: Flask, client: FlaskClient, coordinator: Any
) -> None:
    reference = make_referral(app, flow_report=False)
    link = upload_link(app, client, reference)
    family = app.test_client()
    assert family.get(link).status_code == 303
    done = family.post(
        "/upload",
        data={"doc_flow_cytometry": (io.BytesIO(scripted_pdf()), "flow.pdf")},
        content_type="multipart/form-data",
    )
    assert done.status_code == 303
    with app.app_context():
        statuses = set(db.session.scalars(sa.select(Document.scan_status)))
    assert statuses == {"active"}
