"""Benchmark 6: import time of each operator module over a bare Airflow import.

A DAG file runs ``import airflow`` / ``from airflow.sdk import DAG`` and then its
operators' modules on every parse. Each measurement is a fresh interpreter that times
the Airflow imports, then the module's import; the figure is the median of the latter.
Bytecode is compiled once into a private cache first (``PYTHONPYCACHEPREFIX``), as an
installed package has it: without bytecode every module would be compiled on import.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from typing import Any

from bench.common import ROOT, child_env

MODULES = (
    "airflow_sms_provider.operators.mobizon",
    "airflow_sms_provider.operators.bsg",
    "airflow_sms_provider.operators.ogangi",
    "airflow_sms_provider.sensors.mobizon",
)
_SNIPPET = """
import json, time
t0 = time.perf_counter()
import airflow
from airflow.sdk import DAG
t1 = time.perf_counter()
{statement}
t2 = time.perf_counter()
print(json.dumps({{"airflow": t1 - t0, "module": t2 - t1}}))
"""


def _once(module: str | None, env: dict[str, str]) -> dict[str, float]:
    statement = f"import {module}" if module else "pass"
    done = subprocess.run([sys.executable, "-c", _SNIPPET.format(statement=statement)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True, timeout=300)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(repeats: int = 7, modules_to_time: tuple[str, ...] = MODULES) -> list[dict[str, Any]]:
    env = child_env(PYTHONPYCACHEPREFIX=tempfile.mkdtemp(prefix="sms-bench-pyc-"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    modules = [None, *modules_to_time]
    for module in modules:
        _once(module, env)  # writes the bytecode
    samples: dict[str | None, list[dict[str, float]]] = {module: [] for module in modules}
    for _ in range(repeats):  # interleaved, so a busy moment does not hit one module only
        for module in modules:
            samples[module].append(_once(module, env))
    rows = []
    for module in modules:
        rows.append({
            "module": module or "(nothing)",
            "import_ms": 1000 * statistics.median(s["module"] for s in samples[module]),
            "airflow_ms": 1000 * statistics.median(s["airflow"] for s in samples[module]),
        })  # fmt: skip
    return rows
