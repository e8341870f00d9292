"""`make demo` itself: the script runs the example DAG on a fresh SQLite database and reports the campaign."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_make_demo_script_reports_a_done_campaign(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}  # not the suite's database
    env["SMS_DEMO_HOME"] = str(tmp_path / "airflow-demo")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert ": success in " in out and "final status DONE" in out
    # The example's audience: 12 rows, one invalid before upload, one stop-listed by Mobizon.
    assert "recipients accepted: 10" in out
    assert "recipients rejected by Mobizon: 1" in out and "rows rejected before upload: 1" in out
    assert "delivered: 8   undelivered: 1   expired: 1" in out
    assert "(extra link): http://127.0.0.1:" in out and "/_sandbox/mobizon/campaigns/" in out
    # The reject report stays in the demo's own folder (AIRFLOW_HOME), in the run's folder, not in /tmp.
    (report,) = (tmp_path / "airflow-demo" / "sms_examples" / "example_mobizon_campaign").glob("*/rejected.csv")
    assert report.parent.name.startswith("manual__"), report  # the run's id
    assert f"-> file://{report}" in out and report.read_text().startswith("row,value,reason")


def test_make_demo_installs_no_test_extra(tmp_path: Path) -> None:
    """``make demo`` on a fresh machine installs the package and Airflow, not pytest and linters."""
    dry = subprocess.run(["make", "-n", "demo", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    installs = [line for line in dry.stdout.splitlines() if "uv pip install" in line]
    assert installs and all(line.rstrip().endswith("-e .") for line in installs), installs
