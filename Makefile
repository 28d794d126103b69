# MLTrack: the single source of truth for commands. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := -c constraints.txt
PACKAGES := ./mltrack-core ./mltrack-sklearn ./mltrack-torch ./mltrack-langchain .
FIXTURES := ./tests/fixtures/mltrack-fixture-plugin ./tests/fixtures/mltrack-fixture-broken
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install system-deps venv test test-fast test-isolated lint format type-check dist bench demo clean

help: ## List the commands
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

install: system-deps venv ## Set up everything: Debian packages, .venv, editable installs, dev tools
	$(PIP) install --upgrade pip
	$(PIP) install $(CONSTRAINTS) -r requirements-dev.txt
	$(PIP) install $(CONSTRAINTS) $(foreach p,$(PACKAGES) $(FIXTURES),-e $(p))
	@$(VENV)/bin/mltrack --version

system-deps: ## Install the Debian packages the tests need (PostgreSQL)
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then echo "postgresql: present"; else \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; fi

venv:
	@test -x $(PY) || python3 -m venv $(VENV)

test: ## Run the whole test suite (sqlite and a real mlflow server on PostgreSQL)
	$(PY) -m pytest $(PYTEST_ARGS)

PLUGINS := $(patsubst mltrack-%,%,$(filter-out mltrack-core,$(patsubst ./%,%,$(filter ./mltrack-%,$(PACKAGES)))))

test-isolated: ## Run each plugin's tests in a venv holding only core + that plugin (catches undeclared imports)
	@set -e; for id in $(PLUGINS); do \
	  env=.venv-isolated-$$id; \
	  echo "== mltrack-$$id alone in $$env"; \
	  test -x $$env/bin/python || python3 -m venv $$env; \
	  $$env/bin/python -m pip install -q $(CONSTRAINTS) pytest pytest-timeout hatchling editables; \
	  $$env/bin/python -m pip install -q $(CONSTRAINTS) -e ./mltrack-core -e ./mltrack-$$id; \
	  $$env/bin/python -m pytest -p no:cacheprovider tests/plugins/$$id $(PYTEST_ARGS); \
	done

test-fast: ## Run the tests that need no mlflow server
	$(PY) -m pytest -m "not server and not slow" $(PYTEST_ARGS)

lint: ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: ## Format and fix lint in place
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

type-check: ## mypy (strict) on every package
	$(VENV)/bin/mypy

dist: ## Build wheels of every package into dist/
	rm -rf dist && mkdir -p dist
	$(foreach p,$(PACKAGES),$(PY) -m build --wheel --no-isolation --outdir dist $(p) &&) true

bench: ## Run the benchmarks (prints ratios against MLflow measured in the same run)
	$(PY) benchmarks/import_time.py
	$(PY) benchmarks/log_overhead.py
	$(PY) benchmarks/crash_loss.py
	$(PY) benchmarks/torch_autolog.py

demo: ## Track a small training job end to end on the embedded sqlite store
	$(PY) examples/quickstart.py
	$(VENV)/bin/mltrack runs list --experiment quickstart --limit 5

clean: ## Remove build output, caches and local stores
	rm -rf dist build .pytest_cache .venv-isolated-* .mypy_cache .ruff_cache mlflow.db mlruns mlartifacts
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
