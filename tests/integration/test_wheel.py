"""The built wheel, installed in a clean virtualenv, registers with Airflow.

The suite runs against an editable install; this test checks what a user gets from the
wheel: every module is in it, the entry point is declared, and Airflow's providers
manager finds the connection types, hooks, triggers and the notifier. uv installs from its
cache with the pinned constraints, so it takes seconds, not minutes. Deselect with
``-m "not slow"``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import airflow
import pytest

import airflow_sms_provider

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")
TIMEOUT = 300

# Run inside the clean virtualenv: what Airflow's providers manager sees, and every module imports.
CHECK = """
import importlib, json, pkgutil
import airflow_sms_provider
from airflow.providers_manager import ProvidersManager

pm = ProvidersManager()
modules = [m.name for m in pkgutil.walk_packages(airflow_sms_provider.__path__, "airflow_sms_provider.")]
for name in modules:
    importlib.import_module(name)
print(json.dumps({
    "provider": pm.providers["airflow-sms-provider"].version,
    "hooks": {t: pm.hooks[t].hook_class_name for t in ("mobizon", "bsg", "ogangi") if pm.hooks.get(t)},
    "notifications": sorted(pm.notification),
    "triggers": sorted(t.trigger_class_name for t in pm.trigger if "sms" in t.trigger_class_name),  # modules
    "modules": modules,
}))
"""


def constraints() -> Path:
    """The constraints file pinning the Airflow this suite runs on (the compat venv has its own)."""
    for name in ("constraints.txt", "constraints-compat.txt"):
        pinned = re.search(r"^apache-airflow==(\S+)$", (ROOT / name).read_text(), re.M)
        if pinned and pinned.group(1) == airflow.__version__:
            return ROOT / name
    return ROOT / "constraints.txt"


def run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=cwd)
    assert done.returncode == 0, f"{args[:3]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.skipif(not UV.exists(), reason="uv is installed in the test virtualenv by `make install`")
def test_wheel_installs_cleanly_and_registers_with_airflow(tmp_path: Path) -> None:
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "airflow_sms_provider", src / "airflow_sms_provider",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run(UV, "build", "--wheel", "--out-dir", tmp_path / "dist", src)
    (wheel,) = (tmp_path / "dist").glob("airflow_sms_provider-*.whl")
    assert wheel.name.startswith(f"airflow_sms_provider-{airflow_sms_provider.__version__}-")

    venv = tmp_path / "venv"
    run(UV, "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    run(UV, "pip", "install", "--quiet", "--python", python, "-c", constraints(), wheel)

    # A fresh Airflow home: none of the suite's AIRFLOW_* settings (its database, unit-test mode).
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    output = run(venv / "bin" / "airflow", "providers", "list", "--output", "json", env=env)
    listed = json.loads(output.strip().splitlines()[-1])
    assert {"package_name": "airflow-sms-provider"}.items() <= next(
        p for p in listed if p["package_name"] == "airflow-sms-provider").items()

    found = json.loads(run(python, "-c", CHECK, env=env, cwd=tmp_path).strip().splitlines()[-1])
    assert found["provider"] == airflow_sms_provider.__version__
    assert found["hooks"] == {
        "mobizon": "airflow_sms_provider.hooks.mobizon.MobizonHook",
        "bsg": "airflow_sms_provider.hooks.bsg.BsgHook",
        "ogangi": "airflow_sms_provider.hooks.ogangi.OgangiHook",
    }
    assert "airflow_sms_provider.notifications.sms.SmsNotifier" in found["notifications"]
    assert "airflow_sms_provider.triggers.campaign" in found["triggers"]
    # Everything in the source tree made it into the wheel (the tests are not part of it).
    source = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
              for p in (ROOT / "airflow_sms_provider").rglob("*.py")}
    assert source <= {*found["modules"], "airflow_sms_provider"}
