"""A real Airflow deployment runs the example DAGs: PostgreSQL, separate components, REST triggers.

``make test-deploy`` (deselected from ``make test``). One PostgreSQL cluster (Debian's
package, a throwaway data directory, 127.0.0.1) holds the metadata database; api-server,
scheduler, dag-processor and triggerer run as separate ``airflow`` processes sharing one
configuration, with the LocalExecutor; connections come from ``AIRFLOW_CONN_*`` variables
pointing at the sandbox. Every example DAG is unpaused and triggered through the REST API
without a logical date, as a user's button press or script does. Then: each run's outcome,
the deferrable sensors' passage through the triggerer process, what the provider holds at
the end (the sandbox's admin API), and no secret in any component or task log.

The CeleryExecutor half (scale-out, a worker killed mid-upload) is test_celery.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.deployment import Deployment, deployment_secrets, log_files, sandbox_state
from tests.secret_forms import leaks

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.stem for p in (ROOT / "example_dags").glob("example_*.py"))
RUN_TIMEOUT = 420.0  # every example at once, on 2 loaded cores
# The deferrable sensor of each example: it must have been seen in state "deferred".
SENSORS = {
    "example_mobizon_campaign": "wait_for_done",
    "example_bsg_campaign": "wait_for_done",
    "example_any_provider_campaign": "wait_for_done",
    "example_delivery_report": "wait_for_done",
    "example_ogangi_broadcast": "wait_until_finished",
}
# A failing load task is the point of this example: its callbacks text the on-call phones.
EXPECTED_STATE = {"example_sms_notifier": "failed"}
# Governed sends wait for a person: the test approves over REST, as the Required Actions page does,
# some seconds after the task parked, as a person would. Airflow 3.3.2 with a real executor: the
# executor's "success" event of the parking phase carries the same try number as the resumed run,
# and when the scheduler reads it after an answer already re-queued the task, it fails the resumed
# one ("TI was not in the running state", seen here with an answer within a second).
APPROVALS = {"example_governed_send": "approve_send"}
APPROVAL_DELAY = 10.0
GOVERNED = {380661230101, 380661230102, 380661230103}  # example_governed_send's audience, texted over BSG


def _approve(api: httpx.Client, dag_id: str, run_id: str) -> bool:
    """Approve the run's request (its task is awaiting input)."""
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{APPROVALS[dag_id]}/-1/hitlDetails"
    return api.patch(path, json={"chosen_options": ["Approve"]}).status_code == 200


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with Deployment(executor="LocalExecutor", dags_folder=ROOT / "example_dags") as deployed:
        yield deployed


