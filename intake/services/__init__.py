"""Use cases: no request objects here; each function is one transaction."""
