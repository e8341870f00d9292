"""A fourth provider, written entirely here, works through every provider-neutral piece.

``FakeSmsHook`` implements :class:`~airflow_sms_provider.hooks.base.SmsHook` against a tiny
stand-in API (an ``httpx.MockTransport``, sync and async alike) and is registered the way a
provider package declares its hooks: a ``connection-types`` entry of provider info. The
neutral operator (in-process wait and deferral), sensor, trigger, extra link and notifier
then run through it with no change to the package: nothing provider-neutral knows a
provider by name.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any
from urllib.parse import SplitResult

import httpx
import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_sms_provider import providers, status_map
from airflow_sms_provider.campaigns.run import neutral_summary
from airflow_sms_provider.exceptions import SmsCampaignFailedError, SmsNotFoundError, SmsProviderError
from airflow_sms_provider.hooks.base import AsyncReader, CampaignParams, SmsHook
from airflow_sms_provider.links import connection_dashboard_url
from airflow_sms_provider.notifications.sms import SmsNotifier
from airflow_sms_provider.operators.campaign import SmsCampaignOperator
from airflow_sms_provider.sensors.campaign import SmsCampaignSensor
from airflow_sms_provider.triggers.campaign import SmsCampaignTrigger

HOST = "https://api.fakesms.test"
NUMBERS = ["77011112201", "77011112202"]


class StandIn:
    """The fourth provider's API: POST /campaigns, GET /campaigns/{id}, POST /messages.

    A campaign moves queued -> sending -> delivered, one step per read; ``cancel`` ends it failed.
    """

    def __init__(self) -> None:
        self.ids = itertools.count(101)
        self.campaigns: dict[int, dict[str, Any]] = {}
        self.messages: list[dict[str, Any]] = []
        self.reads = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/campaigns":
            body = json.loads(request.content)
            campaign_id = next(self.ids)
            self.campaigns[campaign_id] = {"id": campaign_id, "state": "queued", **body}
            return httpx.Response(201, json=self.campaigns[campaign_id])
        if request.method == "GET" and path.startswith("/campaigns/"):
            self.reads += 1
            campaign = self.campaigns.get(int(path.rsplit("/", 1)[1]))
            if campaign is None:
                return httpx.Response(404, json={"error": "no such campaign"})
            answer = dict(campaign)
            campaign["state"] = {"queued": "sending", "sending": "delivered"}.get(campaign["state"], campaign["state"])
            return httpx.Response(200, json=answer)
        if request.method == "POST" and path == "/messages":
            self.messages.append(json.loads(request.content))
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(404, json={"error": "no route"})


STAND_IN = StandIn()


def _answer(response: httpx.Response) -> dict[str, Any]:
    if response.status_code == 404:
        raise SmsNotFoundError(response.json()["error"], provider="fakesms")
    if response.status_code >= 400:
        raise SmsProviderError(f"HTTP {response.status_code}", provider="fakesms")
    return dict(response.json())


class FakeSmsHook(SmsHook):
    """The fourth provider's hook: only the SmsHook interface, against :class:`StandIn`."""

    conn_name_attr = "fakesms_conn_id"
    default_conn_name = "fakesms_default"
    conn_type = "fakesms"
    hook_name = "Fake SMS"
    status_vocabulary = {"queued": status_map.PENDING, "sending": status_map.RUNNING,
                         "delivered": status_map.DONE, "cancelled": status_map.FAILED}
    campaign_module = __name__

    def __init__(self, fakesms_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fakesms_conn_id = fakesms_conn_id

    @cached_property
    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.get_connection(self.fakesms_conn_id).host,
                            transport=httpx.MockTransport(STAND_IN.handle))

    @property
    def api_base_url(self) -> str:
        return str(self.client.base_url)

    def close(self) -> None:
        self.client.close()

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return _answer(self.client.post("/campaigns", json=dict(body)))

    def read_campaign(self, campaign_id: int) -> dict[str, Any]:
        return _answer(self.client.get(f"/campaigns/{campaign_id}"))

    @classmethod
    def async_campaign_reader(cls, conn: Any) -> tuple[httpx.AsyncClient, AsyncReader]:
        client = httpx.AsyncClient(base_url=conn.host, transport=httpx.MockTransport(STAND_IN.handle))

        async def read(client: httpx.AsyncClient, campaign_id: int) -> dict[str, Any]:
            return _answer(await client.get(f"/campaigns/{campaign_id}"))

        return client, read

    @classmethod
    def campaign_word(cls, data: Mapping[str, Any] | None) -> str:
        return str((data or {}).get("state") or "")

    @classmethod
    def dashboard_page(cls, api: SplitResult, campaign_id: int) -> str | None:
        return f"https://dashboard.fakesms.test/c/{campaign_id}"

    def send_text(self, numbers: Sequence[str], text: str, sender: Any) -> list[str]:
        _answer(self.client.post("/messages", json={"to": list(numbers), "text": text, "from": sender}))
        return []


