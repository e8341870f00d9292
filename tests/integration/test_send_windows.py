"""Issue 11 item 5, windows are checked once: a send time is checked before the first paid request;
a retry resuming what an earlier try started does not judge it again by a later clock, and when it
has passed for work left unsent the ``on_window_passed`` policy decides. Checked on the sandbox."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx
import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider import validation
from airflow_sms_provider.campaigns import bsg as bsg_work
from airflow_sms_provider.campaigns import mobizon as mobizon_work
from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator
from airflow_sms_provider.operators.mobizon import MobizonCampaignOperator
from airflow_sms_provider.operators.ogangi import OgangiCreateBroadcastOperator
from tests.helpers import DurableStore, add_faults, sandbox_state, set_clock, task_context

NUMBERS = [f"7701111{i:04d}" for i in range(1, 13)]
PHONES = [str(380500000000 + i) for i in range(5)]


def context(store: DurableStore) -> dict[str, Any]:
    return task_context("manual__window", store)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def later(monkeypatch: pytest.MonkeyPatch, module: Any, hours: float) -> None:
    """The retry runs ``hours`` later: the operator's view of "has the send time passed"."""
    monkeypatch.setattr(module, "window_passed",
                        lambda when, at=None: validation.window_passed(when, now() + dt.timedelta(hours=hours)))


@pytest.fixture
def frozen(sandbox_url: str) -> str:
    set_clock(sandbox_url, speed=0)
    return sandbox_url


def bsg_campaigns(url: str) -> list[dict[str, Any]]:
    return httpx.get(f"{url}/_sandbox/bsg/state", params={"messages": "true"}).json()["campaigns"]


# ------------------------------------------------------------------ Mobizon deferred_to


def mobizon_filled_then_send_failed(url: str, deferred: dt.datetime, **kwargs: Any
                                    ) -> tuple[DurableStore, MobizonCampaignOperator]:
    """Try 1 creates and fills a deferred campaign; its campaign/send fails (HTTP 503)."""
    add_faults(url, {"provider": "mobizon", "path": "campaign/send", "action": "http_status", "status": 503,
                     "times": None})
    store = DurableStore()
    operator = MobizonCampaignOperator(task_id="send", text="Sale", recipients=NUMBERS, deferred_to=deferred,
                                       wait_for_completion=False, **kwargs)
    with pytest.raises(exc.SmsProviderError):
        operator.execute(context(store))
    httpx.delete(f"{url}/_sandbox/faults").raise_for_status()
    (campaign,) = sandbox_state(url, "mobizon")["campaigns"]
    assert campaign["sendCalls"] == 0 and len(campaign["recipients"]) == 12
    return store, operator


def test_mobizon_retry_sends_a_filled_campaign_whose_deferred_to_is_now_under_an_hour_ahead(
    mobizon_conn: str, frozen: str
) -> None:
    deferred = now() + dt.timedelta(hours=1, seconds=2)
    store, operator = mobizon_filled_then_send_failed(frozen, deferred)
    time.sleep(2.5)  # the retry's clock: deferred_to is less than 1:00:00 ahead now
    summary = operator.execute(context(store))
    (campaign,) = sandbox_state(frozen, "mobizon")["campaigns"]
    assert campaign["sendCalls"] == 1 and sorted(campaign["recipients"]) == NUMBERS
    assert summary["campaign_id"] == int(campaign["id"])


