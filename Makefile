# Two commands matter: `make run` (the whole pipeline on a laptop) and `make test`.
# Everything else is bootstrapped from the package registry: uv into .tools/, then
# the locked workspace into .venv/. `make help` lists the targets.

SHELL := /bin/bash
# The interpreter itself, not a pyenv shim: uv compares paths.
PYTHON ?= $(shell for p in python3.11 python3; do command -v $$p >/dev/null && $$p -c 'import sys; print(sys.executable)' && break; done)
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin

export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.DEFAULT_GOAL := help

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml)
	$(UV) sync --all-packages --frozen
	touch $@

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

.PHONY: install
install: $(VENV)/.synced ## create .venv from uv.lock (done by every other target)

.PHONY: run
run: $(VENV)/.synced ## run the whole pipeline locally (embedded PostgreSQL, Tansu, Twilio emulator)
	$(BIN)/notifier-devstack

.PHONY: test-tools
test-tools: $(VENV)/.synced ## install the tools some tests drive (helm, kubectl; Go, protoc, promtool via apt)
	tools/install-test-tools.sh
	$(PYTHON) tools/install_k8s_tools.py

.PHONY: test
test: $(VENV)/.synced test-tools ## run every test (unit, integration, e2e)
	$(BIN)/pytest

.PHONY: test-unit
test-unit: $(VENV)/.synced ## run the pure unit tests only
	$(BIN)/pytest tests/unit

.PHONY: test-integration
test-integration: $(VENV)/.synced ## run the tests on a real PostgreSQL and broker
	$(BIN)/pytest tests/integration

.PHONY: test-e2e
test-e2e: $(VENV)/.synced ## run the end-to-end tests over the real processes
	$(BIN)/pytest tests/e2e

.PHONY: test-fuzz
test-fuzz: $(VENV)/.synced ## run the fuzz suites (FUZZ_EXAMPLES_SCALE=10 for a longer run)
	$(BIN)/pytest tests/fuzz

.PHONY: chaos
chaos: $(VENV)/.synced ## chaos run: CHAOS_MESSAGES (10000) sent while each process, PostgreSQL and the broker fail in turn
	$(BIN)/python -m tests.chaos.run --messages $(or $(CHAOS_MESSAGES),10000)

.PHONY: lint
lint: $(VENV)/.synced ## ruff format --check, ruff check, mypy, import-linter, helm lint
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy libs/common/src services/*/src tools/*/src
	$(BIN)/lint-imports
	$(PYTHON) tools/install_k8s_tools.py
	$(TOOLS)/bin/helm lint --strict charts/notifier

.PHONY: fmt
fmt: $(VENV)/.synced ## format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: proto
proto: $(VENV)/.synced ## regenerate notifier.common.pb from proto/
	$(BIN)/python tools/protogen.py

.PHONY: migrate
migrate: $(VENV)/.synced ## apply missing migrations to DATABASE_URL
	$(BIN)/notifier-migrate

.PHONY: bench
bench: $(VENV)/.synced ## run the benchmarks under bench/ and print their figures
	$(BIN)/python bench/run.py

.PHONY: soak
soak: $(VENV)/.synced ## soak: the whole pipeline at half the P5 rate for SOAK_MINUTES (10), RSS every 30 s
	$(BIN)/python bench/soak.py --minutes $(or $(SOAK_MINUTES),10)

.PHONY: clean
clean: ## remove the virtual environments and dev-stack data
	rm -rf $(VENV) $(TOOLS) .devstack
