# Build, lint and test the ledger. `make test` is what CI runs (through .ci/run) on a fresh clone.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

.PHONY: setup compile lint test gas clean run demo

## setup: create .venv and install the project (when pyproject.toml changed), npm ci (when
## package-lock.json changed), then compile the contracts (cached when unchanged).
setup: $(PY_STAMP) $(NODE_STAMP)
	$(BIN)/python -m ledger.compiler

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(PY_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

$(NODE_STAMP): package-lock.json
	npm ci
	touch $@

## compile: compile contracts/ into build/contracts/<hash>/ (a no-op when nothing changed).
compile: $(PY_STAMP) $(NODE_STAMP)
	$(BIN)/python -m ledger.compiler

## lint: ruff and mypy over the Python code, solhint over the contracts.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy ledger api
	npm run lint:sol

## test: lint, then the whole test suite.
test: lint
	$(BIN)/pytest -q

## run: set up, start the local chain (state in data/chain), deploy if needed, serve the API on :8000.
run: setup
	$(BIN)/scf serve

## gas: gas used by each contract operation -> build/gas-report.md and build/gas-report.json.
gas: setup
	$(BIN)/python scripts/gas_report.py

## clean: remove build artifacts and install stamps (the next setup reinstalls).
clean:
	rm -rf build/ $(PY_STAMP) $(NODE_STAMP)
