"""SmsNotifier.async_notify's exact request, and that an unanswered send is not repeated."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
import respx

from airflow_sms_provider.notifications.sms import SmsNotifier

KEY = "abcdefghij0123456789abcdefghij0123456789"
URL = f"https://api.mobizon.kz/service/message/sendSmsMessage?output=json&api=v1&apiKey={KEY}"


@pytest.fixture(autouse=True)
def mobizon(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "mobizon", "host": "api.mobizon.kz", "password": KEY,
            "extra": {"default_sender": "Shop", "retry_base_delay": 0.001}}
    monkeypatch.setenv("AIRFLOW_CONN_SMS_ALERTS", json.dumps(conn))


@respx.mock
def test_async_notify_request_bytes() -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(
        200, json={"code": 0, "data": {"campaignId": "1", "messageId": "2", "status": "2"}, "message": ""}))

    asyncio.run(SmsNotifier(conn_id="sms_alerts", recipients="+7 701 111 2233", message="Hi & bye").async_notify({}))

    assert route.call_count == 1
    assert route.calls.last.request.content == b"recipient=77011112233&text=Hi+%26+bye&from=Shop"


@respx.mock
def test_an_unanswered_send_is_not_repeated(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="airflow_sms_provider.notifications.sms")
    route = respx.post(URL).mock(return_value=httpx.Response(503))

    asyncio.run(SmsNotifier(conn_id="sms_alerts", recipients=["77011112233"]).async_notify({}))

    assert route.call_count == 1  # sendSmsMessage is not idempotent: a 503 may have sent it
    assert "1 number(s) not reached: ...2233" in caplog.text and KEY not in caplog.text
