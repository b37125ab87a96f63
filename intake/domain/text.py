"""Marking texts for translation in code that must not import Flask-Babel.

``N_("Diagnosis")`` returns its argument unchanged; `make translations-update` extracts it (the
``N_`` keyword), and the page or email that shows it translates it with ``_(text)``.
"""

from __future__ import annotations

__all__ = ["N_"]


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    return message
