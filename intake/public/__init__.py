"""Public pages: the referral form, its confirmation, the status lookup, health."""

from flask import Blueprint

bp = Blueprint("public", __name__)

from intake.public import status, views  # noqa: E402,F401
