"""iter_delivery_records over loopback HTTP against the sandbox: what each provider's messages become."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.hooks.bsg import BsgHook
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.hooks.ogangi import OgangiHook
from tests.helpers import sandbox_requests, set_clock


def mobizon_campaign(numbers: list[str]) -> int:
    hook = MobizonHook()
    campaign_id = hook.create_campaign("Sale")
    hook.add_recipients(campaign_id, numbers)
    hook.send_campaign(campaign_id)
    return campaign_id


def test_mobizon_records_of_a_finished_campaign(mobizon_conn: str, sandbox_url: str) -> None:
    set_clock(sandbox_url, speed=0)
    # The sandbox's final status by the number's last digits (UNDELIV 13, EXPIRED 66, REJECTD 99).
    campaign_id = mobizon_campaign(["77010000013", "77010000066", "77010000099", "77010000001"])
    set_clock(sandbox_url, advance=3600)
    records = list(MobizonHook().iter_delivery_records([campaign_id], concurrency=2))
    assert [(r.recipient, r.status, r.provider_status) for r in records] == [
        ("77010000013", "undelivered", "UNDELIV"), ("77010000066", "undelivered", "EXPIRED"),
        ("77010000099", "failed", "REJECTD"), ("77010000001", "delivered", "DELIVRD"),
    ]  # fmt: skip
    assert {(r.provider, r.campaign_id, r.parts) for r in records} == {("mobizon", str(campaign_id), 1)}
    assert all(r.cost is not None and r.cost > 0 for r in records)
    assert all(r.created_at is not None and r.updated_at is not None and r.updated_at >= r.created_at
               for r in records)  # fmt: skip
    assert len({r.message_id for r in records}) == 4


def test_mobizon_since_is_the_servers_filter(mobizon_conn: str, sandbox_url: str) -> None:
    set_clock(sandbox_url, speed=0)
    campaign_id = mobizon_campaign(["77010000001", "77010000002"])
    set_clock(sandbox_url, advance=3600)
    records = list(MobizonHook().iter_delivery_records([campaign_id]))
    last = max(r.updated_at for r in records if r.updated_at)
    # The two messages' updates may fall in one whole second or in two (the frozen clock starts at the real
    # time's fraction): inclusive means every record updated at ``last`` or later, at least the latest one.
    expected = sorted(r.message_id for r in records if r.updated_at and r.updated_at >= last)
    since_last = list(MobizonHook().iter_delivery_records([campaign_id], since=last))
    assert sorted(r.message_id for r in since_last) == expected and len(expected) >= 1
    assert list(MobizonHook().iter_delivery_records([campaign_id], since=last + dt.timedelta(seconds=1))) == []
    lists = [r for r in sandbox_requests(sandbox_url, "mobizon") if r["path"].lower().endswith("message/list")]
    assert len(lists) == 3


def test_bsg_records_of_a_finished_campaign(bsg_conn: str, sandbox_url: str) -> None:
    set_clock(sandbox_url, speed=0)
    hook = BsgHook(bsg_conn)
    phones = [f"3806612{i:05d}" for i in range(600)]  # two pages of 500
    campaign = hook.send_bulk(phones, "Hello", "Vet klinika")
    set_clock(sandbox_url, advance=7200)
    records = list(hook.iter_delivery_records([campaign["id"]], concurrency=3))
    assert [r.recipient for r in records] == phones
    by_phone = {r.recipient: r for r in records}
    assert (by_phone["380661200013"].status, by_phone["380661200013"].provider_status) == ("undelivered",
                                                                                            "undelivered")
    assert by_phone["380661200001"].status == "delivered"
    assert all(r.parts == 1 and r.cost is not None and r.updated_at is not None for r in records)
    # since after every delivery: only what carries no time for its status (not delivered) comes back.
    latest = max(r.updated_at for r in records if r.updated_at)
    again = list(hook.iter_delivery_records([campaign["id"]], since=latest + dt.timedelta(seconds=1)))
    assert again and {r.status for r in again} == {"undelivered"}
    hook.close()


def test_ogangi_cannot_list_messages(ogangi_conn: str) -> None:
    with pytest.raises(exc.SmsNotSupportedError, match="getBroadcast gives only"):
        list(OgangiHook(ogangi_conn).iter_delivery_records([1]))
