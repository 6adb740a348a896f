# stream-monitor developer entry points. `make demo` and `make test` are the README's two commands.
# Both bootstrap what they need on a fresh machine: system packages (Java 17, Maven, and for the
# test suite Chromium, Prometheus and Alertmanager) via apt when missing, and a virtualenv in .venv.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_RUNTIME := openjdk-17-jre-headless maven
APT_TEST := chromium prometheus prometheus-alertmanager
PYTEST_ARGS ?=
# two workers sharing one broker: each module's broker tests in one xdist group, the rest test by test
TEST_WORKERS ?= 2

.PHONY: demo test bench bench-smoke sysdeps-runtime sysdeps-test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

sysdeps-runtime:
	@bash deploy/install-system-deps.sh java:openjdk-17-jre-headless mvn:maven

sysdeps-test: sysdeps-runtime
	@bash deploy/install-system-deps.sh chromium:chromium prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager openssl:openssl

## 1. the live demo: local broker + drifting stream + monitor, alerts printed as they fire
demo: sysdeps-runtime $(STAMP)
	$(VENV)/bin/stream-monitor demo

## 2. the whole test suite (unit, property, integration against a real broker, servers)
test: sysdeps-test $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

## the benchmark, with its peers (Quix Streams comes with the `bench` extra)
bench: sysdeps-runtime $(BENCH_STAMP)
	$(PY) -m bench.run

bench-smoke: sysdeps-runtime $(STAMP)
	$(PY) -m bench.run --smoke

clean:
	rm -rf $(VENV) deploy/kafka/.run
