# Two commands on a fresh machine with only python3: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install demo test lint sandbox bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv
	# uv resolves and installs Airflow's ~140 packages in seconds; constraints.txt pins what CI tested.
	$(VENV)/bin/uv pip install -q --python $(PY) -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP) lint
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check airflow_sms_provider tests example_dags scripts

sandbox: $(STAMP)
	$(VENV)/bin/airflow-sms-sandbox --port 8765

clean:
	rm -rf $(VENV) .airflow-demo .airflow-test .pytest_cache .ruff_cache
