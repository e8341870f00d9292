"""Arrows point down (ARCHITECTURE.md): the layers below the Airflow faces never import them.

``campaigns/``, ``hooks/`` and ``protocols/`` are plain Python over the wire and the hooks;
``operators/``, ``sensors/``, ``triggers/`` and ``notifications/`` are the thin Airflow faces
above them. Every module of the lower layers is parsed (not imported) and every import in it
— at the top, inside a function, relative, or an ``importlib.import_module("...")`` literal —
is checked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import airflow_sms_provider

PACKAGE = Path(airflow_sms_provider.__file__).parent
NAME = "airflow_sms_provider"
LOWER = ("campaigns", "hooks", "protocols")
FACES = ("operators", "sensors", "triggers", "notifications")

# Known debt, named so it cannot grow unseen (an entry that no longer matches fails the test).
# Empty since #11: the campaign work moved into campaigns/, and the neutral operator runs it
# directly instead of another operator's execute.
ALLOWED: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, here: str | None = None) -> Iterator[str]:
    """Every module ``path`` (module ``here``) imports, absolute (``from pkg import mod`` yields ``pkg.mod`` too)."""
    here = here or module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            called = getattr(node.func, "attr", getattr(node.func, "id", None))
            if called == "import_module" and isinstance(node.args[0].value, str):
                yield node.args[0].value


def upward(path: Path, here: str | None = None) -> set[str]:
    """The faces' modules ``path`` imports."""
    return {
        name for name in imports(path, here)
        if any(name == f"{NAME}.{face}" or name.startswith(f"{NAME}.{face}.") for face in FACES)
    }  # fmt: skip


def lower_modules() -> list[Path]:
    return sorted(p for layer in LOWER for p in (PACKAGE / layer).rglob("*.py"))


def test_lower_layers_do_not_import_the_airflow_faces() -> None:
    assert lower_modules(), "no module found: the layout changed"
    found = {(module_name(path), target) for path in lower_modules() for target in upward(path)}

    def allowed(source: str, target: str) -> bool:
        return any(source == s and (target == t or target.startswith(f"{t}.")) for s, t in ALLOWED)

    wrong = sorted(pair for pair in found if not allowed(*pair))
    assert not wrong, "imports pointing up (move what is shared below, e.g. into campaigns/): " + ", ".join(
        f"{source} -> {target}" for source, target in wrong
    )
    stale = sorted(pair for pair in ALLOWED if not any(s == pair[0] and t.startswith(pair[1]) for s, t in found))
    assert not stale, f"allowed upward imports that no longer exist (delete them from ALLOWED): {stale}"


def test_the_check_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The walker itself: an import inside a function, a relative one and a literal import_module."""
    assert f"{NAME}.campaigns.events" in set(imports(PACKAGE / "campaigns" / "watch.py"))  # watch's events: below
    probe = tmp_path / "probe.py"
    probe.write_text("import importlib\n\ndef f():\n    from ..triggers import events\n"
                     "    import airflow_sms_provider.sensors.bsg\n"
                     "    importlib.import_module('airflow_sms_provider.notifications.sms')\n", encoding="utf-8")
    assert upward(probe, f"{NAME}.campaigns.probe") == {
        f"{NAME}.triggers", f"{NAME}.triggers.events", f"{NAME}.sensors.bsg", f"{NAME}.notifications.sms",
    }


def test_the_event_shapes_keep_their_public_import_path() -> None:
    """They moved to campaigns/events.py; code importing them from triggers.events gets the same functions."""
    from airflow_sms_provider.campaigns import events
    from airflow_sms_provider.triggers import events as public

    assert (public.error_event, public.not_found, public.raise_for_error) == (
        events.error_event, events.not_found, events.raise_for_error,
    )  # fmt: skip


def test_no_operator_runs_inside_the_campaign_work() -> None:
    """campaigns/run.py once built a provider operator and called its unwrapped ``execute``."""
    from airflow_sms_provider.campaigns import run

    assert not hasattr(run, "run_operator")
    built = [
        f"{path.name}:{node.lineno}" for path in lower_modules()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and str(getattr(node.func, "id", getattr(node.func, "attr", ""))).endswith(
            ("Operator", "unwrap"))
    ]  # fmt: skip
    assert not built, f"an operator built or unwrapped below the faces: {built}"
