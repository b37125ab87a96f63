"""Family pages: the second-opinion request and messages to the care team."""

from flask import Blueprint

bp = Blueprint("families", __name__)

from intake.families import views  # noqa: E402,F401