@pytest.fixture(scope="module")
def example_runs(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """Trigger every example through the REST API and follow each run to its end."""
    api = deployment.api
    deployment.wait_for_dags(EXAMPLES)
    runs: dict[str, dict[str, Any]] = {}
    for dag_id in EXAMPLES:
        api.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        answer = api.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": {}})
        assert answer.status_code in (200, 201), f"{dag_id}: {answer.status_code} {answer.text}"
        runs[dag_id] = {"run_id": answer.json()["dag_run_id"], "deferred": set(), "state": None}
    deadline = time.monotonic() + RUN_TIMEOUT
    while any(r["state"] not in ("success", "failed") for r in runs.values()) and time.monotonic() < deadline:
        deployment.check_alive()
        for dag_id, run in runs.items():
            if run["state"] in ("success", "failed"):
                continue
            base = f"/api/v2/dags/{dag_id}/dagRuns/{run['run_id']}"
            tis = api.get(f"{base}/taskInstances").json()["task_instances"]
            if dag_id in APPROVALS and not run.get("approved") and any(
                    ti["task_id"] == APPROVALS[dag_id] and ti["state"] == "awaiting_input" for ti in tis):
                run.setdefault("awaiting_since", time.monotonic())
                if time.monotonic() - run["awaiting_since"] >= APPROVAL_DELAY:
                    run["approved"] = _approve(api, dag_id, run["run_id"])
            run["deferred"] |= {ti["task_id"] for ti in tis if ti["state"] == "deferred"}
            run["state"] = api.get(base).json()["state"]
        time.sleep(0.5)
    for dag_id, run in runs.items():
        base = f"/api/v2/dags/{dag_id}/dagRuns/{run['run_id']}"
        run["task_instances"] = {ti["task_id"]: ti for ti in api.get(f"{base}/taskInstances").json()["task_instances"]}
    return runs


def _failure_detail(deployment: Deployment, dag_id: str, run: dict[str, Any]) -> str:
    states = {t: ti["state"] for t, ti in run["task_instances"].items()}
    failed = [t for t, s in states.items() if s not in ("success", "skipped")]
    logs = "\n".join(f"--- {t}:\n{deployment.task_log(dag_id, run['run_id'], t)[-2500:]}" for t in failed[:2])
    return f"{dag_id} run {run['run_id']} ended {run['state']}; tasks {states}\n{logs}"


@pytest.mark.parametrize("dag_id", EXAMPLES)
def test_example_run_ends_as_expected(deployment: Deployment, example_runs: dict[str, Any], dag_id: str) -> None:
    run = example_runs[dag_id]
    assert run["state"] == EXPECTED_STATE.get(dag_id, "success"), _failure_detail(deployment, dag_id, run)


@pytest.mark.parametrize("dag_id", [d for d in EXAMPLES if d in SENSORS])
def test_sensor_deferred_and_resumed_in_the_triggerer(
    deployment: Deployment, example_runs: dict[str, Any], dag_id: str
) -> None:
    run, sensor = example_runs[dag_id], SENSORS[dag_id]
    detail = _failure_detail(deployment, dag_id, run)
    assert sensor in run["deferred"], f"{dag_id}.{sensor} was never seen deferred: {detail}"
    assert run["task_instances"][sensor]["state"] == "success"  # resumed on a worker after the trigger fired
    task_log = deployment.task_log(dag_id, run["run_id"], sensor, "attempt=*.log")
    assert "Pausing task as DEFERRED" in task_log, task_log[-3000:]
    # The triggerer process writes what the trigger logged beside the task's log: it ran there.
    trigger_log = deployment.task_log(dag_id, run["run_id"], sensor, "*.trigger.*.log")
    assert "starting" in trigger_log and "Trigger fired event" in trigger_log, trigger_log[-3000:]


def test_provider_final_state(deployment: Deployment, example_runs: dict[str, Any]) -> None:
    url = deployment.sandbox.url
    mobizon = sandbox_state(url, "mobizon")["campaigns"]
    names = {c["name"]: c for c in mobizon}
    welcome = [c for n, c in names.items() if n.startswith("Welcome codes")]
    spring = [c for n, c in names.items() if n.startswith("Spring sale")]
    if example_runs["example_mobizon_campaign"]["state"] == "success":
        assert len(welcome) == 1 and welcome[0]["status"] == "DONE" and welcome[0]["messages"], welcome
    if example_runs["example_any_provider_campaign"]["state"] == "success":
        assert len(spring) == 1 and spring[0]["status"] == "DONE", spring
        assert sorted(m["to"] for m in spring[0]["messages"]) == ["77011112201", "77011112202", "77011112205",
                                                                  "77011112213"]
    if example_runs["example_delivery_report"]["state"] == "success":  # its own check_report compared the table
        pickup = [c for n, c in names.items() if n.startswith("Pickup")]
        assert len(pickup) == 1 and len(pickup[0]["messages"]) == 6, pickup
    bsg = sandbox_state(url, "bsg")
    messages = [m for c in bsg["campaigns"] for m in c.get("messages", [])]
    on_call = {380501234567, 380501234568}  # example_sms_notifier's numbers, texted over BSG
    if example_runs["example_bsg_campaign"]["state"] == "success":
        phones = sorted(int(m["phone"]) for m in messages if int(m["phone"]) not in on_call | GOVERNED)
        assert phones == [380661230001, 380661230002, 380661230005, 380661230007, 380661230013, 380661230066]
    if example_runs["example_governed_send"]["state"] == "success":  # approved above: exactly its audience
        assert sorted(int(m["phone"]) for m in messages if int(m["phone"]) in GOVERNED) == sorted(GOVERNED)
    # The notifier's texts: extract's success, the failed task (its exception) and the failed run.
    alerts = " ".join(m["text"] for m in messages if int(m["phone"]) in on_call)
    assert "extract found 42 rows" in alerts and "malformed" in alerts, alerts
    if example_runs["example_ogangi_broadcast"]["state"] == "success":
        (broadcast,) = sandbox_state(url, "ogangi")["broadcasts"]
        assert broadcast["status"] == "FINISHED" and broadcast["sentMessages"] == 5, broadcast
        # Held and released while unfinished (SANDBOX_CONFIG): the hold really happened.
        assert broadcast["calls"] == {"suspendBroadcast": 1, "resumeBroadcast": 1}, broadcast


@pytest.mark.parametrize("dag_id", ["example_mobizon_campaign", "example_bsg_campaign"])
def test_reject_report_in_the_runs_folder_under_airflow_home(
    deployment: Deployment, example_runs: dict[str, Any], dag_id: str
) -> None:
    """The examples' default (no SMS_EXAMPLE_STORAGE): $AIRFLOW_HOME/sms_examples/<dag>/<run>/, not /tmp."""
    assert deployment.airflow is not None
    run = example_runs[dag_id]
    report = deployment.airflow.home / "sms_examples" / dag_id / run["run_id"] / "rejected.csv"
    assert report.read_text().startswith("row,value,reason\n"), report
    assert len(report.read_text().splitlines()) == 2  # one invalid row in each example's audience


def test_no_secret_in_any_log(deployment: Deployment, example_runs: dict[str, Any]) -> None:
    files = log_files(deployment)
    assert any("task_id=" in str(p) or "dag_id=" in str(p) for p in files), "no task log was written"
    found = []
    for path in files:
        text = path.read_text(errors="replace")
        found += [f"{path.name}: {hit}" for hit in leaks(text, deployment_secrets(deployment))]
        found += [f"{path.name}: a JWT" for _ in re.finditer(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}", text)]
    assert not found, "\n".join(found[:20])
