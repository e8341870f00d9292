"""BSG operators, sensor and trigger against the sandbox: splitting, crash safety, waiting."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

try:
    from airflow.sdk.exceptions import AirflowRescheduleException
except ImportError:  # Airflow 3.0
    from airflow.exceptions import AirflowRescheduleException  # type: ignore[no-redef]

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.operators.bsg import (
    BsgBulkCampaignOperator,
    BsgCampaignStatsOperator,
    BsgGroupsCampaignOperator,
    BsgIndividualCampaignOperator,
    BsgStopCampaignOperator,
)
from airflow_sms_provider.protocols import bsg as proto
from airflow_sms_provider.sensors.bsg import BsgCampaignSensor
from airflow_sms_provider.triggers.bsg import BsgCampaignsTrigger
from tests.helpers import DurableStore, add_faults, sandbox_requests, set_clock


def bsg_state(url: str, messages: bool = True) -> dict[str, Any]:
    response = httpx.get(f"{url}/_sandbox/bsg/state", params={"messages": str(messages).lower()})
    response.raise_for_status()
    return response.json()


def bsg_config(url: str, **changes: Any) -> None:
    httpx.post(f"{url}/_sandbox/bsg/config", json=changes).raise_for_status()


def force(url: str, campaign_id: int, status: str) -> None:
    httpx.post(f"{url}/_sandbox/bsg/campaigns/{campaign_id}/status", json={"status": status}).raise_for_status()



def context(store: DurableStore | None = None, run_id: str = "manual__1") -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="dag", task_id="send", run_id=run_id, map_index=-1)
    return {"ti": ti, **({"task_state_store": store} if store is not None else {})}


@pytest.fixture
def frozen(bsg_conn: str, sandbox_url: str) -> str:
    """The sandbox with its clock stopped; returns its URL."""
    set_clock(sandbox_url, speed=0)
    return sandbox_url


def phones(count: int, start: int = 380500000000) -> list[str]:
    return [str(start + i) for i in range(count)]


# ------------------------------------------------------------------------ splitting


def test_large_audience_is_split_and_every_campaign_is_tracked(frozen: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "audience.csv"
    csv_path.write_text("phone\n" + "\n".join(phones(10_004)) + "\n")
    bsg_config(frozen, send_rate=100_000)
    summary = BsgBulkCampaignOperator(task_id="send", recipients=str(csv_path), text="Sale", sender="Vet klinika"
                                      ).execute(context())  # fmt: skip
    state = bsg_state(frozen)
    by_id = {c["id"]: c for c in state["campaigns"]}  # created concurrently: in any order
    assert [by_id[i]["phones"] for i in summary["campaign_ids"]] == [10_000, 4]  # the summary: chunk order
    assert sorted(summary["campaign_ids"]) == sorted(by_id) and summary["phones"] == 10_004
    refs = [m["reference_id"] for c in state["campaigns"] for m in c["messages"]]
    assert len(set(refs)) == 10_004 and all(r.startswith(summary["reference_prefix"]) for r in refs)

    sensor = BsgCampaignSensor(task_id="wait", campaign_ids=summary, poke_interval=0.01)
    assert not sensor.poke({}).is_done
    set_clock(frozen, advance=30)
    done = sensor.poke({})
    assert done.is_done and set(done.xcom_value["campaigns"]) == {str(i) for i in summary["campaign_ids"]}


# ------------------------------------------------------------------------ crash safety


def test_retry_resumes_after_the_chunks_an_earlier_try_created(frozen: str) -> None:
    store = DurableStore()
    # The third campaign's request fails with a 502 before the sandbox creates it.
    add_faults(frozen, {"provider": "bsg", "path": "/sms/send$", "skip": 2, "action": "http_status", "status": 502})
    op = BsgBulkCampaignOperator(task_id="send", recipients=phones(5), text="Hi", sender="Vet klinika",
                                 chunk_size=2, max_concurrent_creates=1)  # fmt: skip
    with pytest.raises(exc.SmsAmbiguousError):
        op.execute(context(store))
    assert len(bsg_state(frozen)["campaigns"]) == 2
    assert store.values["bsg_bulk"]["pending"] == [2]

    summary = op.execute(context(store))  # the retry
    state = bsg_state(frozen)
    assert [c["phones"] for c in state["campaigns"]] == [2, 2, 1]
    assert summary["campaign_ids"] == [c["id"] for c in state["campaigns"]]


def test_unanswered_creation_is_found_by_reference_id_not_sent_twice(
    sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY

    conn = {"conn_type": "bsg", "host": sandbox_url, "password": SANDBOX_BSG_API_KEY,
            "extra": {"retry_base_delay": 0.01, "timeout": 0.5}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_BSG_SLOW", json.dumps(conn))
    set_clock(sandbox_url, speed=0)
    # The sandbox creates the campaign, then holds the answer past the client's timeout.
    add_faults(sandbox_url, {"provider": "bsg", "path": "/sms/send-individual$", "action": "timeout_after",
                             "seconds": 1.2})  # fmt: skip
    rows = [{"phone": "380661231231", "name": "Olena"}, {"phone": "380661231232", "name": "Taras"}]
    op = BsgIndividualCampaignOperator(task_id="send", bsg_conn_id="bsg_slow", recipients=rows, text="Hi {name}",
                                       sender="Vet klinika")  # fmt: skip
    summary = op.execute(context())
    state = bsg_state(sandbox_url)
    assert len(state["campaigns"]) == 1 and summary["campaign_ids"] == [state["campaigns"][0]["id"]]
    assert [m["text"] for m in state["campaigns"][0]["messages"]] == ["Hi Olena", "Hi Taras"]
    deadline = time.monotonic() + 10  # the held answer is logged when it goes out: not in the next test
    while not any(r["path"].endswith("send-individual") for r in sandbox_requests(sandbox_url, "bsg")):
        assert time.monotonic() < deadline, "the held creation never finished"
        time.sleep(0.05)


def test_retry_without_durable_state_recognises_its_own_campaign(frozen: str) -> None:
    op = BsgBulkCampaignOperator(task_id="send", recipients=phones(3), text="Hi", sender="Vet klinika")
    first = op.execute(context())
    set_clock(frozen, advance=60)  # past the duplicate window: only the reference_ids can tell
    second = op.execute(context())  # a retry of the same run, nothing recorded
    assert second["campaign_ids"] == first["campaign_ids"]
    state = bsg_state(frozen, messages=False)
    assert len(state["campaigns"]) == 1 and state["auth"]["duplicates"] == 1

    other_run = op.execute(context(run_id="manual__2"))  # a new run is a new campaign
    assert other_run["campaign_ids"] != first["campaign_ids"]


def test_reference_id_of_someone_else_is_not_mistaken_for_ours(frozen: str) -> None:
    rows = [{"phone": "380661231231", "reference_id": "Shared1"}]
    BsgBulkCampaignOperator(task_id="a", recipients=rows, text="Hi", sender="Vet klinika").execute(context())
    other = [{"phone": "380661239999", "reference_id": "Shared1"}]
    with pytest.raises(exc.SmsValidationError, match=r"already belongs to message .* for another phone"):
        BsgBulkCampaignOperator(task_id="b", recipients=other, text="Hi", sender="Vet klinika").execute(context())


def test_groups_retry_uses_the_recorded_campaign_and_refuses_to_guess(frozen: str) -> None:
    store = DurableStore()
    op = BsgGroupsCampaignOperator(task_id="g", groups=[1864275], text="Hi {12}", sender="Vet klinika")
    first = op.execute(context(store))
    assert op.execute(context(store)) == first
    assert len(bsg_state(frozen)["campaigns"]) == 1

    store.values["bsg_groups"] = {"pending": True}  # a try died while its request was in flight
    with pytest.raises(exc.SmsFatalError, match="may exist"):
        op.execute(context(store))
    assert len(bsg_state(frozen)["campaigns"]) == 1


# ------------------------------------------------------------------------ stop and statistics


def test_stop_operator(frozen: str) -> None:
    bsg_config(frozen, creation_delay=1, send_rate=1)
    ids = BsgBulkCampaignOperator(task_id="send", recipients=phones(5), text="Hi", sender="Vet klinika",
                                  chunk_size=3).execute(context())["campaign_ids"]  # fmt: skip
    with pytest.raises(exc.SmsProviderError, match="still in creation") as err:
        BsgStopCampaignOperator(task_id="stop", campaign_ids=ids).execute({})
    assert not isinstance(err.value, exc.SmsFatalError)  # a retry shortly after will work

    set_clock(frozen, advance=2)
    result = BsgStopCampaignOperator(task_id="stop", campaign_ids=ids).execute({})
    assert result == {"stopped": ids, "already_final": {}, "statuses": {str(i): "stopped" for i in ids}}
    again = BsgStopCampaignOperator(task_id="stop", campaign_ids=",".join(map(str, ids))).execute({})
    assert again["stopped"] == [] and again["already_final"] == {str(i): "stopped" for i in ids}
    with pytest.raises(exc.SmsConflictError):
        BsgStopCampaignOperator(task_id="stop", campaign_ids=ids, finished_ok=False).execute({})


def test_stats_operator_adds_up(frozen: str) -> None:
    summary = BsgBulkCampaignOperator(task_id="send", recipients=phones(5, 380661230010), text="Hi",
                                      sender="Vet klinika", chunk_size=3).execute(context())  # fmt: skip
    set_clock(frozen, advance=120)
    stats = BsgCampaignStatsOperator(task_id="stats", campaign_ids=summary, include_messages=True,
                                     max_reported=2).execute({})  # fmt: skip
    assert stats["campaign_ids"] == summary["campaign_ids"] and stats["total_phones"] == 5
    assert stats["statistics"]["delivered"] == 4 and stats["statistics"]["undelivered"] == 1  # ...13
    assert sum(stats["statistics"].values()) == 5
    assert stats["messages"]["counts"] == {"delivered": 4, "undelivered": 1} and len(stats["messages"]["examples"]) == 2
    assert stats["total_price"] == "0.0750" and stats["currency"] == "USD"


# ------------------------------------------------------------------------ the sensor's modes


def test_sensor_poke_mode_waits_for_every_campaign(bsg_conn: str, sandbox_url: str) -> None:
    set_clock(sandbox_url, speed=2000)
    ids = BsgBulkCampaignOperator(task_id="send", recipients=phones(4), text="Hi", sender="Vet klinika",
                                  chunk_size=2).execute(context())["campaign_ids"]  # fmt: skip
    sensor = BsgCampaignSensor(task_id="wait", campaign_ids=ids, mode="poke", poke_interval=0.02, timeout=30)
    result = sensor.execute({})
    assert result["campaign_ids"] == ids
    assert {c["status"] for c in result["campaigns"].values()} == {"done"}
    assert sum(c["sent"] for c in result["campaigns"].values()) == 4


@pytest.mark.parametrize("status", ["spam", "stopped"])
def test_sensor_fails_with_the_reason(frozen: str, status: str) -> None:
    ids = BsgBulkCampaignOperator(task_id="send", recipients=phones(3), text="Hi", sender="Vet klinika",
                                  chunk_size=2).execute(context())["campaign_ids"]  # fmt: skip
    set_clock(frozen, advance=3)
    if status == "spam":
        force(frozen, ids[1], "spam")
    else:
        BsgStopCampaignOperator(task_id="stop", campaign_ids=ids[1]).execute({})
    with pytest.raises(exc.SmsCampaignFailedError, match=f"campaign {ids[1]} is {status}: ") as err:
        BsgCampaignSensor(task_id="wait", campaign_ids=ids).poke({})
    assert proto.FAILURE_REASONS[status] in str(err.value)
    # Not in the fail set: the sensor keeps waiting instead.
    assert not BsgCampaignSensor(task_id="wait", campaign_ids=ids, failed_statuses=[]).poke({}).is_done


def test_sensor_reschedule_mode(frozen: str) -> None:
    ids = BsgBulkCampaignOperator(task_id="send", recipients=phones(2), text="Hi", sender="Vet klinika"
                                  ).execute(context())["campaign_ids"]  # fmt: skip
    ti = SimpleNamespace(get_first_reschedule_date=lambda context: None)
    sensor = BsgCampaignSensor(task_id="wait", campaign_ids=ids, mode="reschedule", poke_interval=60, timeout=600)
    with pytest.raises(AirflowRescheduleException):
        sensor.execute({"ti": ti})
    set_clock(frozen, advance=60)
    fresh = BsgCampaignSensor(task_id="wait", campaign_ids=ids, mode="reschedule", poke_interval=60, timeout=600)
    assert fresh.execute({"ti": ti})["campaigns"][str(ids[0])]["status"] == "done"


def run_trigger(trigger: BsgCampaignsTrigger) -> dict[str, Any]:
    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first_event(), timeout=30))


def test_deferrable_sensor_and_trigger_survive_expiring_tokens(bsg_conn: str, sandbox_url: str) -> None:
    set_clock(sandbox_url, speed=0)
    bsg_config(sandbox_url, send_rate=10)  # 150 phones: 2 s creation + 15 s sending + 5 s delivery
    ids = BsgBulkCampaignOperator(task_id="send", recipients=phones(300), text="Hi", sender="Vet klinika",
                                  chunk_size=150).execute(context())["campaign_ids"]  # fmt: skip
    sensor = BsgCampaignSensor(task_id="wait", campaign_ids=json.dumps(ids), deferrable=True, poke_interval=0.02)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, BsgCampaignsTrigger) and trigger.campaign_ids == ids
    assert deferred.value.method_name == "execute_complete"

    # Tokens live 8 simulated seconds (1.6 s real at speed 5) while the campaigns take 22:
    # tokens expire during the wait, and each is renewed without ending it. (At speed 20 a token lived
    # 0.4 s real: on a loaded CI machine a login and the call after it could take longer than that.)
    bsg_config(sandbox_url, jwt_ttl=8)
    set_clock(sandbox_url, speed=5)
    event = run_trigger(trigger)
    assert event["status"] == proto.SUCCEEDED, event
    auth = bsg_state(sandbox_url, messages=False)["auth"]
    assert auth["unauthorized"] >= 1 and auth["logins"] >= 1 + auth["unauthorized"]
    result = sensor.execute_complete({}, event)
    assert result["campaign_ids"] == ids and {c["status"] for c in result["campaigns"].values()} == {"done"}


def test_trigger_reports_a_failed_campaign(frozen: str) -> None:
    ids = BsgBulkCampaignOperator(task_id="send", recipients=phones(2), text="Hi", sender="Vet klinika"
                                  ).execute(context())["campaign_ids"]  # fmt: skip
    set_clock(frozen, advance=3)
    force(frozen, ids[0], "spam")
    event = run_trigger(BsgCampaignsTrigger("bsg_default", ids, 0.01))
    assert event["status"] == proto.FAILED and "spam" in event["message"]
    with pytest.raises(exc.SmsCampaignFailedError, match="spam"):
        BsgCampaignSensor(task_id="wait", campaign_ids=ids).execute_complete({}, event)


def test_trigger_error_event_is_redacted_and_fails_the_sensor(frozen: str, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "bsg", "host": frozen, "password": "test_notthekey123456"}
    monkeypatch.setenv("AIRFLOW_CONN_BSG_BAD", json.dumps(conn))
    event = run_trigger(BsgCampaignsTrigger("bsg_bad", [1], 0.01))
    assert event["status"] == "error" and "login refused" in event["message"]
    assert "test_notthekey123456" not in event["message"]
    # Fatal: a revoked key is not retried.
    with pytest.raises(exc.SmsAuthError, match=r"waiting for campaign\(s\) 1 failed"):
        BsgCampaignSensor(task_id="wait", campaign_ids=[1]).execute_complete({}, event)
