# Two commands on a fresh machine with only python3: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export PYTHONDONTWRITEBYTECODE := 1

COMPAT_VENV ?= .venv-compat
COMPAT_PY := $(COMPAT_VENV)/bin/python
COMPAT_STAMP := $(COMPAT_VENV)/.installed-stamp

.PHONY: install demo test test-compat test-deploy deploy-services test-ui lint php sandbox bench bench-quick chaos clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv
	# uv resolves and installs Airflow's ~140 packages in seconds; constraints.txt pins what CI tested.
	$(VENV)/bin/uv pip install -q --python $(PY) -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The demo needs the package and Airflow only: its own stamp installs no test extra
# (`make test` still installs [test] through $(STAMP)).
DEMO_STAMP := $(VENV)/.demo-stamp
$(DEMO_STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv
	$(VENV)/bin/uv pip install -q --python $(PY) -c constraints.txt -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(PY) scripts/demo.py

# The suite mostly waits (servers, subprocesses, sleeps of the fault scenarios): three workers, one test
# file each at a time (module fixtures stay in one process). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 3
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test: $(STAMP) lint php
	$(PY) -m pytest -q $(XDIST)

# PHP (Debian packages) for the official Mobizon PHP client's contract test; see the script.
php:
	sh scripts/ensure_php.sh

# The lowest supported Airflow (3.0), with the library versions it was released against
# (newer FastAPI/starlette/universal-pathlib break Airflow 3.0 itself): constraints-compat.txt.
$(COMPAT_STAMP): pyproject.toml constraints-compat.txt
	test -x $(COMPAT_PY) || python3 -m venv $(COMPAT_VENV)
	$(COMPAT_PY) -m pip install -q --disable-pip-version-check uv
	$(COMPAT_VENV)/bin/uv pip install -q --python $(COMPAT_PY) -c constraints-compat.txt -e ".[test,legacy-ui]"
	touch $(COMPAT_STAMP)

test-compat: $(COMPAT_STAMP)
	$(COMPAT_PY) -m pytest -q $(XDIST)

# A real deployment (docs/deployment.md): api-server, scheduler, dag-processor, triggerer and two
# Celery workers as processes, on PostgreSQL and Redis from Debian's packages (installed when missing).
DEPLOY_STAMP := $(VENV)/.deploy-stamp
$(DEPLOY_STAMP): $(STAMP) pyproject.toml constraints.txt
	$(VENV)/bin/uv pip install -q --python $(PY) -c constraints.txt -e ".[test,deploy]"
	touch $(DEPLOY_STAMP)

deploy-services:
	scripts/install-deploy-services.sh

test-deploy: $(DEPLOY_STAMP) deploy-services
	$(PY) -m pytest -q -p no:cacheprovider -m deploy tests/deploy

# The connection Test button clicked in the real Airflow UI with headless Chromium, on the
# newest (.venv) and the lowest supported Airflow (.venv-compat, 3.0). Debian's chromium +
# chromium-driver are installed when missing (scripts/ensure_chromium.sh); the test speaks
# WebDriver over HTTP, so no Python package is added. Screenshots: .airflow-test/ui{,-compat}/.
test-ui: $(STAMP) $(COMPAT_STAMP)
	sh scripts/ensure_chromium.sh
	SMS_UI_TESTS=1 SMS_UI_SCREENSHOTS=$(CURDIR)/.airflow-test/ui $(PY) -m pytest -q -p no:cacheprovider tests/ui
	SMS_UI_TESTS=1 SMS_UI_SCREENSHOTS=$(CURDIR)/.airflow-test/ui-compat $(COMPAT_PY) -m pytest -q -p no:cacheprovider tests/ui

lint: $(STAMP)
	$(VENV)/bin/ruff check airflow_sms_provider tests example_dags scripts bench
	# Type hints checked against the Airflow this venv holds (settings in pyproject.toml [tool.mypy]).
	$(VENV)/bin/mypy

sandbox: $(STAMP)
	$(VENV)/bin/airflow-sms-sandbox --port 8765

# Benchmarks, not tests: one table of throughput, memory and import-time figures (docs/benchmarks.md).
# The full run takes about 15 minutes on 2 cores; bench-quick (small counts) under 2 minutes.
# BENCH_ARGS="--json results.json" keeps every raw number; "--only 1,4" runs some of them.
bench: $(STAMP)
	$(PY) -m bench.run $(BENCH_ARGS)

bench-quick: $(STAMP)
	$(PY) -m bench.run --quick $(BENCH_ARGS)

# The chaos suite at scale (docs/reliability.md "Chaos suite"): CHAOS_SCHEDULES (default 500) randomised
# schedules with random seeds, a survival table, the seeds that failed; about 10 minutes on 2 cores.
# `make test` runs 40 fixed seeds of the same harness. CHAOS_SEED=<n>[,<m>] reruns chosen schedules.
chaos: $(STAMP)
	$(PY) -m tests.chaos.run $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) $(COMPAT_VENV) .airflow-demo .airflow-test .pytest_cache .ruff_cache
