"""SmsNotifier.async_notify against the sandbox: the async path of Airflow 3.1+ callbacks.

Deadline alerts run in the triggerer: ``await SmsNotifier(..., context=...)`` renders a copy
and calls ``async_notify``, which must send what ``notify`` sends without blocking the loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine
from typing import Any

import httpx
import pytest
import respx

from airflow_sms_provider import http11
from airflow_sms_provider.hooks.base import SmsHook
from airflow_sms_provider.notifications.sms import DEFAULT_MESSAGE, SmsNotifier
from tests.conftest import mobizon_conn_uri
from tests.e2e.test_example_notifier import received
from tests.helpers import sandbox_requests
from tests.integration.test_notifier import NUMBER, task_context

CONNS = ["mobizon_conn", "bsg_conn", "ogangi_conn"]
PROVIDER = {"mobizon_conn": "mobizon", "bsg_conn": "bsg", "ogangi_conn": "ogangi"}
SENDER = {"mobizon": "MyShop", "bsg": "MyShop", "ogangi": "24365"}


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="airflow_sms_provider.notifications.sms")
    return caplog


def async_only(coroutine: Coroutine[Any, Any, Any]) -> None:
    """Run it while the sync client and the hooks' send_text fail: only the async path can send."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the async notifier used the sync path")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx.Client, "send", refuse)
        patch.setattr(http11.Lane, "exchange", refuse)  # the sync hooks' own HTTP/1.1 lane
        for hook_class in SmsHook.__subclasses__():
            patch.setattr(hook_class, "send_text", refuse)
        asyncio.run(coroutine)


@pytest.mark.parametrize("conn_fixture", CONNS)
def test_async_notify_sends_the_exact_text(
    conn_fixture: str, sandbox_url: str, request: pytest.FixtureRequest, logs: Any
) -> None:
    conn_id = request.getfixturevalue(conn_fixture)
    notifier = SmsNotifier(conn_id=conn_id, recipients=[f"+{NUMBER}"], sender=SENDER,
                           message="Deadline missed:\n  nightly_etl   (run r1)")

    async_only(notifier.async_notify({}))

    assert received(sandbox_url, PROVIDER[conn_fixture]) == [(NUMBER, "Deadline missed: nightly_etl (run r1)")]
    assert "sent through connection" in logs.text and "not sent" not in logs.text


def test_awaiting_the_notifier_renders_a_copy(bsg_conn: str, sandbox_url: str) -> None:
    # How Airflow 3.1+'s callback trigger calls it: the class with kwargs and context, awaited.
    async def callback() -> None:
        await SmsNotifier(conn_id=bsg_conn, recipients=NUMBER, sender="MyShop",
                          context=task_context("r9", ValueError("late")))

    async_only(callback())

    assert received(sandbox_url, "bsg") == [(NUMBER, "Airflow: alerts.load FAILED: ValueError: late (run r9)")]

    notifier = SmsNotifier(conn_id=bsg_conn, recipients=NUMBER, sender="MyShop", context=task_context("r10"))

    async def twice() -> None:
        await notifier
        await notifier

    async_only(twice())
    assert notifier.message == DEFAULT_MESSAGE  # the object itself stays a template


def test_a_deadline_alerts_context(mobizon_conn: str, sandbox_url: str) -> None:
    # What Airflow 3.1-3.3's scheduler gives a deadline callback: the run as JSON and the deadline.
    context = {"dag_run": {"dag_id": "nightly_etl", "run_id": "scheduled__2026-03-01T02:00:00+00:00",
                           "state": "running"},
               "deadline": {"id": "0198", "deadline_time": "2026-03-01T03:00:00+00:00"}}

    async def callbacks() -> None:
        await SmsNotifier(conn_id=mobizon_conn, recipients=NUMBER, context=context)
        await SmsNotifier(conn_id=mobizon_conn, recipients=NUMBER, context=context,
                          message="{{ dag_run.dag_id }} late, deadline {{ deadline.deadline_time }}")

    async_only(callbacks())

    assert received(sandbox_url, "mobizon") == [
        (NUMBER, "Airflow: nightly_etl MISSED ITS DEADLINE (run scheduled__2026-03-01T02:00:00+00:00)"),
        (NUMBER, "nightly_etl late, deadline 2026-03-01T03:00:00+00:00"),
    ]


