"""The development mail sink listens where the app sends: on SMTP_PORT when SMTP_HOST is this
machine, unless MAIL_SINK_PORT says otherwise."""

from __future__ import annotations

import pytest

from intake.config import load_config
from intake.mailsink import sink_port


def _port(env: dict[str, str]) -> int:
    config = load_config(env)
    return sink_port(env, str(config["SMTP_HOST"]), int(config["SMTP_PORT"]))


def test_with_nothing_set_app_and_sink_meet_on_8025() -> None:
    assert _port({}) == 8025 == load_config({})["SMTP_PORT"]


@pytest.mark.parametrize("host", [None, "", "127.0.0.1", "localhost", "LOCALHOST", "::1"])
def test_setting_only_smtp_port_moves_the_sink_too(host: str | None) -> None:
    env = {"SMTP_PORT": "2525"}
    if host is not None:
        env["SMTP_HOST"] = host
    assert _port(env) == 2525 == load_config(env)["SMTP_PORT"]


def test_mail_sink_port_is_an_explicit_override() -> None:
    assert _port({"SMTP_PORT": "2525", "MAIL_SINK_PORT": "1025"}) == 1025


def test_a_remote_smtp_server_leaves_the_sink_on_its_default() -> None:
    assert _port({"SMTP_HOST": "smtp.hospital.org", "SMTP_PORT": "587"}) == 8025
