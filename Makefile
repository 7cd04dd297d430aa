# Stock Dispatch — the two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv

.PHONY: run test test-fast lint typecheck bench lock clean i18n

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8

# Runtime dependencies, hash-checked from the lock file, and the project itself (editable).
$(VENV)/.runtime: requirements/runtime.lock pyproject.toml | $(BIN)/python
	$(UV) pip install --python $(BIN)/python --quiet --require-hashes -r requirements/runtime.lock
	$(UV) pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $@

# Test, lint and benchmark tools on top.
$(VENV)/.dev: requirements/dev.lock $(VENV)/.runtime
	$(UV) pip install --python $(BIN)/python --quiet --require-hashes -r requirements/dev.lock
	touch $@

run: $(VENV)/.runtime
	$(BIN)/dispatch run

test: $(VENV)/.dev
	$(BIN)/ruff check app workers tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest -m "not e2e" -x

lint: $(VENV)/.dev
	$(BIN)/ruff check app workers tests bench
	$(BIN)/ruff format --check app workers tests bench

typecheck: $(VENV)/.dev
	$(BIN)/mypy

bench: $(VENV)/.dev
	$(BIN)/python -m bench

# Re-resolve the pinned versions (after editing requirements/*.in).
lock: | $(BIN)/python
	cd requirements && ../$(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes runtime.in -o runtime.lock
	cd requirements && ../$(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes dev.in -o dev.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Extract the messages to app/i18n/messages.pot and merge them into the fr and en catalogs
# (created if missing). Then translate the new entries of app/i18n/fr/LC_MESSAGES/messages.po.
I18N_KEYWORDS := -k Refused -k Invalid -k NotFound -k LoginRefused -k TooManyAttempts -k NotEnoughStock -k KeyReused -k OpenPickWork -k OutsideYourSites -k WrongPick -k ListTaken -k NothingToShip -k PrinterUnavailable -k StaleInputs -k ChangedMeanwhile -k NothingToUndo -k NothingToAllocate -k N_ -k gettext -k ngettext:1,2

i18n: $(VENV)/.dev
	$(BIN)/pybabel --quiet extract -F babel.cfg $(I18N_KEYWORDS) --no-location --omit-header --sort-output \
		-o app/i18n/messages.pot .
	for locale in fr en; do \
		$(BIN)/pybabel --quiet update --init-missing --no-fuzzy-matching --ignore-pot-creation-date \
			-i app/i18n/messages.pot -d app/i18n -l $$locale || exit 1; \
	done
