"""End to end through a real Airflow API server with the SmsEventsPlugin mounted.

A campaign sent through the sandbox; the sandbox posts its delivery reports (signed, some twice)
to ``/sms-events/mobizon/mobizon_default`` on the API server; the plugin checks them with the
connection's ``webhook_secret`` and records one asset event, which the REST API then lists.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_sms_provider.events.mobizon import mobizon_sign
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.sandbox import SandboxServer
from tests.api_server import airflow_api_server
from tests.conftest import mobizon_conn_uri

SECRET = "apiWebhookSecret-0123456789"
PLUGIN = "from airflow_sms_provider.events.plugin import SmsEventsPlugin  # noqa: F401\n"


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory, sandbox: SandboxServer) -> Iterator[str]:
    home = tmp_path_factory.mktemp("events-api-home")
    plugins = home / "plugins"
    plugins.mkdir()
    (plugins / "sms_events.py").write_text(PLUGIN)
    env = {
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        "AIRFLOW__SMS_EVENTS__QUIET_SECONDS": "0.5",
        "AIRFLOW_CONN_MOBIZON_DEFAULT": mobizon_conn_uri(sandbox.url, webhook_secret=SECRET),
    }
    with airflow_api_server(home, **env) as url:
        yield url


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
