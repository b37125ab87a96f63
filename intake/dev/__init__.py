"""Development-only pages: the local mail sink's messages. Never registered in production."""

from flask import Blueprint

bp = Blueprint("dev", __name__, url_prefix="/dev")

from intake.dev import views  # noqa: E402,F401
