"""Small helpers shared by the integration and end-to-end tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

EXAMPLE_DAGS = Path(__file__).resolve().parents[1] / "example_dags"


def sandbox_state(url: str, provider: str) -> Any:
    """What the sandbox holds for ``provider`` (campaigns, recipients, send calls...)."""
    response = httpx.get(f"{url}/_sandbox/{provider}/state")
    response.raise_for_status()
    return response.json()


def sandbox_requests(url: str, provider: str | None = None) -> list[dict[str, Any]]:
    params = {"provider": provider} if provider else {}
    response = httpx.get(f"{url}/_sandbox/requests", params=params)
    response.raise_for_status()
    body = response.json()
    return body["requests"] if isinstance(body, dict) else body


def set_clock(url: str, **change: float) -> None:
    """``speed=`` simulated seconds per real second and/or ``advance=`` seconds."""
    httpx.post(f"{url}/_sandbox/clock", json=change).raise_for_status()


def add_faults(url: str, *rules: dict[str, Any]) -> None:
    httpx.post(f"{url}/_sandbox/faults", json=list(rules)).raise_for_status()


def load_example(filename: str, dag_id: str) -> Any:
    """The DAG object of an example DAG file, parsed as the scheduler would."""
    from airflow.models.dagbag import DagBag

    bag = DagBag(str(EXAMPLE_DAGS / filename), include_examples=False)
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)


def xcom(run: Any, task_id: str, key: str = "return_value") -> Any:
    """The XCom value a task of a finished ``dag.test()`` run pushed."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key=key)
        ).first()
        assert row is not None, f"no XCom {key!r} from {task_id}"
        value = row.value
    return json.loads(value) if isinstance(value, str) else value


def task_states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