@pytest.mark.parametrize("conn_fixture", CONNS)
def test_async_requests_are_the_sync_requests(
    conn_fixture: str, sandbox_url: str, request: pytest.FixtureRequest
) -> None:
    """Same wire bytes both ways (only a multipart boundary differs)."""
    conn_id = request.getfixturevalue(conn_fixture)
    notifier = SmsNotifier(conn_id=conn_id, recipients=[NUMBER, "+77011112233"], sender=SENDER, message="Hi & bye")

    def wire(send: Any) -> list[tuple[str, str, bytes]]:
        with respx.mock(assert_all_called=False) as mock:
            mock.route(host="127.0.0.1").pass_through()
            send()
            out = []
            for call in mock.calls:
                req = call.request
                body = req.read()
                boundary = re.search(rb"boundary=([-\w]+)", req.headers.get("content-type", "").encode())
                if boundary:
                    body = body.replace(boundary.group(1), b"BOUNDARY")
                out.append((req.method, str(req.url), body))
            return out

    sync = wire(lambda: notifier.notify({}))
    async_ = wire(lambda: asyncio.run(notifier.async_notify({})))

    assert async_ == sync and any(b"Hi" in body for _, _, body in sync)


def test_a_failed_send_is_logged_without_secrets_and_never_raised(
    sandbox_url: str, monkeypatch: pytest.MonkeyPatch, logs: Any
) -> None:
    wrong_key = "f00dfeedf00dfeedf00dfeedf00dfeedf00dfeed"
    monkeypatch.setenv("AIRFLOW_CONN_SMS_ALERTS", mobizon_conn_uri(sandbox_url, api_key=wrong_key))

    asyncio.run(SmsNotifier(conn_id="sms_alerts", recipients=[NUMBER]).async_notify({}))

    assert "not reached" in logs.text and "...4567" in logs.text
    assert wrong_key not in logs.text and NUMBER not in logs.text
    assert [r.levelname for r in logs.records if "not reached" in r.getMessage()] == ["ERROR"]
    assert len(sandbox_requests(sandbox_url, "mobizon")) == 1  # one sendSmsMessage per number


def test_errors_before_sending_are_logged(sandbox_url: str, logs: Any) -> None:
    asyncio.run(SmsNotifier(conn_id="no_such_conn", recipients=[NUMBER]).async_notify({}))
    asyncio.run(SmsNotifier(conn_id="no_such_conn", recipients="12").async_notify({}))

    assert "'no_such_conn' is not defined" in logs.text
    assert "no valid phone number in recipients ('12': too short" in logs.text
    assert not sandbox_requests(sandbox_url)


@pytest.mark.parametrize("path", ["sync", "async"])
def test_the_connections_key_is_masked_in_the_text_even_before_anything_else_read_it(
    path: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch, logs: Any
) -> None:
    """The failure text of another client quotes the key percent-encoded (Airflow's masker knows the raw
    key at most): the notifier reads its connection, so every form is known, before it cleans the text.
    Hostile numbers nested in ``recipients`` stay data on both paths."""
    import uuid
    from urllib.parse import quote

    from tests.secret_forms import leaks

    key = f"Notif+{path}/{uuid.uuid4().hex[:8]}=1%2F&k"  # new to this process: nothing registered it yet
    httpx.post(f"{sandbox_url}/_sandbox/mobizon/accounts", json={"api_key": key}).raise_for_status()
    monkeypatch.setenv("AIRFLOW_CONN_SMS_FRESH", mobizon_conn_uri(sandbox_url, api_key=key))
    error = ValueError(f"GET https://api.example.com/x/{quote(key, safe='')}/y failed")  # no apiKey= to go by
    recipients = [NUMBER, "{{ 7 * 7 }}"]
    message = "{{ outcome }}"
    context = task_context("r1", error)
    if path == "sync":
        SmsNotifier(conn_id="sms_fresh", recipients=recipients, message=message)(context)
    else:
        async def callback() -> None:
            await SmsNotifier(conn_id="sms_fresh", recipients=recipients, message=message, context=context)

        async_only(callback())

    ((number, text),) = received(sandbox_url, "mobizon")
    assert number == NUMBER and text.startswith("FAILED: ValueError: GET"), text
    assert not leaks(text + "\n" + logs.text, [key]), text
    assert "'{{ 7 * 7 }}'" in logs.text  # logged as an invalid number, not rendered to 49
