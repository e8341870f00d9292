"""Small helpers shared by the integration and end-to-end tests."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

EXAMPLE_DAGS = Path(__file__).resolve().parents[1] / "example_dags"


def sandbox_state(url: str, provider: str) -> Any:
    """What the sandbox holds for ``provider`` (campaigns, recipients, send calls...)."""
    response = httpx.get(f"{url}/_sandbox/{provider}/state")
    response.raise_for_status()
    return response.json()


def sandbox_requests(url: str, provider: str | None = None, *, settled: bool = False) -> list[dict[str, Any]]:
    """The sandbox's request log. ``settled``: first wait (10 s at most) until no request is in flight —
    an answer a fault held past the client's timeout is logged only when it goes out, so counting
    before that puts it among the next try's requests."""
    params = {"provider": provider} if provider else {}
    deadline = time.monotonic() + 10
    while True:
        response = httpx.get(f"{url}/_sandbox/requests", params=params)
        response.raise_for_status()
        body = response.json()
        if not settled or body["in_flight"] == 0 or time.monotonic() > deadline:
            return body["items"]
        time.sleep(0.05)


def set_clock(url: str, **change: float) -> None:
    """``speed=`` simulated seconds per real second and/or ``advance=`` seconds."""
    httpx.post(f"{url}/_sandbox/clock", json=change).raise_for_status()


def add_faults(url: str, *rules: dict[str, Any]) -> None:
    httpx.post(f"{url}/_sandbox/faults", json=list(rules)).raise_for_status()


def portion_size(request: httpx.Request) -> int:
    """How many recipients a Mobizon addRecipients body holds (``recipients[N]`` or ``recipients[N][field]``)."""
    from urllib.parse import parse_qsl

    keys = (key for key, _ in parse_qsl(request.content.decode(), keep_blank_values=True))
    return len({key.split("]", 1)[0] for key in keys if key.startswith("recipients[")})


def all_added(request: httpx.Request, code: Any = 0, message_id: Any = 1) -> httpx.Response:
    """A mocked addRecipients answer: every recipient of the portion added (one result each, as Mobizon answers)."""
    results = [{"code": code, "messageId": message_id}] * portion_size(request)
    return httpx.Response(200, json={"code": 0, "data": results, "message": ""})


def load_example(filename: str, dag_id: str) -> Any:
    """The DAG object ``dag_id`` defined in an example DAG file."""
    import runpy

    from airflow.providers.common.compat.sdk import DAG

    namespace = runpy.run_path(str(EXAMPLE_DAGS / filename))
    dags = [v for v in namespace.values() if isinstance(v, DAG) and v.dag_id == dag_id]
    assert dags, f"{filename} defines no DAG {dag_id!r}"
    return dags[0]


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


def register_dag(dag: Any) -> None:
    """Write an ad-hoc DAG (built inside a test) to the metadata DB so ``dag.test()`` accepts it.

    Airflow 3.3's ``dag.test()`` only runs DAGs that a DAG bundle has serialized;
    example DAGs come from the DAGs folder, test-built ones are synced here.
    """
    import tempfile

    try:
        from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    except ImportError:  # Airflow < 3.1: dag.test() writes the DAG itself
        return
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
    with tempfile.TemporaryDirectory() as empty:
        bag = DagBag(dag_folder=empty)
        bag.bag_dag(dag)
        sync_bag_to_db(bag, "dags-folder", None)


def run_dag(dag: Any) -> Any:
    """``dag.test()`` for a DAG built inside a test."""
    register_dag(dag)
    return dag.test()


class DurableStore:
    """A stand-in for the task's durable state (``context["task_state_store"]``) across tries.

    Values go through JSON both ways, as Airflow's store keeps them: an operator that saved
    something JSON cannot hold, or that mutates what it read, fails here as it would there.
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return json.loads(json.dumps(self.values.get(key)))

    def set(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))


def within(seconds: float, call: Any, what: str = "the call") -> tuple[float, dict[str, Any]]:
    """Run ``call`` in a thread; fail (instead of hanging) when it has not ended after ``seconds``.

    Returns the seconds it took and ``{"value": ...}`` or ``{"error": ...}``.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as err:  # handed to the test
            outcome["error"] = err

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{what} still waiting after {seconds:.0f} s: no overall deadline"
    return time.monotonic() - started, outcome


def task_context(run_id: str, store: DurableStore | None = None, *, task_id: str = "send", **ti: Any) -> dict[str, Any]:
    """The context an operator's ``execute`` gets from a task runner: a task instance (``ti`` adds fields such
    as ``try_number``) and the durable store (a new one unless given)."""
    from types import SimpleNamespace

    instance = SimpleNamespace(dag_id="dag", task_id=task_id, run_id=run_id, map_index=-1,
                               xcom_push=lambda **kw: None, **ti)  # fmt: skip
    return {"ti": instance, "task_state_store": store if store is not None else DurableStore()}
