# microdcs developer commands. Every target works on a fresh Debian machine:
# it creates .venv, installs the Python dependencies, and installs Mosquitto, Redis, gcc
# and the Python headers with apt when they are missing.

VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SCHEMAS := $(wildcard schemas/*.schema.json)

.PHONY: install toolchain services asyncapi-deps test run lint format bench generate clean chaos

# The modules setup.py compiles with mypyc: rebuilt whenever one of them changes, so an
# edited module never hides behind its stale compiled twin.
HOT_PATH := $(shell sed -n 's/^    "\(src\/.*\.py\)",$$/\1/p' setup.py)

install: $(VENV)/.installed $(VENV)/.compiled services

$(VENV)/.installed: pyproject.toml setup.py | toolchain
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.compiled

$(VENV)/.compiled: $(VENV)/.installed $(HOT_PATH)
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# A C compiler and the Python headers: setup.py compiles the hot path with them (pure
# Python without), and the benchmarks' load generator is C.
toolchain:
	@if ! command -v cc >/dev/null && ! command -v gcc >/dev/null; then \
	  echo "installing gcc with apt"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq gcc libc6-dev; \
	fi
	@python3 -c "import os, sys, sysconfig; \
	  sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
	|| { echo "installing the Python headers with apt"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-dev; }

services:
	@if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ] \
	   || ! command -v redis-server >/dev/null; then \
	  echo "installing mosquitto and redis-server with apt"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq mosquitto redis-server; \
	fi
	@# ejabberd (mod_mqtt): the second, independent MQTT v5 broker of the test suite. The
	@# tests start their own VM on loopback; the system service is not needed.
	@if ! ls /usr/lib/*/ejabberd-*/ebin/ejabberd.beam >/dev/null 2>&1; then \
	  echo "installing ejabberd with apt"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends ejabberd && \
	  { $(SUDO) systemctl disable --now ejabberd >/dev/null 2>&1 || true; }; \
	fi
	@# Debian's Chromium and its WebDriver: the browser tests of the operator pages.
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  echo "installing chromium and chromium-driver with apt"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; \
	fi

# The official AsyncAPI parser (tests/asyncapi, pinned by its package-lock.json) that the
# tests validate the generated documents with; Node.js and npm come from apt when missing.
ASYNCAPI_DIR := tests/asyncapi
asyncapi-deps: $(ASYNCAPI_DIR)/node_modules/.package-lock.json

$(ASYNCAPI_DIR)/node_modules/.package-lock.json: $(ASYNCAPI_DIR)/package-lock.json
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  echo "installing nodejs and npm with apt"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm; \
	fi
	cd $(ASYNCAPI_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The whole suite, then the integration tests that use Redis again against a 3-primary
# Redis Cluster, then the MQTT-facing integration tests against ejabberd (a second MQTT v5
# broker, one without shared subscriptions): tests/conftest.py and tests/brokers.py.
test: install asyncapi-deps
	$(PY) -m pytest -q
	MICRODCS_TEST_REDIS=cluster $(PY) -m pytest -q tests/integration
	MICRODCS_TEST_BROKER=ejabberd $(PY) -m pytest -q -m second_broker tests/integration

run: install
	$(VENV)/bin/microdcs demo

lint: install
	$(PY) -m ruff check src tests bench setup.py
	$(PY) -m ruff format --check src tests bench setup.py
	$(PY) -m mypy

format: install
	$(PY) -m ruff check --fix src tests bench
	$(PY) -m ruff format src tests bench

bench: install
	@mkdir -p bench/results
	@for script in bench/bench_*.py; do \
	  echo "== $$script"; $(PY) $$script || exit 1; \
	done

generate: install
	@for schema in $(SCHEMAS); do \
	  $(VENV)/bin/microdcs dataclassgen $$schema generated/microdcs_models || exit 1; \
	done
	$(VENV)/bin/microdcs config-docs > docs/configuration.md

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache bench/.build

# The fault suite of tests/chaos in its long form: CHAOS_SECONDS per loaded phase (10x
# overload for that long). `make test` runs the same scenarios for a few seconds each.
# Figures: printed as a table and written to bench/results/chaos.json.
CHAOS_SECONDS ?= 60
chaos: install
	@mkdir -p bench/results
	CHAOS_SECONDS=$(CHAOS_SECONDS) $(PY) -m pytest -q -p no:cacheprovider -m chaos tests/chaos
