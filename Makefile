# Two commands do all set-up on a fresh machine: `make test` and `make demo`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: test lint typecheck pytest demo bench docs options-doc system clean \
	i18n-extract i18n-update i18n-compile

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

## Everything CI checks: formatting, lint, strict typing, the whole test suite.
test: $(STAMP) system
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -q -d /tmp/authbroker-site

lint: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

## System packages and services the tests need (Debian; a no-op when present).
system:
	@bash .ci/system

## The demo on embedded defaults: memory store and every provider on its simulator.
## make demo PORT=8080 HOST=0.0.0.0 BASE_URL=http://devbox:8080 (BASE_URL: what browsers open)
PORT ?= 8000
HOST ?= 127.0.0.1
BASE_URL ?=
demo: $(STAMP)
	$(BIN)/authbroker demo --host $(HOST) --port $(PORT) $(if $(BASE_URL),--base-url $(BASE_URL))

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

## The option reference page, generated from the configuration schemas.
options-doc: $(STAMP)
	$(BIN)/python -m authbroker.config_reference > docs/reference/options.md

## Hosted-page translations (Babel): extract the message ids of the templates and the
## Python code into the .pot, merge it into every language's .po, compile the .mo files
## that ship in the wheel. tests/test_i18n.py fails when any of the three is stale.
LOCALE := src/authbroker/web/locale
I18N_KEYWORDS := -k t -k translate:2 -k N_

i18n-extract: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg $(I18N_KEYWORDS) --no-default-keywords \
		--sort-output --no-location --no-wrap \
		--project=authbroker -o $(LOCALE)/authbroker.pot .

i18n-update: i18n-extract
	$(BIN)/pybabel update -D authbroker -i $(LOCALE)/authbroker.pot -d $(LOCALE) \
		--no-fuzzy-matching --no-wrap --ignore-obsolete

i18n-compile: $(STAMP)
	$(BIN)/pybabel compile -D authbroker -d $(LOCALE) --statistics

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) build dist .mypy_cache .pytest_cache .ruff_cache site
