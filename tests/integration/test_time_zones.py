"""Scheduled times reach each provider in the account's zone (connection extra ``timezone``; issue 13).

No document names the zone of Mobizon's deferredToTs or BSG's start_at; an account that reads
them in UTC+5 would start every deferred campaign five hours early. The sandbox gets an account
zone so these tests can see the shift. BSG and Ogangi: tests/integration/test_{bsg,ogangi}_documents.py.
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.hooks.mobizon import MobizonHook
from tests.conftest import mobizon_conn_uri
from tests.helpers import set_clock


def _account_in_almaty(url: str) -> None:
    set_clock(url, speed=0)
    httpx.post(f"{url}/_sandbox/config", json={"mobizon_account_timezone": "Asia/Almaty"}).raise_for_status()


def _hook(url: str, monkeypatch: pytest.MonkeyPatch, **extra: object) -> MobizonHook:
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_ZONED", mobizon_conn_uri(url, **extra))
    return MobizonHook("mobizon_zoned")


def test_mobizon_deferred_time_is_sent_in_the_accounts_zone(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _account_in_almaty(sandbox_url)
    when = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=3)).replace(microsecond=0)
    hook = _hook(sandbox_url, monkeypatch, timezone="Asia/Almaty")
    campaign_id = hook.create_campaign("Sale", deferred_to=when)
    state = httpx.get(f"{sandbox_url}/_sandbox/mobizon/state", params={"campaign": campaign_id}).json()
    (campaign,) = [c for c in state["campaigns"] if str(c["id"]) == str(campaign_id)]
    assert dt.datetime.fromisoformat(campaign["deferredToUtc"]) == when


def test_mobizon_utc_connection_on_an_almaty_account_is_caught(
    sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """UTC wall time read as Almaty time: five hours early, here under the 1-hour minimum."""
    _account_in_almaty(sandbox_url)
    hook = _hook(sandbox_url, monkeypatch)
    with pytest.raises(exc.SmsValidationError, match="deferredToTs"):
        hook.create_campaign("Sale", deferred_to=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=3))


def test_mobizon_bad_timezone_extra_is_named(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(exc.SmsValidationError, match="timezone='Nowhere/Else'"):
        _hook(sandbox_url, monkeypatch, timezone="Nowhere/Else").create_campaign("Sale")


