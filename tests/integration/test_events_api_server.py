"""End to end through a real Airflow API server with the SmsEventsPlugin mounted.

* A campaign sent through the sandbox; the sandbox posts its delivery reports (signed, some twice)
  to ``/sms-events/mobizon/mobizon_default`` on the API server; the plugin checks them with the
  connection's ``webhook_secret`` and records one asset event, which the REST API then lists.
* The example pair: ``example_delivery_events_sender`` runs, the reports reach the receiver, and
  a scheduler started for the occasion creates and runs ``example_delivery_events_consumer`` for
  the asset event; its task returns the event's counts.
* A BSG callback with its token in the path; the token never appears in the API server's log
  (its access log prints paths).
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_sms_provider.events.mobizon import mobizon_sign
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.sandbox import SandboxServer
from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY
from tests.api_server import airflow_api_server, airflow_env
from tests.conftest import mobizon_conn_uri
from tests.helpers import load_example, task_states, xcom

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("example_delivery_events_sender.py", "example_delivery_events_consumer.py")
CONSUMER = "example_delivery_events_consumer"
SECRET = "apiWebhookSecret-0123456789"
TOKEN = "bsgCallbackToken_0123456789abcdefXYZ"  # 36 characters
PLUGIN = "from airflow_sms_provider.events.plugin import SmsEventsPlugin  # noqa: F401\n"


class Deployment:
    def __init__(self, home: Path, url: str, env: dict[str, str]) -> None:
        self.home, self.url, self.env = home, url, env

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=True)  # fmt: skip

    def get(self, path: str, **params: Any) -> Any:
        answer = httpx.get(f"{self.url}{path}", params=params, timeout=30)
        answer.raise_for_status()
        return answer.json()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, sandbox: SandboxServer) -> Iterator[Deployment]:
    """One API server (with the plugin) for this module: starting one takes a minute or more on 2 loaded cores."""
    home = tmp_path_factory.mktemp("events-api-home")
    (home / "plugins").mkdir()
    (home / "plugins" / "sms_events.py").write_text(PLUGIN)
    (home / "dags").mkdir()
    for name in EXAMPLES:  # only the pair: parsing every example would cost a minute
        shutil.copy(ROOT / "example_dags" / name, home / "dags" / name)
    bsg = {"conn_type": "bsg", "host": sandbox.url, "password": SANDBOX_BSG_API_KEY,
           "extra": {"callback_token": TOKEN}}  # fmt: skip
    settings = {
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__SMS_EVENTS__QUIET_SECONDS": "0.5",
        # The consumer's XCom read back with ?deserialize=true (refused with 400 on 3.0 unless enabled).
        "AIRFLOW__API__ENABLE_XCOM_DESERIALIZE_SUPPORT": "True",
        # The scheduler signs the tasks' tokens, the API server checks them: one secret for both.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW_CONN_MOBIZON_DEFAULT": mobizon_conn_uri(sandbox.url, webhook_secret=SECRET),
        "AIRFLOW_CONN_BSG_DEFAULT": json.dumps(bsg),
    }
    with airflow_api_server(home, **settings) as url:
        env = airflow_env(home, **settings, AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{url}/execution/")
        deployed = Deployment(home, url, env)
        deployed.airflow("dags", "reserialize")  # the consumer DAG in the database, as a dag-processor would
        yield deployed


@pytest.fixture(scope="module")
def api_server(deployment: Deployment) -> str:
    return deployment.url


@contextmanager
def scheduler(deployed: Deployment) -> Iterator[subprocess.Popen[bytes]]:
    """A scheduler for the ``with`` (LocalExecutor): it turns the asset event into a consumer run and runs it."""
    log = deployed.home / "scheduler.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "airflow", "scheduler"], env=deployed.env, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def wait_for(what: str, probe: Any, timeout: float, deployed: Deployment) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    logs = {name: (deployed.home / name).read_text(errors="replace")[-3000:]
            for name in ("api-server.log", "scheduler.log") if (deployed.home / name).exists()}  # fmt: skip
    raise AssertionError(f"timed out waiting for {what}; logs: {json.dumps(logs)[:6000]}")


def asset_events(api: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{api}/api/v2/assets/events", params={"limit": 100}, timeout=30)
    answer.raise_for_status()
    return answer.json()["asset_events"]


def test_a_finished_campaign_becomes_an_asset_event(api_server: str, sandbox_url: str, mobizon_conn: str) -> None:
    admin = httpx.Client(base_url=sandbox_url, timeout=10)
    admin.post("/_sandbox/clock", json={"to": "2030-01-01T00:00:00+00:00", "speed": 0}).raise_for_status()
    admin.post("/_sandbox/config", json={"webhook_tick": 0.02, "webhook_duplicate_every": 1}).raise_for_status()
    hook_url = f"{api_server}/sms-events/mobizon/{mobizon_conn}"
    admin.post("/_sandbox/mobizon/webhooks", json={"url": hook_url, "secret": SECRET}).raise_for_status()
    hook = MobizonHook()
    campaign_id = hook.create_campaign("Asset events", name="e2e")
    hook.add_recipients(campaign_id, ["77011110001", "77011110002", "77011110013"])
    hook.send_campaign(campaign_id)
    admin.post("/_sandbox/clock", json={"advance": 60}).raise_for_status()

    deadline = time.monotonic() + 60
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:
        found = [e for e in asset_events(api_server) if (e.get("extra") or {}).get("campaign_ids") == [campaign_id]]
        time.sleep(0.5)
    deliveries = admin.get("/_sandbox/mobizon/webhooks").json()["deliveries"]
    assert found, f"no asset event; the sandbox's attempts: {json.dumps(deliveries)[:2000]}"
    (event,) = found  # each report came twice (attempts 1 and 2): still one event
    assert event["uri"] == f"sms://mobizon/{mobizon_conn}"
    assert event["extra"]["counts"] == {"DELIVRD": 2, "UNDELIV": 1}
    assert {(d["attempt"], d["httpStatus"]) for d in deliveries} == {(1, 200), (2, 200)}


def test_the_plugin_refuses_a_wrong_signature_and_an_unknown_connection(api_server: str) -> None:
    body = {"eventId": 9, "eventType": "sms-delivery-report", "eventCreateTs": "2030-01-01 00:00:00",
            "webhookId": 1, "attempt": 1, "data": {"campaignId": 1, "messageId": 1, "segNum": 1,
            "statusUpdateTs": "2030-01-01 00:00:00", "status": "DELIVRD", "to": "77011110001"}}  # fmt: skip
    wrong = {**body, "sign": mobizon_sign(9, 1, "2030-01-01 00:00:00", "guess")}
    answer = httpx.post(f"{api_server}/sms-events/mobizon/mobizon_default", json=wrong, timeout=30)
    assert (answer.status_code, answer.json()["field"]) == (403, "sign")
    right = {**body, "sign": mobizon_sign(9, 1, "2030-01-01 00:00:00", SECRET)}
    assert httpx.post(f"{api_server}/sms-events/mobizon/nobody", json=right, timeout=30).status_code == 404
    assert SECRET not in answer.text


def test_the_sender_runs_and_the_consumer_gets_a_run_with_the_counts(
    deployment: Deployment, sandbox_url: str, mobizon_conn: str, airflow_db: None
) -> None:
    admin = httpx.Client(base_url=sandbox_url, timeout=10)
    admin.post("/_sandbox/clock", json={"to": "2030-01-01T00:00:00+00:00", "speed": 0}).raise_for_status()
    admin.post("/_sandbox/config", json={"webhook_tick": 0.02, "webhook_duplicate_every": 2}).raise_for_status()
    hook_url = f"{deployment.url}/sms-events/mobizon/{mobizon_conn}"  # Mobizon's panel, played by the sandbox
    admin.post("/_sandbox/mobizon/webhooks", json={"url": hook_url, "secret": SECRET}).raise_for_status()

    sender = load_example("example_delivery_events_sender.py", "example_delivery_events_sender")
    run = sender.test()
    assert str(run.state).endswith("success"), task_states(run)
    campaign_ids = xcom(run, "send")["campaign_ids"]
    admin.post("/_sandbox/clock", json={"advance": 60}).raise_for_status()  # the reports turn final

    def mobizon_event() -> list[dict[str, Any]]:
        events = deployment.get("/api/v2/assets/events", limit=100)["asset_events"]
        return [e for e in events if (e.get("extra") or {}).get("campaign_ids") == campaign_ids]

    (event,) = wait_for("the asset event", mobizon_event, 60, deployment)
    assert event["uri"] == "sms://mobizon/mobizon_default"
    assert event["extra"]["counts"] == {"DELIVRD": 2, "UNDELIV": 1} and event["extra"]["update"] is False

    with scheduler(deployment):
        runs = wait_for("the consumer's run", lambda: [
            r for r in deployment.get(f"/api/v2/dags/{CONSUMER}/dagRuns")["dag_runs"] if r["state"] == "success"
        ], 120, deployment)  # fmt: skip
    (consumer_run,) = runs  # one run, though the module's other test made an event before (consumed with this one)
    assert consumer_run["run_type"] == "asset_triggered"
    base = f"/api/v2/dags/{CONSUMER}/dagRuns/{consumer_run['dag_run_id']}"
    upstream = deployment.get(f"{base}/upstreamAssetEvents")["asset_events"]
    assert event["id"] in [e["id"] for e in upstream]
    lines = deployment.get(f"{base}/taskInstances/report/xcomEntries/return_value", deserialize=True)["value"]
    assert {"source": "mobizon/mobizon_default", "campaign_ids": campaign_ids, "group": None,
            "counts": {"DELIVRD": 2, "UNDELIV": 1}, "messages": 3, "update": False} in lines


def test_a_bsg_callback_through_the_api_server_leaves_no_token_in_its_log(deployment: Deployment) -> None:
    body = {"id": 4419393338, "msisdn": "380661230001", "status": "delivered", "reference": "0123456789abcdef" * 2,
            "time_dr": "2030-01-01 00:00:10", "error": 0}  # fmt: skip
    path = f"{deployment.url}/sms-events/bsg/bsg_default/{TOKEN}"
    answer = httpx.post(path, json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    assert httpx.post(path, json=body, timeout=30).json()["status"] == "duplicate"
    wrong = httpx.post(f"{deployment.url}/sms-events/bsg/bsg_default/{'x' * 36}", json=body, timeout=30)
    assert (wrong.status_code, wrong.json()["field"]) == (403, "token")
    events = wait_for("the BSG asset event", lambda: [
        e for e in deployment.get("/api/v2/assets/events", limit=100)["asset_events"]
        if e["uri"] == "sms://bsg/bsg_default"], 60, deployment)  # fmt: skip
    assert events[0]["extra"]["counts"] == {"delivered": 1} and events[0]["extra"]["group"] == "0123456789abcdef"
    log = (deployment.home / "api-server.log").read_text(errors="replace")
    assert "/sms-events/bsg/bsg_default/" in log or "request finished" not in log  # the access line, if any
    assert TOKEN not in log
