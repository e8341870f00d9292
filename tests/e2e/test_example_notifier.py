"""The SMS notifier example DAG, end to end on Airflow (SQLite), once per provider.

A task fails on purpose: its failure callback and the DAG's must each text both on-call
numbers, with the exception in the task's message; a task that succeeds texts its
rendered message. The sandbox is asked what it received.
"""

from __future__ import annotations

import airflow
import pytest
from packaging.version import Version

from tests.helpers import load_example, sandbox_state, task_states

pytestmark = pytest.mark.e2e

ON_CALL = ("380501234567", "380501234568")  # the example's default param
# Before 3.3, dag.test() runs task callbacks without context["exception"] (real runs have it):
# the notifier then says FAILED from the task's state, without the exception.
EXCEPTION_IN_CALLBACKS = Version(airflow.__version__).release >= (3, 3)


def received(url: str, provider: str) -> list[tuple[str, str]]:
    """(number, text) of every SMS the sandbox's ``provider`` got, in order."""
    state = sandbox_state(url, provider)
    if provider == "mobizon":
        messages = [(m["to"], m["text"]) for c in state["campaigns"] for m in c["messages"]]
    elif provider == "bsg":
        messages = [(str(m["phone"]), m["text"]) for c in state["campaigns"] for m in c["messages"]]
    else:
        messages = [(str(m["to"]), m["text"]) for m in state["messages"]]
    return sorted(messages)


@pytest.mark.parametrize("conn_fixture", ["mobizon_conn", "bsg_conn", "ogangi_conn"])
def test_failing_task_and_dag_send_their_sms(
    airflow_db: None, sandbox_url: str, conn_fixture: str, request: pytest.FixtureRequest
) -> None:
    conn_id = request.getfixturevalue(conn_fixture)
    dag = load_example("example_sms_notifier.py", "example_sms_notifier")

    run = dag.test(run_conf={"sms_conn_id": conn_id}, logical_date=None)  # as a manual run

    assert task_states(run) == {"extract": "success", "load": "failed"}, task_states(run)
    failed = "FAILED: ValueError: row 42 is malformed" if EXCEPTION_IN_CALLBACKS else "FAILED"
    texts = {
        "success": "example_sms_notifier: extract found 42 rows",
        "task": f"Airflow: example_sms_notifier.load {failed} (run {run.run_id})",
        "dag": f"Airflow: example_sms_notifier FAILED: task_failure in load (run {run.run_id})",
    }
    assert received(sandbox_url, conn_fixture.removesuffix("_conn")) == sorted(
        (number, text) for number in ON_CALL for text in texts.values()
    )