def run_campaign(hook: FakeSmsHook, params: CampaignParams, context: Any, log: Any) -> dict[str, Any]:
    """This provider's campaigns/ entry (``FakeSmsHook.campaign_module``)."""
    numbers = [str(n) for n in params.recipients]
    created = hook.create({"text": params.text, "to": numbers, "from": params.sender, **params.options})
    return neutral_summary(hook, params.conn_id, [created["id"]], len(numbers), 0,
                           {created["id"]: created["state"]}, created)


PROVIDER_INFO = {
    "connection-types": [{"hook-class-name": f"{__name__}.FakeSmsHook", "connection-type": "fakesms",
                          "hook-name": "Fake SMS"}],
}


@pytest.fixture
def fakesms(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AIRFLOW_CONN_FAKESMS_DEFAULT", json.dumps({"conn_type": "fakesms", "host": HOST}))
    assert providers.register_provider_info(PROVIDER_INFO) == ["fakesms"]
    try:
        yield "fakesms_default"
    finally:
        providers.unregister("fakesms")


class TI:
    dag_id, task_id, run_id, map_index = "dag", "send", "manual__1", -1

    def __init__(self, task: Any) -> None:
        self.task, self.pushed = task, {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def run_trigger(trigger: SmsCampaignTrigger) -> dict[str, Any]:
    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first_event(), timeout=30))


def operator(conn_id: str, **kwargs: Any) -> SmsCampaignOperator:
    return SmsCampaignOperator(task_id="send", conn_id=conn_id, text="Spring sale", recipients=NUMBERS,
                               sender={"fakesms": "ACME", "bsg": "MyShop"}, poll_interval=0, **kwargs)


def test_neutral_operator_sends_waits_and_links(fakesms: str) -> None:
    op = operator(fakesms, wait_for_completion=True, deferrable=False, provider_options={"fakesms": {"tag": "x"}})
    ti = TI(op)
    result = op.execute({"ti": ti})

    (campaign_id,) = result["campaign_ids"]
    assert STAND_IN.campaigns[campaign_id] | {"state": "?"} == {
        "id": campaign_id, "state": "?", "text": "Spring sale", "to": NUMBERS, "from": "ACME", "tag": "x"}
    assert (result["provider"], result["accepted"], result["status"]) == ("fakesms", 2, "done")
    assert result["campaigns"] == {str(campaign_id): {"status": "done", "provider_status": "delivered"}}
    assert ti.pushed == {"sms_campaign_link": f"https://dashboard.fakesms.test/c/{campaign_id}"}
    assert connection_dashboard_url(fakesms, 7) == "https://dashboard.fakesms.test/c/7"


