"""Finding a task's campaign again when there is no durable task state (Airflow < 3.3).

A campaign created by a task try is named with a tag derived from the task
instance (dag_id, run_id, task_id, map_index). A later try of the same task
instance computes the same tag and looks the campaign up at the provider instead
of creating a second one. The tag is also what reconciles an ambiguous create
(a timeout after the request left) on any Airflow version.
"""

from __future__ import annotations

import hashlib
from typing import Any

TAG_PREFIX = "af-"


def run_tag(context: Any) -> str | None:
    """A short tag unique to this task instance, the same on every try; None outside a task."""
    ti = context.get("ti") if context else None
    if ti is None:
        return None
    try:
        parts = (ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1))
    except AttributeError:
        return None
    digest = hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:12]
    return TAG_PREFIX + digest


def tagged_name(name: str | None, tag: str, limit: int) -> str:
    """``name`` with `` [tag]`` appended, shortened so the whole fits ``limit`` characters."""
    suffix = f" [{tag}]"
    base = (name or "Airflow SMS campaign").strip()
    return base[: max(0, limit - len(suffix))] + suffix
