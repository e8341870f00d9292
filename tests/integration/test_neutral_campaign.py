"""The provider-neutral operator, sensor and trigger against all three sandbox providers.

Each behaviour is checked once per provider: the same DAG code must work whatever the
connection's type. The example DAG's end-to-end run is tests/e2e/test_example_any_provider.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG, BaseOperator, TaskDeferred

from airflow_sms_provider import status_map
from airflow_sms_provider.exceptions import SmsCampaignFailedError, SmsValidationError
from airflow_sms_provider.operators.campaign import SmsCampaignOperator, options_for
from airflow_sms_provider.protocols import bsg as bsg_proto
from airflow_sms_provider.protocols import mobizon as mobizon_proto
from airflow_sms_provider.protocols import ogangi as ogangi_proto
from airflow_sms_provider.providers import hook_for
from airflow_sms_provider.sensors.campaign import SmsCampaignSensor, campaign_ids
from airflow_sms_provider.triggers.campaign import SmsCampaignTrigger
from tests.e2e.test_example_any_provider import sent_texts
from tests.helpers import DurableStore, run_dag, sandbox_requests, set_clock, task_states, xcom

PROVIDERS = ["mobizon", "bsg", "ogangi"]
NUMBERS = ["77011112201", "77011112202", "77011112205"]
SENDER = {"mobizon": "MyShop", "bsg": "MyShop", "ogangi": "24365"}
FINAL_WORD = {"mobizon": "DONE", "bsg": "done", "ogangi": "FINISHED"}



class TI:
    dag_id, task_id, run_id, map_index = "dag", "send", "manual__1", -1

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def context(store: DurableStore | None = None) -> dict[str, Any]:
    return {"ti": TI(), "run_id": TI.run_id, "task_state_store": store or DurableStore()}


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest, sandbox_url: str) -> str:
    """Each test runs once per provider, its connection pointing at the sandbox, the clock stopped."""
    request.getfixturevalue(f"{request.param}_conn")
    set_clock(sandbox_url, speed=0)
    return request.param


def conn_id(provider: str) -> str:
    return f"{provider}_default"


def operator(provider: str, **kwargs: Any) -> SmsCampaignOperator:
    args = {"task_id": "send", "conn_id": conn_id(provider), "text": "Spring sale: -20% until Sunday",
            "recipients": NUMBERS, "sender": SENDER}
    return SmsCampaignOperator(**{**args, **kwargs})


def campaigns_sent(url: str, provider: str) -> int:
    paths = {"mobizon": "/campaign/send", "bsg": "/api/campaigns/sms/send", "ogangi": "/createBroadcastFromJson/"}
    return sum(1 for r in sandbox_requests(url, provider) if paths[provider] in r["path"])


# ------------------------------------------------------------------ the status vocabulary


@pytest.mark.parametrize(
    ("name", "documented"),
    [("mobizon", mobizon_proto.CAMPAIGN_STATUSES), ("bsg", bsg_proto.CAMPAIGN_STATUSES),
     ("ogangi", tuple(ogangi_proto.BROADCAST_STATUSES.values()))],
)
def test_every_documented_status_has_one_word(name: str, documented: tuple[str, ...]) -> None:
    table = status_map.TABLES[name]
    assert set(table) == set(documented)
    assert set(table.values()) == set(status_map.STATUSES)


def test_overall_status() -> None:
    def of(*words: str) -> dict[str, dict[str, str]]:
        return {str(i): {"status": w, "provider_status": w.upper()} for i, w in enumerate(words)}

    assert status_map.overall(of("done", "running", "failed"))[0] == "failed"
    assert status_map.overall(of("done", "done")) == ("done", "all 2 campaign(s) done")
    assert status_map.overall(of("done", "pending", "running")) == (
        "running", "1 of 3 campaign(s) done; running: 2 (RUNNING), pending: 1 (PENDING)")
    assert status_map.overall(of("pending"))[0] == "pending"


def test_ogangi_words_follow_its_sensor() -> None:
    assert status_map.describe("ogangi", None) == {"status": "failed", "provider_status": "DELETED"}
    running_but_ended = {"id": 1, "status": 1, "endDate": "2026-01-01", "sentMessages": 2, "expectedMessages": 2}
    assert status_map.describe("ogangi", running_but_ended)["status"] == "done"
    assert status_map.describe("mobizon", {"commonStatus": "SOMETHING_NEW"})["status"] == "pending"


def test_campaign_ids_from_summaries() -> None:
    assert campaign_ids({"campaign_ids": [3, 4]}) == [3, 4]
    assert campaign_ids({"campaign_id": 5}) == campaign_ids({"broadcast_id": "5"}) == campaign_ids("5") == [5]
    assert campaign_ids("[1, 2]") == campaign_ids("1,2") == [1, 2]
    for bad in (None, [], "x", {"other": 1}, [0]):
        with pytest.raises(SmsValidationError):
            campaign_ids(bad)


# ------------------------------------------------------------------ the operator


def test_sends_one_campaign_and_summarises(provider: str, sandbox_url: str) -> None:
    result = operator(provider, recipients=[*NUMBERS, "0701112204"], on_invalid="skip").execute(context())

    assert result["provider"] == provider and result["conn_id"] == conn_id(provider)
    assert (result["accepted"], result["rejected"]) == (3, 1)
    (campaign_id,) = result["campaign_ids"]
    assert result["status"] == "pending"  # the clock stands still: nothing went out yet
    assert result["campaigns"][str(campaign_id)]["status"] == "pending"
    assert result["details"]["invalid"]["rejected"] == 1
    assert sent_texts(sandbox_url, provider) == dict.fromkeys(NUMBERS, "Spring sale: -20% until Sunday")


def test_placeholders_personalise_on_every_provider(provider: str, sandbox_url: str) -> None:
    rows = [{"phone": n, "name": name} for n, name in zip(NUMBERS, ["Aigerim", "Daniyar", "Asel"], strict=True)]
    operator(provider, text="Hi {name}!", recipients=rows).execute(context())

    assert sent_texts(sandbox_url, provider) == {
        "77011112201": "Hi Aigerim!", "77011112202": "Hi Daniyar!", "77011112205": "Hi Asel!"}


def test_a_retry_resumes_instead_of_sending_again(provider: str, sandbox_url: str) -> None:
    store = DurableStore()
    first = operator(provider).execute(context(store))
    again = operator(provider).execute(context(store))

    assert again["campaign_ids"] == first["campaign_ids"]
    assert campaigns_sent(sandbox_url, provider) == 1


@pytest.mark.parametrize("personalised", [False, True], ids=["one-text", "placeholders"])
def test_the_work_runs_without_any_provider_operator(provider: str, sandbox_url: str, personalised: bool,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """#11: the neutral operator runs the provider's campaign work (campaigns/), never another
    operator's unwrapped ``execute``: no operator is built during its execute, and the same
    durable state keys serve a retry."""
    op = operator(provider, **({"text": "Hi {name}!", "recipients": [{"phone": n, "name": "A"} for n in NUMBERS]}
                               if personalised else {}))
    built: list[str] = []
    original = BaseOperator.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(BaseOperator, "__init__", counting)
    store = DurableStore()
    first = op.execute(context(store))
    again = op.execute(context(store))

    assert built == []
    assert again["campaign_ids"] == first["campaign_ids"] and campaigns_sent(sandbox_url, provider) == 1


def test_provider_options_apply_to_their_provider_only(provider: str, sandbox_url: str) -> None:
    options = {"bsg": {"validity": 24}, "mobizon": {"validity": 1440}, "ogangi": {"check_shortcode": False}}
    result = operator(provider, provider_options=options).execute(context())
    assert result["campaign_ids"]

    with pytest.raises(SmsValidationError, match="no_such_option"):
        operator(provider, provider_options={provider: {"no_such_option": 1}}).execute(context())
    with pytest.raises(SmsValidationError, match="wait_for_completion"):
        options_for({"wait_for_completion": True}, provider)
    assert campaigns_sent(sandbox_url, provider) == 1  # the bad ones sent nothing


def test_wait_in_process(provider: str, sandbox_url: str) -> None:
    set_clock(sandbox_url, speed=3600)
    result = operator(provider, wait_for_completion=True, deferrable=False, poll_interval=0.05).execute(context())

    assert result["status"] == "done"
    (word,) = {c["provider_status"] for c in result["campaigns"].values()}
    assert word == FINAL_WORD[provider]


def test_deferral_hands_the_summary_to_the_trigger(provider: str, sandbox_url: str) -> None:
    op = operator(provider, wait_for_completion=True, deferrable=True, poll_interval=0.05)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context())
    trigger, summary = deferred.value.trigger, deferred.value.kwargs["summary"]
    assert isinstance(trigger, SmsCampaignTrigger)
    assert (trigger.conn_type, trigger.campaign_ids) == (provider, summary["campaign_ids"])

    set_clock(sandbox_url, advance=3600)
    event = run_trigger(trigger)
    result = op.execute_complete(context(), event, summary=summary)
    assert (result["status"], result["accepted"]) == ("done", 3)


def test_wrong_connection_type_is_refused(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WEB", json.dumps({"conn_type": "http", "host": "example.com"}))
    with pytest.raises(SmsValidationError, match="not an SMS provider of this package"):
        operator("mobizon", conn_id="web").execute(context())
    with pytest.raises(SmsValidationError, match="is not defined"):
        operator("mobizon", conn_id="nowhere").execute(context())


# ------------------------------------------------------------------ the sensor and the trigger


def new_campaign(provider: str, text: str = "Spring sale") -> int:
    return operator(provider, text=text).execute(context())["campaign_ids"][0]


def fail(provider: str, url: str, campaign_id: int) -> None:
    """Make the campaign end as a failure the provider's way."""
    if provider == "bsg":
        httpx.post(f"{url}/_sandbox/bsg/campaigns/{campaign_id}/status", json={"status": "spam"}).raise_for_status()
    elif provider == "ogangi":
        hook = hook_for(conn_id(provider))
        hook.stop_broadcast(campaign_id)
        hook.close()
    else:
        set_clock(url, advance=3600)  # the "moderate decline" campaign is declined after moderation


