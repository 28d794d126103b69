# MLTrack: the single source of truth for commands. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := -c constraints.txt
PACKAGES := ./mltrack-core ./mltrack-sklearn ./mltrack-torch ./mltrack-langchain ./mltrack-sagemaker ./mltrack-modal ./mltrack-ui ./mltrack-system .
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=
# The suite mostly waits (servers, subprocess start-ups, flushes): two pytest-xdist workers, a file
# each at a time, each with its own PostgreSQL and mlflow server, cut make test by a third on 2 cores.
# PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(PYTEST_WORKERS)),-p no:xdist,-n $(PYTEST_WORKERS) --dist loadfile)

.DEFAULT_GOAL := help
.PHONY: help install setup system-deps venv ui-build dev dev-ui-prod test test-python test-fast test-isolated test-ui lint docs format type-check dist bench quickstart train deploy test-inference demo demo-linkedin status logs kill-all demo-clean mlflow-clean clean

help: ## List the commands
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} \
	  {name[NR] = $$1; text[NR] = $$2; if (length($$1) > width) width = length($$1)} \
	  END {for (i = 1; i <= NR; i++) printf "  make %-" width "s  %s\n", name[i], text[i]}'

install: system-deps venv ## Set up everything: Debian packages, .venv, editable installs, dev tools
	$(PIP) install --upgrade pip
	$(PIP) install $(CONSTRAINTS) -r requirements-dev.txt
	$(PIP) install $(CONSTRAINTS) $(foreach p,$(PACKAGES),-e $(p))
	@# the test plugins (two broken on purpose) are installed by tests/conftest.py into tests/.fixture-site, not here
	@$(PIP) uninstall -y -q mltrack-fixture-plugin mltrack-fixture-broken 2>/dev/null || true
	@$(MAKE) --no-print-directory ui-build
	@$(VENV)/bin/mltrack --version

system-deps: ## Install the Debian packages the tests and benchmarks need (PostgreSQL, MariaDB, Chromium, wrk, Docker)
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then echo "postgresql: present"; else \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; fi
	@# MySQL stores: the UI and CLI tests start a throwaway server (mltrack.testing.servers.MariaDBServer)
	@if PATH="$$PATH:/usr/sbin" command -v mariadbd >/dev/null 2>&1 && command -v mariadb-install-db >/dev/null 2>&1; \
	  then echo "mariadb-server: present"; else \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq mariadb-server; fi
	@if [ -x /usr/bin/chromium ]; then echo "chromium: present"; else \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; fi
	@if command -v wrk >/dev/null 2>&1; then echo "wrk: present"; else \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk; fi
	@# the compose stack's test: a Docker daemon, Compose, and debootstrap for a registry-free base image
	@if command -v dockerd >/dev/null 2>&1 && command -v docker-compose >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1; \
	  then echo "docker.io, docker-compose, debootstrap: present"; else \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq docker.io docker-compose debootstrap; fi

setup: install ## make install plus git hooks (pre-commit: ruff and eslint before each commit)
	$(VENV)/bin/pre-commit install

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

test: ## Run the whole test suite (sqlite and a real mlflow server on PostgreSQL; PYTEST_WORKERS=2 processes)
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

PLUGINS := $(patsubst mltrack-%,%,$(filter-out mltrack-core,$(patsubst ./%,%,$(filter ./mltrack-%,$(PACKAGES)))))

test-isolated: ## Run each plugin's tests (browser tests aside) in a venv holding only core + that plugin (catches undeclared imports)
	@# the MySQL cases (marker mysql) are left out too: they run the same UI code as PostgreSQL's, and starting MariaDB costs 15-25 s
	@set -e; for id in $(PLUGINS); do \
	  env=.venv-isolated-$$id; \
	  echo "== mltrack-$$id alone in $$env"; \
	  test -x $$env/bin/python || python3 -m venv $$env; \
	  $$env/bin/python -m pip install -q $(CONSTRAINTS) pytest pytest-timeout pytest-xdist hatchling editables; \
	  $$env/bin/python -m pip install -q $(CONSTRAINTS) -e ./mltrack-core -e "./mltrack-$$id[test]"; \
	  $$env/bin/python -m pytest -p no:cacheprovider $(XDIST) -m "not browser and not mysql" tests/plugins/$$id $(PYTEST_ARGS); \
	done

test-python: ## Run the Python tests only (pytest, without the browser tests of the front end)
	$(PY) -m pytest --ignore=tests/plugins/ui/test_ui_browser.py $(PYTEST_ARGS)

