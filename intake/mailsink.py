"""Local SMTP sink for development: keeps every message as an .eml file under instance/."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

log = logging.getLogger("intake.mailsink")


class SaveToFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        (self.folder / name).write_bytes(envelope.original_content or envelope.content)
        log.info("mail_kept file=%s recipients=%d", name, len(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


DEFAULT_PORT = 8025
LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1", "[::1]"})


def sink_port(env: Mapping[str, str], smtp_host: str, smtp_port: int) -> int:
    """The port to listen on: ``MAIL_SINK_PORT`` when set; otherwise ``SMTP_PORT`` when the
    app sends to this machine (``SMTP_HOST`` local or unset), so setting only ``SMTP_PORT``
    moves both ends; otherwise 8025."""
    explicit = (env.get("MAIL_SINK_PORT") or "").strip()
    if explicit:
        return int(explicit)
    if smtp_host.strip().lower() in LOCAL_HOSTS:
        return smtp_port
    return DEFAULT_PORT


def main() -> None:
    from intake.config import load_config

    config = load_config()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port",
        type=int,
        default=sink_port(os.environ, str(config["SMTP_HOST"]), int(config["SMTP_PORT"])),
    )
    parser.add_argument("--folder", default=config["MAIL_SINK_DIR"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    controller = Controller(SaveToFolder(Path(args.folder)), hostname=args.host, port=args.port)
    controller.start()
    log.info("mail sink listening on %s:%s, saving to %s", args.host, args.port, args.folder)
    try:
        asyncio.run(asyncio.Event().wait())
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