def run_trigger(trigger: SmsCampaignTrigger) -> dict[str, Any]:
    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first_event(), timeout=30))


def test_sensor_pokes_until_done(provider: str, sandbox_url: str) -> None:
    campaign_id = new_campaign(provider)
    sensor = SmsCampaignSensor(task_id="wait", conn_id=conn_id(provider), campaign_ids={"campaign_ids": [campaign_id]})

    assert sensor.poke({}).is_done is False
    set_clock(sandbox_url, advance=3600)
    done = sensor.poke({})

    assert done.is_done
    assert done.xcom_value == {"provider": provider, "campaign_ids": [campaign_id], "status": "done",
                               "campaigns": {str(campaign_id): {"status": "done",
                                                                "provider_status": FINAL_WORD[provider]}}}


def test_sensor_and_trigger_fail_alike(provider: str, sandbox_url: str) -> None:
    campaign_id = new_campaign(provider, text="moderate decline: Spring sale")
    fail(provider, sandbox_url, campaign_id)

    with pytest.raises(SmsCampaignFailedError, match="failed"):
        SmsCampaignSensor(task_id="wait", conn_id=conn_id(provider), campaign_ids=campaign_id).poke({})
    event = run_trigger(SmsCampaignTrigger(conn_id(provider), provider, [campaign_id], poll_interval=0.05))
    assert event["status"] == "failed"
    word = event["campaigns"][str(campaign_id)]["provider_status"]
    assert status_map.neutral_status(provider, word) == "failed"
    with pytest.raises(SmsCampaignFailedError):
        SmsCampaignSensor(task_id="wait", conn_id=conn_id(provider), campaign_ids=campaign_id).execute_complete(
            {}, event, provider=provider)