def test_mobizon_filled_campaign_past_its_deferred_to_fails_naming_it(
    mobizon_conn: str, frozen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, operator = mobizon_filled_then_send_failed(frozen, now() + dt.timedelta(hours=1, minutes=5))
    later(monkeypatch, mobizon_work, hours=2)
    (campaign,) = sandbox_state(frozen, "mobizon")["campaigns"]
    with pytest.raises(exc.SmsFatalError, match=rf"campaign {campaign['id']} is created and filled \(12 recipients\)"):
        operator.execute(context(store))
    assert sandbox_state(frozen, "mobizon")["campaigns"][0]["sendCalls"] == 0


def test_mobizon_filled_campaign_past_its_deferred_to_is_sent_with_send_now(
    mobizon_conn: str, frozen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, operator = mobizon_filled_then_send_failed(frozen, now() + dt.timedelta(hours=1, minutes=5),
                                                      on_window_passed="send_now")
    later(monkeypatch, mobizon_work, hours=2)
    operator.execute(context(store))
    (campaign,) = sandbox_state(frozen, "mobizon")["campaigns"]
    assert campaign["sendCalls"] == 1 and sorted(campaign["recipients"]) == NUMBERS


def test_mobizon_keep_offset_is_refused_before_any_request(mobizon_conn: str, frozen: str) -> None:
    operator = MobizonCampaignOperator(task_id="send", text="Sale", recipients=NUMBERS,
                                       on_window_passed="keep_offset")
    with pytest.raises(exc.SmsValidationError, match="on_window_passed"):
        operator.execute(context(DurableStore()))
    assert sandbox_state(frozen, "mobizon")["campaigns"] == []


# ------------------------------------------------------------------ BSG start_at


def bsg_two_chunks_then_refused(url: str, start_at: dt.datetime, **kwargs: Any
                                ) -> tuple[DurableStore, BsgBulkCampaignOperator]:
    """Try 1 creates chunks 1 and 2 (of 3) for ``start_at``; chunk 3's request is reset."""
    add_faults(url, {"provider": "bsg", "path": "/sms/send$", "action": "reset", "skip": 2, "times": None})
    store = DurableStore()
    operator = BsgBulkCampaignOperator(task_id="send", recipients=PHONES, text="Sale", sender="Vet klinika",
                                       chunk_size=2, max_concurrent_creates=1, start_at=start_at, **kwargs)
    with pytest.raises(exc.SmsProviderError):
        operator.execute(context(store))
    httpx.delete(f"{url}/_sandbox/faults").raise_for_status()
    assert len(bsg_campaigns(url)) == 2
    return store, operator


def phones_sent(url: str) -> list[str]:
    return sorted(str(m["phone"]) for c in bsg_campaigns(url) for m in c["messages"])


def test_bsg_retry_after_start_at_passed_fails_naming_the_created_campaigns(bsg_conn: str, frozen: str) -> None:
    store, operator = bsg_two_chunks_then_refused(frozen, now() + dt.timedelta(seconds=2))
    time.sleep(2.5)
    ids = sorted(c["id"] for c in bsg_campaigns(frozen))
    with pytest.raises(exc.SmsFatalError, match=r"campaign\(s\) .* \(4 phones\) .* 1 chunk\(s\) .* not created") as err:
        operator.execute(context(store))
    assert all(str(i) in str(err.value) for i in ids)
    assert len(bsg_campaigns(frozen)) == 2


def test_bsg_retry_after_start_at_passed_sends_the_rest_now(bsg_conn: str, frozen: str) -> None:
    store, operator = bsg_two_chunks_then_refused(frozen, now() + dt.timedelta(seconds=2), on_window_passed="send_now")
    time.sleep(2.5)  # start_at has passed: the retry must not refuse the chunk still to create
    summary = operator.execute(context(store))
    assert phones_sent(frozen) == PHONES, "every phone exactly once"
    assert len(summary["campaign_ids"]) == 3
    (last,) = [c for c in bsg_campaigns(frozen) if len(c["messages"]) == 1]
    assert last["start_at"] is None


def test_bsg_keep_offset_schedules_the_rest_as_far_ahead_as_first_planned(
    bsg_conn: str, frozen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, operator = bsg_two_chunks_then_refused(frozen, now() + dt.timedelta(minutes=30),
                                                  on_window_passed="keep_offset")
    later(monkeypatch, bsg_work, hours=1)
    operator.execute(context(store))
    assert phones_sent(frozen) == PHONES
    (last,) = [c for c in bsg_campaigns(frozen) if len(c["messages"]) == 1]
    start = dt.datetime.fromisoformat(last["start_at"].replace(" ", "T")).replace(tzinfo=dt.timezone.utc)
    assert abs((start - now()).total_seconds() - 1800) < 60


def test_bsg_bad_policy_is_refused_before_any_request(bsg_conn: str, frozen: str) -> None:
    operator = BsgBulkCampaignOperator(task_id="send", recipients=PHONES, text="Sale", sender="Vet klinika",
                                       on_window_passed="later")
    with pytest.raises(exc.SmsValidationError, match="on_window_passed='later'"):
        operator.execute(context(DurableStore()))
    assert bsg_campaigns(frozen) == []


# ------------------------------------------------------------------ Ogangi scheduled_at


def test_ogangi_rerun_after_scheduled_at_passed_returns_the_created_broadcast(ogangi_conn: str, frozen: str) -> None:
    store = DurableStore()
    operator = OgangiCreateBroadcastOperator(task_id="send", recipients=NUMBERS[:3], text="Hi",
                                             scheduled_at=now() + dt.timedelta(seconds=2))
    first = operator.execute(context(store))
    time.sleep(2.5)
    assert operator.execute(context(store))["broadcast_id"] == first["broadcast_id"]
    assert len(sandbox_state(frozen, "ogangi")["broadcasts"]) == 1
