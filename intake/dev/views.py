"""Read the .eml files the local mail sink kept."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser
from pathlib import Path

from flask import abort, current_app, render_template

from intake.dev import bp

EML_NAME = re.compile(r"^[0-9A-Za-z_.-]+\.eml$")


def _mail_dir() -> Path:
    return Path(current_app.config["MAIL_SINK_DIR"])


@bp.get("/mail")
def mail_list() -> str:
    messages = []
    folder = _mail_dir()
    if folder.exists():
        for path in sorted(folder.glob("*.eml"), reverse=True)[:200]:
            with open(path, "rb") as handle:
                headers = BytesParser(policy=policy.default).parse(handle, headersonly=True)
            messages.append(
                {
                    "name": path.name,
                    "to": headers["To"],
                    "subject": headers["Subject"],
                    "date": headers["Date"],
                }
            )
    return render_template("dev/mail_list.html", messages=messages)


@bp.get("/mail/<name>")
def mail_message(name: str) -> str:
    if not EML_NAME.match(name):
        abort(404)
    path = _mail_dir() / name
    if not path.is_file():
        abort(404)
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    body = message.get_body(preferencelist=("plain",))
    return render_template(
        "dev/mail_message.html",
        name=name,
        headers={key: message[key] for key in ("From", "To", "Subject", "Date", "Message-ID")},
        body=body.get_content() if body else "",
    )
