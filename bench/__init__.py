"""Benchmarks: `make bench`, or one at a time with `.venv/bin/python -m bench.<name>`."""
