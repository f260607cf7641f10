# Every target depends on the virtual environment and the generated protobuf code, so nobody runs
# `make venv` or `make protos` by hand.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROTOS := $(shell find protos -name '*.proto')
NATIVE := $(shell find native services -path '*native/*.[ch]')
CFLAGS_NATIVE := -O2 -shared -fPIC -std=c11 -Wall -Wextra -Werror -Inative
CC     ?= cc
GEN    := gen/.generated

.DEFAULT_GOAL := help
.PHONY: help venv protos lint lint-protos run test test-unit test-integration test-e2e bench chaos clean chromium

help: ## List the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP) ## Create .venv and install the platform with its dev tools

$(GEN): $(STAMP) $(PROTOS) $(NATIVE)
	@rm -rf gen && mkdir -p gen/native
	$(PY) -m grpc_tools.protoc -I protos --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)
	@find gen/billing -type d -exec touch {}/__init__.py \;
	@# Ingest's event scanner and metering's event decoder; without a C compiler both services still work,
	@# on their slower Python paths.
	$(CC) $(CFLAGS_NATIVE) -o gen/native/libeventscan.so services/ingest/native/event_scan.c \
		|| echo "warning: no C compiler: ingest will use its Python path"
	$(CC) $(CFLAGS_NATIVE) -o gen/native/libeventcolumns.so services/metering/native/event_columns.c \
		|| echo "warning: no C compiler: metering will decode events in Python"
	@touch $@

protos: $(GEN) ## Generate Python code and type stubs from protos/ into gen/ (gitignored), and native code

lint-protos: $(STAMP) ## buf lint the contracts
	cd protos && ../$(VENV)/bin/buf lint

lint: $(GEN) lint-protos ## ruff + buf lint
	$(VENV)/bin/ruff check .

run: $(GEN) ## Start PostgreSQL, NATS, every service and the gateway, with demo data (Ctrl-C stops all)
	$(PY) -m devstack run

chromium: $(STAMP) ## Find Chromium for the dashboard's browser tests (installed through apt when root; else says what to install)
	$(PY) -m devstack.chromium

test: $(GEN) lint-protos chromium ## Run every test (unit, integration, end-to-end) against real PostgreSQL and NATS
	$(PY) -m pytest

test-unit: $(GEN) ## Unit tests only (no I/O)
	$(PY) -m pytest tests/unit

test-integration: $(GEN) chromium ## Integration tests (real PostgreSQL and NATS started on free ports)
	$(PY) -m pytest tests/integration

test-e2e: $(GEN) ## End-to-end tests (the whole mesh as processes)
	$(PY) -m pytest tests/e2e

bench: $(GEN) ## Benchmark ingest, metering, freshness, memory, Razorpay webhooks and the invoice close on fresh stacks (BENCH_ARGS="--help" for options)
	$(PY) -m bench $(BENCH_ARGS)

chaos: $(GEN) ## 1,000,000 events (20% resent) while metering, ingest, NATS and PostgreSQL are killed/restarted: 0 lost, 0 doubled (SOAK=30m: steady load, RSS and errors every minute; CHAOS_ARGS="--help")
	$(PY) -m bench.chaos $(if $(SOAK),--soak $(SOAK)) $(CHAOS_ARGS)

clean: ## Remove generated code and caches (keeps .venv and .run)
	rm -rf gen .pytest_cache .ruff_cache
