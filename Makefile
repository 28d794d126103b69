# MLTrack: the single source of truth for commands. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := -c constraints.txt
PACKAGES := ./mltrack-core ./mltrack-sklearn ./mltrack-torch ./mltrack-langchain ./mltrack-sagemaker ./mltrack-modal ./mltrack-ui ./mltrack-system .
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install system-deps venv ui-build dev test test-fast test-isolated test-ui lint format type-check dist bench quickstart train deploy test-inference demo status logs kill-all demo-clean clean

help: ## List the commands
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

install: system-deps venv ## Set up everything: Debian packages, .venv, editable installs, dev tools
	$(PIP) install --upgrade pip
	$(PIP) install $(CONSTRAINTS) -r requirements-dev.txt
	$(PIP) install $(CONSTRAINTS) $(foreach p,$(PACKAGES),-e $(p))
	@# the test plugins (two broken on purpose) are installed by tests/conftest.py into tests/.fixture-site, not here
	@$(PIP) uninstall -y -q mltrack-fixture-plugin mltrack-fixture-broken 2>/dev/null || true
	@$(MAKE) --no-print-directory ui-build
	@$(VENV)/bin/mltrack --version

system-deps: ## Install the Debian packages the tests and benchmarks need (PostgreSQL, Chromium, wrk)
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then echo "postgresql: present"; else \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; fi
	@if [ -x /usr/bin/chromium ]; then echo "chromium: present"; else \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; fi
	@if command -v wrk >/dev/null 2>&1; then echo "wrk: present"; else \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk; fi

venv:
	@test -x $(PY) || python3 -m venv $(VENV)

# The UI's front end (Next.js, static export) is built into mltrack-ui's package data.
FRONTEND := mltrack-ui/frontend

$(FRONTEND)/node_modules/.package-lock.json: $(FRONTEND)/package-lock.json
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null || \
	  { echo "Node.js 20 or newer (with npm) is needed to build the UI's front end"; exit 1; }
	cd $(FRONTEND) && npm ci --no-audit --no-fund
	@touch $@

ui-build: $(FRONTEND)/node_modules/.package-lock.json ## Build the UI's front end into mltrack-ui's package data
	cd $(FRONTEND) && npm run build

dev: ## Start the UI (mltrack ui) on the demo store, training the demo models first if it is empty
	@test -f $(DEMO_DIR)/mlflow.db || $(MAKE) --no-print-directory train
	$(DEMO_MLTRACK) ui

test: ## Run the whole test suite (sqlite and a real mlflow server on PostgreSQL)
	$(PY) -m pytest $(PYTEST_ARGS)

PLUGINS := $(patsubst mltrack-%,%,$(filter-out mltrack-core,$(patsubst ./%,%,$(filter ./mltrack-%,$(PACKAGES)))))

test-isolated: ## Run each plugin's tests in a venv holding only core + that plugin (catches undeclared imports)
	@set -e; for id in $(PLUGINS); do \
	  env=.venv-isolated-$$id; \
	  echo "== mltrack-$$id alone in $$env"; \
	  test -x $$env/bin/python || python3 -m venv $$env; \
	  $$env/bin/python -m pip install -q $(CONSTRAINTS) pytest pytest-timeout hatchling editables; \
	  $$env/bin/python -m pip install -q $(CONSTRAINTS) -e ./mltrack-core -e "./mltrack-$$id[test]"; \
	  $$env/bin/python -m pytest -p no:cacheprovider tests/plugins/$$id $(PYTEST_ARGS); \
	done

test-ui: ## Run the UI's tests (API, auth, and pages in headless Chromium; screenshots in test-artifacts/ui)
	$(PY) -m pytest tests/plugins/ui $(PYTEST_ARGS)

test-fast: ## Run the tests that need no mlflow server
	$(PY) -m pytest -m "not server and not slow" $(PYTEST_ARGS)

lint: ## ruff check and format check; eslint on the UI's front end
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	cd $(FRONTEND) && npx --no-install eslint .

format: ## Format and fix lint in place
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

type-check: ## mypy (strict) on every package; tsc (strict) on the UI's front end
	$(VENV)/bin/mypy
	cd $(FRONTEND) && npx --no-install tsc --noEmit

dist: ## Build wheels of every package into dist/
	rm -rf dist && mkdir -p dist
	$(foreach p,$(PACKAGES),$(PY) -m build --wheel --no-isolation --outdir dist $(p) &&) true

bench: ## Run the benchmarks (prints ratios against MLflow measured in the same run)
	$(PY) benchmarks/import_time.py
	$(PY) benchmarks/log_overhead.py
	$(PY) benchmarks/crash_loss.py
	$(PY) benchmarks/torch_autolog.py
	$(PY) benchmarks/ui_api.py

quickstart: ## Track a small training job (examples/quickstart.py) on ./mlflow.db
	$(PY) examples/quickstart.py
	$(VENV)/bin/mltrack runs list --experiment quickstart --limit 5

# The main job runs on its own embedded sqlite store in $(DEMO_DIR), so demo-clean never
# touches a store of yours; the repository's deliberately broken test plugins are kept quiet.
DEMO_DIR ?= .demo
DEMO_ENV := MLTRACK_TRACKING_URI=sqlite:///$(abspath $(DEMO_DIR))/mlflow.db MLTRACK_DATA_DIR=$(abspath $(DEMO_DIR))/state \
	MLTRACK_DISABLE_PLUGINS=broken-import,misspelled-hook MLFLOW_LOGGING_LEVEL=ERROR COLUMNS=$${COLUMNS:-120}
DEMO_MLTRACK := $(DEMO_ENV) $(VENV)/bin/mltrack

train: ## Train and register the demo models (scikit-learn, PyTorch, LangChain) on the demo store
	@mkdir -p $(DEMO_DIR)
	@# from inside the demo folder: the store's artifact root (./mlruns) is made where it runs
	cd $(DEMO_DIR) && $(DEMO_ENV) $(abspath $(PY)) $(CURDIR)/examples/demo/train.py

deploy: ## Deploy the demo scikit-learn model (@champion) with the local provider
	$(DEMO_MLTRACK) deploy demo-sklearn --version champion

test-inference: ## Send real requests to the deployed demo model and print the predictions
	$(DEMO_ENV) $(PY) examples/demo/inference.py

demo: ## The main job from a clean store: train, register, deploy locally, send requests
	@$(MAKE) --no-print-directory demo-clean
	@$(MAKE) --no-print-directory train deploy test-inference
	@echo; echo "Created:"; $(DEMO_MLTRACK) models list; $(DEMO_MLTRACK) deployments list --cached
	@echo; echo "Next: make status | make logs | make kill-all | make demo-clean"
	@echo "Open the UI on this store: $(DEMO_MLTRACK) ui"

status: ## Show the demo store's deployments with their live status
	$(DEMO_MLTRACK) deployments list

logs: ## Print the demo server's latest log lines
	$(DEMO_MLTRACK) deployments logs local/demo-sklearn --tail 50

kill-all: ## Stop every local deployment of the demo store
	@if [ -f $(DEMO_DIR)/mlflow.db ]; then $(DEMO_MLTRACK) deployments delete --all --provider local; \
	else echo "No demo store: nothing runs."; fi

demo-clean: kill-all ## Stop the demo's servers and delete the demo store
	rm -rf $(DEMO_DIR)

clean: ## Remove build output, caches and local stores
	rm -rf dist build .pytest_cache .venv-isolated-* .mypy_cache .ruff_cache mlflow.db mlruns mlartifacts
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
