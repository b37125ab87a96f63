# `make run` sets everything up and starts web, worker, beat and a local mail sink.
# `make test` sets up and runs the whole test suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)

.PHONY: install run test test-embedded reliability reliability-full bench lint typecheck translations translations-update migrate clean

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

install: $(VENV)/.installed

translations: install
	@if ls translations/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then \
		$(BIN)/pybabel -q compile -d translations; fi

# Re-extract every translatable string (babel.cfg) and merge it into each catalogue; new or
# changed strings then need a Spanish text in translations/es/LC_MESSAGES/messages.po.
translations-update: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k N_ -k pgettext:1c,2 -k lazy_pgettext:1c,2 \
		--add-location=file \
		--sort-by-file --project=Intake --version=0.1.0 -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations -l es \
		--no-fuzzy-matching --ignore-obsolete

migrate: install
	$(BIN)/flask --app intake db upgrade
	$(BIN)/flask --app intake seed-routing

run: install translations migrate
	@echo "Intake is starting on http://127.0.0.1:$${PORT:-5000}"
	@$(if $(SMTP_HOST),echo "Mail goes to $(SMTP_HOST)",echo "Mail is caught locally: http://127.0.0.1:$${PORT:-5000}/dev/mail")
	@# How to create the first admin; a demo admin in development only (refused in production).
	@$(BIN)/flask --app intake users welcome
	$(BIN)/honcho start web worker beat $(if $(SMTP_HOST),,mail)

# The fault-injection and load tests take minutes: `make test` skips them, `make reliability`
# (which .ci/run also calls) runs them; `make reliability-full` runs the load test for 60 s.
test: install translations
	$(BIN)/pytest -m "not reliability"

# The same suite on the embedded defaults alone (SQLite, no Redis), as `make run` starts the
# product; tests that need PostgreSQL or Redis skip, saying so. `.ci/run` calls it too.
test-embedded: install translations
	TEST_EMBEDDED_ONLY=1 $(BIN)/pytest -m "not reliability" -q

reliability: install translations
	$(BIN)/pytest -m reliability tests/faults

reliability-full: install translations
	LOAD_SECONDS=60 $(BIN)/pytest -m reliability tests/faults

# Benchmarks (never part of `make test`): needs PostgreSQL and Redis on 127.0.0.1; figures and
# the commands behind them are in bench/README.md. Takes about 10 minutes (1M demo cases).
bench: install translations
	$(BIN)/python -m bench.profile_hot_paths --label latest
	$(BIN)/python -m bench.intake_floor
	$(BIN)/python -m bench.intake_layers
	$(BIN)/python -m bench.worker_cost
	$(BIN)/python -m bench.queue_floor
	$(BIN)/python -m bench.growth
	$(BIN)/python -m bench.load --clients 50 --seconds 60

lint: install
	$(BIN)/ruff check intake workers tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
