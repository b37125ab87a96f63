"""Celery side of Intake: thin tasks that load by ID and call intake.services."""
