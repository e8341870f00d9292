"""SmsCampaignEventTrigger: the trigger's async generator against the sandbox, per provider.

An AssetWatcher's trigger without a webhook: it polls the campaign and yields one event, with
the receiver's keys, when the campaign is final; then it idles instead of ending (a trigger that
ended would be started again and fire again).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pendulum
import pytest

from airflow_sms_provider.triggers.campaign_event import SmsCampaignEventTrigger
from tests.helpers import add_faults, sandbox_requests, set_clock
from tests.integration.test_neutral_campaign import FINAL_WORD, conn_id, fail, new_campaign, provider  # noqa: F401

CLASSPATH = "airflow_sms_provider.triggers.campaign_event.SmsCampaignEventTrigger"
# new_campaign's audience (test_neutral_campaign.NUMBERS) as each sandbox ends it.
COUNTS = {
    "mobizon": {"counts": {"DELIVRD": 3}, "messages": 3, "delivered": 3, "delivered_ratio": 1.0},
    "bsg": {"counts": {"delivered": 3}, "messages": 3, "delivered": 3, "delivered_ratio": 1.0},
}


async def first(events: AsyncIterator[Any], timeout: float = 30) -> dict[str, Any]:
    return (await asyncio.wait_for(events.__anext__(), timeout)).payload


def test_one_event_when_the_campaign_is_done_then_idle(provider: str, sandbox_url: str) -> None:  # noqa: F811
    campaign_id = new_campaign(provider)
    trigger = SmsCampaignEventTrigger(conn_id(provider), [campaign_id], poll_interval=0.05)

    async def scenario() -> tuple[dict[str, Any], bool]:
        events = trigger.run()
        waiting = asyncio.ensure_future(first(events))
        await asyncio.sleep(0.5)
        assert not waiting.done()  # still sending: no event yet
        await asyncio.to_thread(set_clock, sandbox_url, advance=3600)
        payload = await waiting
        try:
            await asyncio.wait_for(events.__anext__(), 0.3)
            idle = False
        except TimeoutError:
            idle = True
        await events.aclose()
        return payload, idle

    payload, idle = asyncio.run(scenario())

    message = payload.pop("message")
    counts = {key: payload.pop(key) for key in ("counts", "messages", "delivered", "delivered_ratio") if key in payload}
    assert payload == {
        "provider": provider, "source": f"{provider}/{conn_id(provider)}", "campaign_ids": [campaign_id],
        "status": "done", "campaigns": {str(campaign_id): {"status": "done", "provider_status": FINAL_WORD[provider]}},
    }
    # The receiver's shape: counts of final statuses (the provider's words); Ogangi gives none.
    assert counts == COUNTS.get(provider, {})
    assert isinstance(message, str) and message
    assert idle  # no second event, no end


def test_a_failed_campaign_is_an_event_too(provider: str, sandbox_url: str) -> None:  # noqa: F811
    campaign_id = new_campaign(provider, text="moderate decline: Spring sale")
    fail(provider, sandbox_url, campaign_id)

    payload = asyncio.run(first(SmsCampaignEventTrigger(conn_id(provider), [campaign_id], poll_interval=0.05).run()))

    assert payload["status"] == "failed" and payload["campaign_ids"] == [campaign_id]
    assert payload["campaigns"][str(campaign_id)]["status"] == "failed"


def reads(url: str) -> int:
    return sum(1 for r in sandbox_requests(url, "mobizon") if r["path"].endswith("campaign/get"))


def test_a_read_failing_for_a_while_is_read_again(mobizon_conn: str, sandbox_url: str) -> None:
    set_clock(sandbox_url, speed=0)
    campaign_id = new_campaign("mobizon")
    set_clock(sandbox_url, advance=3600)
    before = reads(sandbox_url)
    # Five 503s: the hook's own retries (5 attempts) give up once; the trigger reads again.
    add_faults(sandbox_url, {"provider": "mobizon", "path": "campaign/get", "action": "http_status", "status": 503,
                             "times": 5})

    payload = asyncio.run(first(SmsCampaignEventTrigger(mobizon_conn, [campaign_id], poll_interval=0.05).run()))

    assert payload["status"] == "done"
    assert reads(sandbox_url) - before == 6


def test_a_deleted_campaign_or_missing_connection_is_a_fatal_event(mobizon_conn: str, sandbox_url: str) -> None:
    gone = asyncio.run(first(SmsCampaignEventTrigger(mobizon_conn, [987654], poll_interval=0.05).run()))
    missing = asyncio.run(first(SmsCampaignEventTrigger("no_such_conn", [1], poll_interval=0.05).run()))

    assert gone["status"] == "error" and gone["fatal"] is True and "987654" in gone["message"]
    assert gone["provider"] == "mobizon" and gone["campaign_ids"] == [987654]
    assert missing["status"] == "error" and missing["fatal"] is True and "no_such_conn" in missing["message"]


def test_serialize_round_trip_and_checks() -> None:
    trigger = SmsCampaignEventTrigger("mobizon_default", ["1001", 1002], poll_interval=30)
    classpath, kwargs = trigger.serialize()

    assert (classpath, kwargs) == (CLASSPATH, {"conn_id": "mobizon_default", "campaign_ids": [1001, 1002],
                                               "poll_interval": 30.0, "delivered_ratio": None})
    assert SmsCampaignEventTrigger(**kwargs).serialize() == (classpath, kwargs)
    json.dumps(kwargs)
    with pytest.raises(ValueError, match="at least one campaign id"):
        SmsCampaignEventTrigger("mobizon_default", [])
    ratio = SmsCampaignEventTrigger("bsg_default", [7], delivered_ratio=0.9).serialize()[1]
    assert SmsCampaignEventTrigger(**ratio).delivered_ratio == 0.9


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"delivered_ratio": 0}, "delivered_ratio=0 must be a number with 0.0 < delivered_ratio <= 1.0"),
        ({"delivered_ratio": 1.5}, "delivered_ratio=1.5 must be"),
        ({"delivered_ratio": "0.9"}, "delivered_ratio='0.9' must be"),
        ({"delivered_ratio": True}, "delivered_ratio=True must be"),
        ({"poll_interval": 0}, "poll_interval=0 must be a number with poll_interval > 0.0"),
        ({"campaign_ids": [1, -2]}, "campaign id -2 is not a positive whole number"),
        ({"campaign_ids": [0]}, "campaign id 0 is not"),
        ({"campaign_ids": "1001"}, "at least one campaign id"),
        ({"conn_id": ""}, "conn_id='' must be a connection id"),
    ],
)
def test_parameters_are_checked_with_clear_errors(kwargs: dict[str, Any], problem: str) -> None:
    args: dict[str, Any] = {"conn_id": "bsg_default", "campaign_ids": [1001], **kwargs}
    with pytest.raises(ValueError, match=re.escape(problem)):
        SmsCampaignEventTrigger(**args)


def test_a_delivered_ratio_fires_before_the_campaign_is_final(bsg_conn: str, sandbox_url: str) -> None:
    set_clock(sandbox_url, speed=0)
    # One message a simulated second, final 5 s after: the first two are delivered well before the last.
    httpx.post(f"{sandbox_url}/_sandbox/bsg/config", json={"send_rate": 1}).raise_for_status()
    campaign_id = new_campaign("bsg")  # 3 numbers, all delivered in the end (test_neutral_campaign.NUMBERS)
    trigger = SmsCampaignEventTrigger(bsg_conn, [campaign_id], poll_interval=0.05, delivered_ratio=0.6)

    async def scenario() -> dict[str, Any]:
        waiting = asyncio.ensure_future(first(trigger.run()))
        # Creation takes 2 s; message i leaves at 2 + (i + 1) s and is final 5 s later: at 8 s one is delivered.
        await asyncio.to_thread(set_clock, sandbox_url, advance=8)
        await asyncio.sleep(0.5)
        assert not waiting.done()  # one of three delivered: 0.33 < 0.6
        await asyncio.to_thread(set_clock, sandbox_url, advance=1)  # 9 s: two of three, the third final at 10 s
        return await waiting

    payload = asyncio.run(scenario())
    assert payload["status"] == "ratio_reached" and "2 of 3 messages delivered" in payload["message"]
    assert (payload["counts"], payload["delivered"], payload["messages"]) == ({"delivered": 2}, 2, 3)
    state = httpx.get(f"{sandbox_url}/_sandbox/bsg/state", params={"messages": "false"}).json()
    assert state["campaigns"][0]["status"] == "sending"  # not final yet


def test_a_delivered_ratio_without_counts_is_a_fatal_event(ogangi_conn: str) -> None:
    trigger = SmsCampaignEventTrigger(ogangi_conn, [1], poll_interval=0.05, delivered_ratio=0.5)
    payload = asyncio.run(first(trigger.run()))
    assert payload["status"] == "error" and payload["fatal"] is True
    assert "delivered_ratio needs per-status counts" in payload["message"]


def test_an_asset_watcher_dag_parses_and_serializes() -> None:
    from airflow.providers.common.compat.sdk import DAG
    from airflow.sdk import Asset, AssetWatcher
    from airflow.serialization import serialized_objects

    trigger = SmsCampaignEventTrigger("mobizon_default", [1001])
    asset = Asset("sms://mobizon/mobizon_default", watchers=[AssetWatcher(name="campaign_1001", trigger=trigger)])
    with DAG(dag_id="after_campaign", schedule=[asset], start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        pass

    # DagSerialization on 3.3, SerializedDAG before: what the DAG processor stores.
    serializer = getattr(serialized_objects, "DagSerialization", serialized_objects.SerializedDAG)
    serialized = json.dumps(serializer.to_dict(dag), default=str)
    assert CLASSPATH in serialized and "campaign_1001" in serialized
