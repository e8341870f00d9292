"""Every template in the examples, README and docs renders for a run without a logical date.

Runs triggered from the UI, the CLI or the REST API have no logical date in Airflow 3:
``ds``, ``ts``, ``logical_date`` and ``data_interval_*`` are then missing or None. The
example DAGs themselves run that way in tests/e2e (``dag.test(logical_date=None)``).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from unittest import mock

import jinja2
import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "example_dags").glob("*.py"))]
EXPRESSION = re.compile(r"\{\{.*?\}\}")


def templates() -> list[tuple[str, str]]:
    found = []
    for path in SOURCES:
        for expression in EXPRESSION.findall(path.read_text(encoding="utf-8")):
            found.append((path.relative_to(ROOT).as_posix(), expression))
    return found


def context_without_logical_date() -> dict:
    """What Airflow 3 puts into the context of a manual run (no ``ds``/``ts``; dates None)."""
    from airflow.sdk.execution_time import macros

    run_after = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.timezone.utc)
    ti = mock.MagicMock(name="ti")
    # the sandbox calls plain callables; campaign_ids: the neutral operator's summary
    ti.xcom_pull = lambda *args, **kwargs: ({"campaign_id": 42, "broadcast_id": 7,
                                                  "campaign_ids": [42]})
    return {
        "dag_run": mock.MagicMock(run_after=run_after, logical_date=None, run_id="manual__2026-03-01T09:30:00"),
        "run_id": "manual__2026-03-01T09:30:00", "ti": ti, "task_instance": ti, "params": mock.MagicMock(),
        "var": mock.MagicMock(), "conn": mock.MagicMock(), "macros": macros, "dag": mock.MagicMock(),
        "task": mock.MagicMock(), "logical_date": None, "data_interval_start": None, "data_interval_end": None,
    }  # fmt: skip


def environment() -> jinja2.Environment:
    """Airflow's template environment: its sandbox and filters (``ds``, ``ts``...), undefined names fail."""
    from airflow.sdk.definitions._internal.templater import FILTERS, SandboxedEnvironment

    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined)
    env.filters.update(FILTERS)
    return env


@pytest.mark.parametrize(("source", "expression"), templates())
def test_renders_for_a_run_without_a_logical_date(source: str, expression: str) -> None:
    env = environment()
    rendered = env.from_string(expression).render(**context_without_logical_date())
    assert rendered and rendered != "None", f"{source}: {expression} renders {rendered!r}"


def test_the_old_campaign_name_would_fail() -> None:
    """The check above catches the templates that broke manual runs."""
    env = environment()
    for old in ("{{ ds }}", "{{ data_interval_end.add(hours=2) }}"):
        with pytest.raises(jinja2.UndefinedError):
            env.from_string(old).render(**context_without_logical_date())
