"""No provider-neutral module switches on the connection type: they call the SmsHook interface.

A switch is a comparison with a provider's name or with a ``conn_type`` (``conn_type ==
"bsg"``, ``if provider == "ogangi"``), or a lookup keyed by one (``SENDERS[conn_type]``).
Per-provider modules may know their provider: hooks/, protocols/, sandbox/ and every module
named after a provider (operators/bsg.py, campaigns/mobizon.py, campaigns/mobizon_upload.py, ...).
``ui.py`` and ``get_provider_info.py`` declare the connection types to Airflow (data keyed by
type, which is what the registry reads).
"""

from __future__ import annotations

import ast
from pathlib import Path

import airflow_sms_provider

PACKAGE = Path(airflow_sms_provider.__file__).parent
NAMES = {"mobizon", "bsg", "ogangi"}
PER_PROVIDER_DIRS = {"hooks", "protocols", "sandbox"}
DECLARATIONS = {"ui.py", "get_provider_info.py"}
TYPE_NAMES = {"conn_type", "provider"}


def neutral_modules() -> list[Path]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in PER_PROVIDER_DIRS or relative.name in DECLARATIONS:
            continue
        if path.stem.split("_")[0] in NAMES:
            continue
        found.append(path)
    return found


def _named(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return node.value in NAMES
    if isinstance(node, ast.Name):
        return node.id in TYPE_NAMES
    if isinstance(node, ast.Attribute):
        return node.attr in TYPE_NAMES
    return False


def switches(path: Path, root: Path = PACKAGE) -> list[str]:
    """Lines that compare with a provider name or a connection type, or look one up."""
    where = path.relative_to(root)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        compares = isinstance(node, ast.Compare) and any(_named(n) for n in [node.left, *node.comparators])
        if compares or (isinstance(node, ast.Subscript) and _named(node.slice)):
            found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Dict) and any(k is not None and _named(k) for k in node.keys):
            found.append(f"{where}:{node.lineno}: a table keyed by provider")
    return found


def test_the_check_sees_the_modules_it_must() -> None:
    names = {str(p.relative_to(PACKAGE)) for p in neutral_modules()}
    assert {"operators/campaign.py", "sensors/campaign.py", "triggers/campaign.py", "links.py",
            "notifications/sms.py", "providers.py", "status_map.py", "campaigns/watch.py"} <= names
    assert not names & {"hooks/bsg.py", "campaigns/mobizon_upload.py", "campaigns/ogangi.py"}


def test_the_check_finds_a_switch(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('if conn_type == "bsg":\n    pass\nSENDERS[provider.conn_type]\nT = {"ogangi": 1}\n'
                      'ok = hook.send_text([], "", None)\n')
    assert [line.split(": ")[0] for line in switches(sample, tmp_path)] == ["sample.py:1", "sample.py:3", "sample.py:4"]


def test_no_conn_type_switch_outside_the_per_provider_modules() -> None:
    found = [line for path in neutral_modules() for line in switches(path)]
    assert found == [], "dispatch through the SmsHook interface instead:\n" + "\n".join(found)
