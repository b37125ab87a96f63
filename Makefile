# `make run` sets everything up and starts web, worker, beat and a local mail sink.
# `make test` sets up and runs the whole test suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)

.PHONY: install run test lint typecheck translations migrate clean

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

install: $(VENV)/.installed

translations: install
	@if ls translations/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then \
		$(BIN)/pybabel compile -q -d translations; fi

migrate: install
	$(BIN)/flask --app intake db upgrade
	$(BIN)/flask --app intake seed-routing

run: install translations migrate
	@echo "Intake is starting on http://127.0.0.1:$${PORT:-5000}"
	@$(if $(SMTP_HOST),echo "Mail goes to $(SMTP_HOST)",echo "Mail is caught locally: http://127.0.0.1:$${PORT:-5000}/dev/mail")
	$(BIN)/honcho start web worker beat $(if $(SMTP_HOST),,mail)

test: install translations
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check intake workers tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
