# Healer: `make demo` heals a real broken pipeline; `make test` runs the suite.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
UV_VERSION := 0.9.5

.PHONY: help install demo test test-fast test-cluster bench bench-fleet java jvm-cache clean

help:
	@echo "make demo   - a pipeline breaks upstream and Healer opens a validated pull request"
	@echo "make test   - the full test suite (real Spark, real git, real Great Expectations)"
	@echo "make bench  - HealBench: broken-pipeline scenarios and the scorer"
	@echo "make bench-fleet - a storm healed by Celery workers, and a fix on a Spark cluster, timed"

$(BIN)/healer: setup.cfg requirements.lock
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e . --config-settings editable_mode=compat
	@touch $(BIN)/healer

install: $(BIN)/healer

java:
	@PYTHONPATH=. $(PY) -m healer.runner.session

# Spark's classes archived once for this Java and Spark: later sessions start in half the time.
jvm-cache: java install
	@$(BIN)/python -m healer.runner.jvm_cache

demo: jvm-cache
	$(BIN)/healer demo

test: jvm-cache
	$(BIN)/python -m pytest -q tests

# No Spark, no JVM: tests/conftest.py marks every test that uses the spark fixture, and makes any
# other JVM start (in-process or in a subprocess) fail, naming the test to mark.
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not spark" tests

# A Spark standalone master and worker on 127.0.0.1 (also part of `make test`).
test-cluster: jvm-cache
	$(BIN)/python -m pytest -q -m cluster tests

bench: jvm-cache
	$(BIN)/python -m benchmarks.healbench

# A storm over Airflow's Celery workers (PostgreSQL, Redis on this machine), and one fix on a Spark cluster.
bench-fleet: jvm-cache
	$(BIN)/python -m benchmarks.fleet

clean:
	rm -rf $(VENV) .healer .pytest_cache