def test_neutral_operator_defers_to_the_trigger(fakesms: str) -> None:
    op = operator(fakesms, wait_for_completion=True, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": TI(op)})
    trigger, summary = deferred.value.trigger, deferred.value.kwargs["summary"]
    # Plain values only: the triggerer rebuilds it from what serialize() says.
    path, kwargs = trigger.serialize()
    assert path == "airflow_sms_provider.triggers.campaign.SmsCampaignTrigger"
    assert kwargs == {"conn_id": fakesms, "conn_type": "fakesms", "campaign_ids": summary["campaign_ids"],
                      "poll_interval": 0.0}
    event = run_trigger(SmsCampaignTrigger(**kwargs))
    assert event["status"] == "done"
    assert op.execute_complete({}, event, summary=summary)["status"] == "done"


def test_sensor_and_trigger_decide_alike(fakesms: str) -> None:
    hook = FakeSmsHook()
    campaign_id = hook.create({"text": "t", "to": NUMBERS})["id"]
    sensor = SmsCampaignSensor(task_id="wait", conn_id=fakesms, campaign_ids={"campaign_ids": [campaign_id]})
    assert sensor.poke({}).is_done is False  # queued
    assert sensor.poke({}).is_done is False  # sending
    done = sensor.poke({})
    assert done.is_done and done.xcom_value["campaigns"] == {
        str(campaign_id): {"status": "done", "provider_status": "delivered"}}

    cancelled = hook.create({"text": "t", "to": NUMBERS})["id"]
    STAND_IN.campaigns[cancelled]["state"] = "cancelled"
    with pytest.raises(SmsCampaignFailedError, match="cancelled"):
        SmsCampaignSensor(task_id="wait", conn_id=fakesms, campaign_ids=cancelled).poke({})
    event = run_trigger(SmsCampaignTrigger(fakesms, "fakesms", [cancelled], 0))
    assert (event["status"], event["campaigns"][str(cancelled)]["provider_status"]) == ("failed", "cancelled")

    # Gone at the provider: fatal, named with its id and host, in poke and in the trigger alike.
    with pytest.raises(SmsNotFoundError, match=r"campaign 999 not found at https://api\.fakesms\.test"):
        SmsCampaignSensor(task_id="wait", conn_id=fakesms, campaign_ids=999).poke({})
    event = run_trigger(SmsCampaignTrigger(fakesms, "fakesms", [999], 0))
    assert (event["status"], event["fatal"]) == ("error", True)
    assert "campaign 999 not found at https://api.fakesms.test" in event["message"]
    hook.close()


def test_notifier_sends_through_the_fourth_provider(fakesms: str) -> None:
    before = len(STAND_IN.messages)
    SmsNotifier(conn_id=fakesms, recipients="+77011112201", message="Load failed", sender={"fakesms": "ACME"}
                ).notify({})
    assert STAND_IN.messages[before:] == [{"to": ["77011112201"], "text": "Load failed", "from": "ACME"}]


def test_async_notifier_without_an_async_twin_sends_from_a_thread(fakesms: str) -> None:
    before = len(STAND_IN.messages)
    notifier = SmsNotifier(conn_id=fakesms, recipients="+77011112201", message="Deadline missed",
                           sender={"fakesms": "ACME"})
    asyncio.run(notifier.async_notify({}))
    assert STAND_IN.messages[before:] == [{"to": ["77011112201"], "text": "Deadline missed", "from": "ACME"}]


def test_status_vocabulary_is_the_hooks(fakesms: str) -> None:
    assert "fakesms" in status_map.TABLES
    assert status_map.describe("fakesms", {"state": "sending"}) == {"status": "running", "provider_status": "sending"}
    assert status_map.neutral_status("fakesms", "something new") == "pending"


def test_a_provider_package_airflow_knows_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """A type neither this package nor register_provider_info knows is looked up in Airflow's hook
    registry (another installed provider package); only an SmsHook there counts."""
    import sys
    import types

    class Manager:
        hooks = {"othersms": types.SimpleNamespace(hook_class_name=f"{__name__}.FakeSmsHook"),
                 "web": types.SimpleNamespace(hook_class_name="airflow.providers.common.compat.sdk.BaseHook")}

    runtime = types.ModuleType("airflow.sdk.providers_manager_runtime")
    runtime.ProvidersManagerTaskRuntime = Manager  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "airflow.sdk.providers_manager_runtime", runtime)

    assert providers.provider_named("othersms").hook_class() is FakeSmsHook
    with pytest.raises(SmsProviderError, match="not an SMS provider"):
        providers.provider_named("web")