def test_trigger_reports_a_wrong_key_as_fatal(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BSG_WRONG", json.dumps(
        {"conn_type": "bsg", "host": sandbox_url, "password": "test_wrongwrongwrong", "extra": {"retry_attempts": 1}}))
    event = run_trigger(SmsCampaignTrigger("bsg_wrong", "bsg", [1], poll_interval=0.05))
    assert (event["status"], event["fatal"]) == ("error", True)
    assert "test_wrongwrongwrong" not in event["message"]


def test_sensor_in_reschedule_mode_under_dag_test(airflow_db: None, bsg_conn: str, sandbox_url: str) -> None:
    reads = lambda: [r for r in sandbox_requests(sandbox_url, "bsg")  # noqa: E731
                     if r["method"] == "GET" and r["path"].startswith("/api/campaigns/")]
    set_clock(sandbox_url, speed=0)
    stop = threading.Event()

    def time_flies_after_first_poke() -> None:
        while not stop.wait(0.05):
            if reads():
                set_clock(sandbox_url, advance=3600)
                return

    watcher = threading.Thread(target=time_flies_after_first_poke, daemon=True)
    with DAG(dag_id="neutral_sensor_reschedule", schedule=None,
             start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        send = SmsCampaignOperator(task_id="send", conn_id=bsg_conn, text="Spring sale", recipients=NUMBERS,
                                   sender="MyShop")
        SmsCampaignSensor(task_id="wait", conn_id=bsg_conn, campaign_ids=send.output, mode="reschedule",
                          poke_interval=0.1, timeout=60)

    watcher.start()
    try:
        run = run_dag(dag)
    finally:
        stop.set()
        watcher.join(timeout=5)

    assert task_states(run) == {"send": "success", "wait": "success"}
    assert xcom(run, "wait")["status"] == "done"
    assert len(reads()) == 2  # a poke that rescheduled the task, then one that found it done