test-ui: ## Run the UI's tests (API, auth, and pages in headless Chromium; screenshots in test-artifacts/ui)
	$(PY) -m pytest tests/plugins/ui $(PYTEST_ARGS)

test-fast: ## Run the tests that need no mlflow server
	$(PY) -m pytest -m "not server and not slow" $(PYTEST_ARGS)

lint: ## ruff check and format check; import contracts (.importlinter); eslint on the UI's front end; cfn-lint (AWS template)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	@$(MAKE) --no-print-directory docs
	cd $(FRONTEND) && npx --no-install eslint .
	$(VENV)/bin/cfn-lint infrastructure/cloudformation/*.yaml

docs: ## Build the documentation site into site/ (MkDocs + API reference from docstrings; warnings are errors)
	$(VENV)/bin/mkdocs build --strict

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
DEMO_ABS = $(abspath $(DEMO_DIR))
DEMO_ENV = MLTRACK_TRACKING_URI=sqlite:///$(DEMO_ABS)/mlflow.db MLTRACK_DATA_DIR=$(DEMO_ABS)/state \
	MLTRACK_DISABLE_PLUGINS=broken-import,misspelled-hook MLFLOW_LOGGING_LEVEL=ERROR COLUMNS=$${COLUMNS:-120}
DEMO_MLTRACK = $(DEMO_ENV) $(VENV)/bin/mltrack
# `make dev`'s services: an MLflow tracking server and the UI, on 127.0.0.1
MLFLOW_PORT ?= 5001
UI_PORT ?= 5050
LINES ?= 20
# The spec's front-end settings, from the environment or mltrack-ui/frontend/.env.local (the
# environment wins): the UI reads NEXT_PUBLIC_MLFLOW_TRACKING_URI as its store (default: the
# tracking server above) and NEXT_PUBLIC_DEBUG as MLTRACK_DEBUG.
ENV_LOCAL := $(FRONTEND)/.env.local
NEXT_PUBLIC_MLFLOW_TRACKING_URI ?= $(shell sed -n 's/^NEXT_PUBLIC_MLFLOW_TRACKING_URI=//p' $(ENV_LOCAL) 2>/dev/null | tail -n 1)
NEXT_PUBLIC_DEBUG ?= $(shell sed -n 's/^NEXT_PUBLIC_DEBUG=//p' $(ENV_LOCAL) 2>/dev/null | tail -n 1)
UI_TRACKING_URI = $(or $(NEXT_PUBLIC_MLFLOW_TRACKING_URI),http://127.0.0.1:$(MLFLOW_PORT))
UI_DEBUG = $(if $(NEXT_PUBLIC_DEBUG),MLTRACK_DEBUG=$(NEXT_PUBLIC_DEBUG))

train: ## Train and register the demo models (scikit-learn, PyTorch, LangChain) on the demo store
	@mkdir -p $(DEMO_DIR)
	@echo "==> training the demo models"
	@# from inside the demo folder: the store's artifact root (./mlruns) is made where it runs
	@cd $(DEMO_DIR) && $(DEMO_ENV) $(abspath $(PY)) $(CURDIR)/examples/demo/train.py

deploy: ## Deploy the demo scikit-learn model (@champion) with the local provider
	@echo "==> deploying demo-sklearn@champion on this machine"
	@$(DEMO_MLTRACK) deploy demo-sklearn --version champion

test-inference: ## Send real requests to the deployed demo model and print the predictions
	@echo "==> sending requests to local/demo-sklearn"
	@$(DEMO_ENV) $(PY) examples/demo/inference.py

demo: ## The main job from a clean store: train, register, deploy locally, send requests
	@$(MAKE) --no-print-directory demo-clean >/dev/null
	@$(MAKE) --no-print-directory train deploy test-inference
	@echo "==> created"
	@$(DEMO_MLTRACK) models list
	@$(DEMO_MLTRACK) deployments list --cached
	@echo; echo "open the UI: make dev    (then: make logs | make demo-linkedin | make kill-all)"

demo-linkedin: ## A report of the demo to share: .demo/report/report.html (self-contained) and charts/*.png
	@test -f $(DEMO_DIR)/mlflow.db || $(MAKE) --no-print-directory train
	@echo "==> writing the demo report"
	@$(DEMO_ENV) MPLBACKEND=Agg $(PY) examples/demo/report.py --out $(DEMO_DIR)/report

# $(call start_service,NAME,COMMAND): COMMAND in a session of its own (so kill-all stops the whole
# process group), its output in $(DEMO_DIR)/NAME.log, its pid in $(DEMO_DIR)/NAME.pid; not twice.
define start_service
	@if [ -f $(DEMO_DIR)/$(1).pid ] && kill -0 $$(cat $(DEMO_DIR)/$(1).pid) 2>/dev/null; then \
	  echo "$(1) already runs (pid $$(cat $(DEMO_DIR)/$(1).pid))"; \
	else \
	  setsid $(2) >>$(DEMO_ABS)/$(1).log 2>&1 </dev/null & echo $$! >$(DEMO_DIR)/$(1).pid; \
	  echo "==> started $(1) (pid $$!, log $(DEMO_DIR)/$(1).log)"; \
	fi
endef

# $(call wait_http,NAME,URL): wait up to 90 s for URL to answer, else show the log and fail
define wait_http
	@for i in $$(seq 1 450); do \
	  if $(PY) -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' $(2) 2>/dev/null; then exit 0; fi; \
	  if ! kill -0 $$(cat $(DEMO_DIR)/$(1).pid) 2>/dev/null; then break; fi; sleep 0.2; \
	done; echo "$(1) did not start; the end of $(DEMO_DIR)/$(1).log:"; tail -n 15 $(DEMO_DIR)/$(1).log; exit 1
endef

dev: ## Start an MLflow tracking server (:5001) and the UI (:5050) on the demo store, in the background
	@test -f $(DEMO_DIR)/mlflow.db || $(MAKE) --no-print-directory train
	$(call start_service,mlflow,$(VENV)/bin/mlflow server --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1 \
	  --backend-store-uri sqlite:///$(DEMO_ABS)/mlflow.db --default-artifact-root $(DEMO_ABS)/mlruns)
	$(call wait_http,mlflow,http://127.0.0.1:$(MLFLOW_PORT)/health)
	$(call start_service,ui,env $(DEMO_ENV) $(UI_DEBUG) $(VENV)/bin/mltrack ui --port $(UI_PORT) --tracking-uri $(UI_TRACKING_URI))
	$(call wait_http,ui,http://127.0.0.1:$(UI_PORT)/api/summary)
	@echo "MLflow tracking server: http://127.0.0.1:$(MLFLOW_PORT)/"
	@echo "MLTrack UI:             http://127.0.0.1:$(UI_PORT)/"
	@echo "logs: make logs | stop: make kill-all"

dev-ui-prod: ## The UI in production mode: a fresh npm run build (minified export) served by mltrack ui, debug off
	@echo "==> building the front end for production (npm run build: minified static export)"
	@cd $(FRONTEND) && NODE_ENV=production npm run build
	@test -f $(DEMO_DIR)/mlflow.db || $(MAKE) --no-print-directory train
	@echo "==> serving that build with mltrack ui on the demo store (Ctrl+C stops it)"
	@$(DEMO_ENV) MLTRACK_DEBUG=false $(VENV)/bin/mltrack ui --port $(UI_PORT)

status: ## Show the demo store's deployments with their live status
	@$(DEMO_MLTRACK) deployments list

logs: ## Show the demo's logs: the model server's requests, mlflow.log, ui.log (FOLLOW=1 follows)
	@if [ ! -d $(DEMO_DIR) ]; then echo "No demo in $(DEMO_DIR): run make demo first."; exit 0; fi; \
	files=$$(for f in $(DEMO_DIR)/state/deployments/local/*.log $(DEMO_DIR)/mlflow.log $(DEMO_DIR)/ui.log; do \
	  [ -f "$$f" ] && echo "$$f"; done); \
	if [ -n "$(FOLLOW)" ]; then exec tail -n $(LINES) -F $$files; fi; \
	for f in $$files; do echo "==> $$f"; tail -n $(LINES) $$f; done; \
	[ -n "$$files" ] || echo "No logs yet: make demo deploys the model, make dev starts the servers."

kill-all: ## Stop make dev's servers and every local deployment of the demo store
	@for name in ui mlflow; do \
	  pidfile=$(DEMO_DIR)/$$name.pid; [ -f $$pidfile ] || continue; pid=$$(cat $$pidfile); \
	  if kill -TERM -- -$$pid 2>/dev/null; then \
	    for i in $$(seq 1 100); do kill -0 -- -$$pid 2>/dev/null || break; sleep 0.1; done; \
	    kill -KILL -- -$$pid 2>/dev/null && echo "$$name (pid $$pid): killed" || echo "$$name (pid $$pid): stopped"; \
	  fi; rm -f $$pidfile; \
	done
	@if [ -f $(DEMO_DIR)/mlflow.db ]; then $(DEMO_MLTRACK) deployments delete --all --provider local; \
	else echo "No demo store: no deployments."; fi

demo-clean: kill-all ## Stop the demo's servers and delete the demo store
	rm -rf $(DEMO_DIR)

mlflow-clean: ## Delete the demo tracking data, asking first (FORCE=1: no question); stops its servers first
	@if [ ! -f $(DEMO_DIR)/mlflow.db ]; then echo "No demo store in $(DEMO_DIR): nothing to delete."; exit 0; fi; \
	counts=$$($(PY) -c 'import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); \
	  n = lambda q: db.execute(q).fetchone()[0]; \
	  print(n("select count(*) from runs"), "runs,", n("select count(*) from registered_models"), "models")' \
	  $(DEMO_DIR)/mlflow.db); \
	if [ "$(FORCE)" != 1 ]; then \
	  read -r -p "Delete $(DEMO_DIR) ($$counts), stopping its servers first? [y/N] " answer || answer=; \
	  case "$$answer" in [yY]|[yY][eE][sS]) ;; *) echo "Kept $(DEMO_DIR)."; exit 0;; esac; \
	fi; \
	$(MAKE) --no-print-directory kill-all && rm -rf $(DEMO_DIR) && echo "Deleted $(DEMO_DIR) ($$counts)."

# The team stack in containers (compose.yaml; settings in .env, made from .env.example on first use).
# Compose v2 (`docker compose`) when the docker CLI has it, else Debian's docker-compose 1.29.
DOCKER_COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE_PROJECT ?= mltrack
# extra files, e.g. COMPOSE_FILES="-f compose.test.yaml" (the test's override)
COMPOSE_FILES ?=
# ENV_FILE: the stack's settings (made from .env.example with fresh secrets if missing)
ENV_FILE ?= .env
COMPOSE = $(DOCKER_COMPOSE) --env-file $(ENV_FILE) -p $(COMPOSE_PROJECT) -f compose.yaml $(COMPOSE_FILES)
.PHONY: docker-wheels docker-build docker-up docker-down docker-logs docker-status

$(ENV_FILE):
	@python3 docker/make_env.py .env.example $@

# a fresh clone has no .venv yet: then the system's python3 (with pip) builds the wheels; the UI's
# wheel builds its front end when it is not built yet (mltrack-ui/hatch_build.py: needs Node.js)
DOCKER_WHEEL_PY = $(if $(wildcard $(PY)),$(PY),python3)

docker-wheels: ## MLTrack's own wheels (the UI's with its built front end) into docker/wheels for the images
	@rm -rf docker/wheels && mkdir -p docker/wheels
	$(DOCKER_WHEEL_PY) -m pip wheel --no-deps -q -w docker/wheels ./mltrack-core ./mltrack-ui

docker-build: docker-wheels $(ENV_FILE) ## Build the images: tracking server, UI (on the tracking image's layers)
	@# in this order: the UI image starts FROM the tracking image
	$(COMPOSE) build mlflow
	$(COMPOSE) build ui
	@docker images 'mltrack-*'

docker-up: $(ENV_FILE) ## Start the stack in the background (PostgreSQL, MinIO, MLflow server, UI); builds what is missing
	@docker image inspect mltrack-ui:$${MLTRACK_VERSION:-0.1.0} >/dev/null 2>&1 || $(MAKE) --no-print-directory docker-build
	$(COMPOSE) up -d $(SERVICES)
	@echo "MLflow tracking server: http://127.0.0.1:$$(sed -n 's/^MLFLOW_PORT=//p' $(ENV_FILE) | tail -n 1 | grep . || echo 5000)/"
	@echo "MLTrack UI:             http://127.0.0.1:$$(sed -n 's/^UI_PORT=//p' $(ENV_FILE) | tail -n 1 | grep . || echo 5050)/  (token: MLTRACK_UI_TOKEN in $(ENV_FILE))"
	@echo "status: make docker-status | logs: make docker-logs | stop: make docker-down (data stays in volumes)"

docker-down: ## Stop and remove the stack's containers; the named volumes (runs, artifacts) stay
	$(COMPOSE) down

docker-logs: ## The stack's logs (FOLLOW=1 follows; LINES=n per service)
	$(COMPOSE) logs --tail=$(LINES) $(if $(FOLLOW),--follow)

docker-status: ## The stack's containers and their health
	$(COMPOSE) ps

clean: ## Remove build output, caches and local stores
	rm -rf dist build .pytest_cache .venv-isolated-* .mypy_cache .ruff_cache mlflow.db mlruns mlartifacts
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
