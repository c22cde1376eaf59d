# Build, lint and test the ledger. `make test` is what CI runs (through .ci/run) on a fresh clone.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp
SLITHER_VENV := .venv-slither
SLITHER_STAMP := $(SLITHER_VENV)/.installed-stamp
# Test processes (pytest-xdist): one per core.
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: setup compile lint slither browser broker test gas clean run demo soak bench bench-quick bench-portal bench-webhooks bench-cpu bench-batch bench-workers

## setup: create .venv and install the project (when pyproject.toml changed), npm ci (when
## package-lock.json changed), .venv-slither (when scripts/slither-requirements.txt changed), then compile
## the contracts (cached when unchanged).
setup: $(PY_STAMP) $(NODE_STAMP) $(SLITHER_STAMP)
	$(BIN)/python -m ledger.compiler

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(PY_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

$(NODE_STAMP): package-lock.json
	npm ci
	touch $@

# slither in a virtual environment of its own: it needs web3 < 8, the ledger web3 8.
$(SLITHER_STAMP): scripts/slither-requirements.txt
	rm -rf $(SLITHER_VENV)
	$(PYTHON) -m venv $(SLITHER_VENV)
	$(SLITHER_VENV)/bin/python -m pip install -r scripts/slither-requirements.txt
	touch $@

## compile: compile contracts/ into build/contracts/<hash>/ (a no-op when nothing changed).
compile: $(PY_STAMP) $(NODE_STAMP)
	$(BIN)/python -m ledger.compiler

## lint: ruff and mypy over the Python code, solhint and slither over the contracts (slither fails on a
## finding of medium impact or higher not triaged in contracts/SLITHER.md).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy ledger api scf bench
	npm run lint:sol
	$(BIN)/python scripts/slither.py

## slither: only the static analysis -> build/slither/report.json.
slither: setup
	$(BIN)/python scripts/slither.py

## browser: Debian's chromium and a Chinese font for the portal's browser tests (apt-get, once).
browser:
	bash scripts/install-browser.sh

## broker: Mosquitto at 127.0.0.1:1883 for the sensors' readings, unless a broker answers there (apt-get, once).
broker:
	bash scripts/start-mosquitto.sh

## test: lint, then the whole test suite (the portal's tests in Debian's chromium, the sensors' through Mosquitto).
test: lint browser broker
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=30

## soak: the long reliability runs (marked `soak`), with SCF_SOAK=1 raising the example counts.
soak: setup
	SCF_SOAK=1 $(BIN)/pytest -q -m soak

## run: install what serving needs (.venv, node_modules: anvil, solc-js, Swagger UI), start the local chain
## (state in data/chain) unless it already runs, compile and deploy if needed, serve the API on :8000. Ctrl-C
## stops the service, and the chain too when this run started it (`scf chain stop` stops one left running).
run: $(PY_STAMP) $(NODE_STAMP) broker
	$(BIN)/scf serve

## demo: the whole story against the running service (`make run` in another terminal), as the operator whose
## API key is in SCF_API_KEY (printed once at the first start); the service's address from SCF_API_HOST/PORT.
demo: $(PY_STAMP)
	@if [ -z "$${SCF_API_KEY:-}" ]; then \
		echo "make demo: set SCF_API_KEY to the operator's API key (printed once at the service's first start)" >&2; \
		exit 2; \
	fi
	$(BIN)/scf demo

## bench: the benchmarks on an anvil of their own (full mode, up to about an hour) -> bench/results/<date>.json,
## docs/benchmarks.md and docs/benchmarks.png. bench-quick: the same in under two minutes, small sizes. Both
## time the portal's list pages in Debian's chromium (installed by `browser`; skipped, and said so, without it).
bench: setup browser
	$(BIN)/scf bench

bench-quick: setup browser
	$(BIN)/scf bench --quick

## bench-portal: only the scaling stage with the portal's first page, at 10,000 pieces held (a few minutes)
## -> bench/results/<date>-portal-full.json and its table in docs/benchmarks.md.
bench-portal: setup browser
	$(BIN)/scf bench-portal

## bench-webhooks: webhook delivery latency alone and beside a 5-s and a failing receiver (about 3 minutes)
## -> bench/results/<date>-webhooks-full.json and its table in docs/benchmarks.md.
bench-webhooks: setup
	$(BIN)/scf bench-webhooks

## bench-cpu: the service's CPU time per request (from /proc, a few minutes) -> bench/results/<date>-cpu-full.json
## and its table in docs/benchmarks.md. BASELINE=<checkout> measures that checkout's service beside this one's.
bench-cpu: setup
	$(BIN)/scf bench-cpu $(if $(BASELINE),--baseline $(BASELINE))

## bench-batch: confirmed deposits per second through POST /batch against single requests, in one run (about
## two minutes) -> bench/results/<date>-batch-full.json and its table in docs/benchmarks.md.
bench-batch: setup
	$(BIN)/scf bench-batch

## bench-workers: the REST service with 1 and 2 processes (SCF_WORKERS), its indexer a thread or a process of its
## own (SCF_INDEXER), on the local PostgreSQL, side by side in one run (about ten minutes) -> bench/results/<date>-workers-full.json and its table in docs/benchmarks.md.
bench-workers: setup
	$(BIN)/scf bench-workers

## gas: gas used by each contract operation -> build/gas-report.md and build/gas-report.json.
gas: setup
	$(BIN)/python scripts/gas_report.py

## clean: remove build artifacts and install stamps (the next setup reinstalls).
clean:
	rm -rf build/ $(PY_STAMP) $(NODE_STAMP) $(SLITHER_STAMP)
