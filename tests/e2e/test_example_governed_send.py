"""The governed send example end to end: a person answers the approval through Airflow's REST API.

``dag.test()`` runs the example in a child process on the same SQLite database as a real
``airflow api-server``; it parks the approval in ``awaiting_input`` (Airflow 3.3) and waits for
a response recorded from outside. The test reads the request (subject and body: the estimate)
with ``GET .../hitlDetails`` and answers it with ``PATCH``, as the Required Actions page does.
Approve: the sandbox receives exactly the audience (duplicates once, the invalid row not at all,
the name ``{{ 7 * 7 }}`` as written). Reject: the send is skipped and the sandbox receives nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_sms_provider.operators.approval import HITL_MISSING
from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY
from tests.api_server import airflow_api_server
from tests.helpers import sandbox_state

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(HITL_MISSING is not None, reason=HITL_MISSING or ""),
]

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "example_governed_send"
# The example's audience: 5 rows, one repeated number, one invalid.
AUDIENCE = {380661230101: "Hi Olena! Your order is ready for pickup until Friday.",
            380661230102: "Hi Taras! Your order is ready for pickup until Friday.",
            380661230103: "Hi {{ 7 * 7 }}! Your order is ready for pickup until Friday."}  # fmt: skip
RUN = """
import json, runpy, sys
from airflow.providers.common.compat.sdk import DAG
ns = runpy.run_path(sys.argv[1])
dag = next(v for v in ns.values() if isinstance(v, DAG))
run = dag.test(run_conf={"sms_conn_id": "bsg_default"})
print("RESULT " + json.dumps({"run_id": run.run_id, "state": str(run.state)}))
"""


@pytest.fixture(scope="module")
def governed(tmp_path_factory: pytest.TempPathFactory, sandbox: Any) -> Iterator[tuple[str, dict[str, str]]]:
    """An api-server, and the environment a ``dag.test()`` child needs to share its database."""
    home = tmp_path_factory.mktemp("governed-home")
    conn = {"conn_type": "bsg", "host": sandbox.url, "password": SANDBOX_BSG_API_KEY,
            "extra": {"retry_base_delay": 0.01}}  # fmt: skip
    env = {"AIRFLOW_CONN_BSG_DEFAULT": json.dumps(conn), "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags")}
    (home / "dags").mkdir()
    (home / "dags" / f"{DAG_ID}.py").write_text((ROOT / "example_dags" / f"{DAG_ID}.py").read_text())
    with airflow_api_server(home, **env) as url:
        child = {**os.environ, **env, "AIRFLOW_HOME": str(home),
                 "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
                 "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONPATH": str(ROOT)}  # fmt: skip
        child.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
        yield url, child


def run_and_answer(api: str, env: dict[str, str], option: str, tmp_path: Path) -> tuple[dict[str, Any], dict]:
    """Start the example in a child ``dag.test()``, answer its approval with ``option``; (request, result)."""
    out = (tmp_path / "dag-test.log").open("w+b")
    proc = subprocess.Popen([sys.executable, "-c", RUN, str(Path(env["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{DAG_ID}.py")],
                            env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline, request = time.monotonic() + 120, None
        while request is None:
            assert proc.poll() is None, f"dag.test ended before asking:\n{_tail(out)}"
            assert time.monotonic() < deadline, f"no approval request:\n{_tail(out)}"
            answer = httpx.get(f"{api}/api/v2/dags/{DAG_ID}/dagRuns/~/hitlDetails",
                               params={"response_received": "false"}, timeout=30)  # fmt: skip
            answer.raise_for_status()
            # Once the task is parked, as a person finds it (not in the milliseconds between the
            # request's write and the parking).
            found = [d for d in answer.json()["hitl_details"] if d["task_instance"]["state"] == "awaiting_input"]
            request = found[0] if found else None
            time.sleep(0.5)
        ti = request["task_instance"]
        patched = httpx.patch(
            f"{api}/api/v2/dags/{DAG_ID}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/-1/hitlDetails",
            json={"chosen_options": [option]}, timeout=30,
        )  # fmt: skip
        assert patched.status_code == 200, patched.text
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    log = _tail(out, 100_000)
    results = [line for line in log.splitlines() if line.startswith("RESULT ")]
    assert results, log[-4000:]
    return request, json.loads(results[-1][len("RESULT "):])


def _tail(out: Any, size: int = 4000) -> str:
    out.flush()
    out.seek(0)
    return out.read().decode(errors="replace")[-size:]


def task_states(api: str, run_id: str) -> dict[str, str]:
    tis = httpx.get(f"{api}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", timeout=30).json()
    return {ti["task_id"]: ti["state"] for ti in tis["task_instances"]}


def test_approved_send_reaches_exactly_the_audience(
    governed: tuple[str, dict[str, str]], sandbox_url: str, tmp_path: Path
) -> None:
    api, env = governed
    request, result = run_and_answer(api, env, "Approve", tmp_path)
    assert result["state"] == "success", result
    assert request["subject"] == "Approve SMS send: 3 recipients, 3 parts, 0.045 USD"
    body = request["body"]
    assert body.startswith("Pickup reminders for today's orders.\n\n**Audience**: 3 recipients "
                           "(1 row rejected, 1 duplicate sent once)")  # fmt: skip
    assert "**SMS parts**: 1 part each; 3 parts in all (GSM-7: 3)" in body
    assert "**Estimated cost**: 0.045 USD (BSG's price endpoint, 1 request)" in body
    assert "+3806***0103: Hi {{ 7 * 7 }}! Your order" in body  # data shown as written, number masked
    assert "380661230101" not in body and "- row 4: " in body
    assert task_states(api, result["run_id"]) == {"load_audience": "success", "approve_send": "success",
                                                  "send": "success"}  # fmt: skip
    messages = [m for c in sandbox_state(sandbox_url, "bsg")["campaigns"] for m in c["messages"]]
    assert sorted((int(m["phone"]), m["text"]) for m in messages) == sorted(AUDIENCE.items())


def test_rejected_send_sends_nothing(governed: tuple[str, dict[str, str]], sandbox_url: str, tmp_path: Path) -> None:
    api, env = governed
    _, result = run_and_answer(api, env, "Reject", tmp_path)
    assert task_states(api, result["run_id"]) == {"load_audience": "success", "approve_send": "success",
                                                  "send": "skipped"}  # fmt: skip
    assert sandbox_state(sandbox_url, "bsg")["campaigns"] == []
