"""The sandbox is the independent check on protocols/ (issue 13, docs: ARCHITECTURE "The sandbox…").

Written from the providers' documents alone, it must not import the client's codecs (a shared
mistake would then pass both sides) nor Airflow (it runs as a plain server).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import airflow_sms_provider.sandbox as sandbox_package

SANDBOX = Path(sandbox_package.__file__).parent
CLIENT_SIDE = tuple(
    f"airflow_sms_provider.{name}"
    for name in ("protocols", "hooks", "operators", "campaigns", "triggers", "sensors", "events")
)


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_sandbox_module_imports_the_client_side() -> None:
    files = sorted(SANDBOX.rglob("*.py"))
    names = {f.relative_to(SANDBOX).as_posix() for f in files}
    parts = ("wire", "state", "rules", "handlers")
    assert names >= {f"{provider}/{part}.py" for provider in ("mobizon", "bsg", "ogangi") for part in parts}
    offending = {
        f.relative_to(SANDBOX).as_posix(): sorted(m for m in imported_modules(f) if m.startswith(CLIENT_SIDE))
        for f in files
    }
    assert {name: mods for name, mods in offending.items() if mods} == {}


def test_importing_every_emulation_loads_neither_protocols_nor_airflow() -> None:
    code = (
        "import sys\n"
        "from airflow_sms_provider.sandbox import SandboxServer, bsg, mobizon, ogangi, create_app\n"
        "create_app()\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith(('airflow.', "
        "'airflow_sms_provider.protocols', 'airflow_sms_provider.hooks'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout
