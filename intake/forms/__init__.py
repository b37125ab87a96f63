"""Flask-WTF forms and their validators."""
