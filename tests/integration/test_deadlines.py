"""No overall deadline: a server that trickles its answer must not hold a poke or a trigger for ever.

httpx's timeout bounds each read; the sandbox's ``trickle`` fault sends the answer a byte
every 0.4 s, so each read is quick and only an overall deadline per attempt ends the call.
The connection's timeout is 1 s here, so an attempt ends within ~2 s (DEADLINE_FACTOR x 1 s).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider import transport
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.sensors.mobizon import MobizonCampaignSensor
from airflow_sms_provider.transport import Request, RetryPolicy, send, sync_client
from airflow_sms_provider.triggers.mobizon import MobizonCampaignTrigger
from tests.conftest import mobizon_conn_uri
from tests.helpers import add_faults, within

TIMEOUT = 1.0
DEADLINE_FACTOR = getattr(transport, "DEADLINE_FACTOR", 2.0)  # getattr: the module runs on the old code too
# Two attempts of at most DEADLINE_FACTOR x TIMEOUT (plus one read past it), and some slack for a loaded machine.
BOUND = 2 * (DEADLINE_FACTOR + 1) * TIMEOUT + 4
TRICKLE = {"provider": "mobizon", "action": "trickle", "seconds": 0.4, "times": None}


@pytest.fixture
def slow_mobizon(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT",
                       mobizon_conn_uri(sandbox_url, timeout=TIMEOUT, retry_attempts=2))  # fmt: skip
    return sandbox_url


def trickled(url: str) -> int:
    """How many requests the trickle rule answered (the request log has them only once answered)."""
    return sum(rule["hits"] for rule in httpx.get(f"{url}/_sandbox/faults").json()["faults"])


def test_a_sensor_poke_against_a_trickling_server_ends_within_the_deadline(slow_mobizon: str) -> None:
    add_faults(slow_mobizon, {**TRICKLE, "path": "campaign/get"})
    sensor = MobizonCampaignSensor(task_id="wait", campaign_id=123, poke_interval=0.01)
    took, outcome = within(BOUND + 10, lambda: sensor.poke({}))
    assert took < BOUND, took
    error = outcome.get("error")
    assert isinstance(error, exc.SmsServerError) and not isinstance(error, exc.SmsFatalError), outcome
    assert "deadline" in str(error) and "127.0.0.1" in str(error), error
    assert trickled(slow_mobizon) == 2  # read calls are repeated: both attempts cut


def test_a_trigger_against_a_trickling_server_ends_within_the_deadline(slow_mobizon: str) -> None:
    add_faults(slow_mobizon, {**TRICKLE, "path": "campaign/get"})
    trigger = MobizonCampaignTrigger("mobizon_default", 123, poll_interval=0.01)

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    started = time.monotonic()
    try:
        event = asyncio.run(asyncio.wait_for(first_event(), timeout=BOUND + 10))
    except TimeoutError:
        pytest.fail("the trigger was still waiting for the answer: no overall deadline")
    assert time.monotonic() - started < BOUND
    assert event["status"] == "error" and event["fatal"] is False, event
    assert "deadline" in event["message"], event


def test_a_trickled_create_answer_is_ambiguous_not_repeated(slow_mobizon: str) -> None:
    add_faults(slow_mobizon, {**TRICKLE, "path": "campaign/create"})
    hook = MobizonHook()
    try:
        took, outcome = within(BOUND + 10, lambda: hook.create_campaign(text="Hi", name="Deadline"))
    finally:
        hook.close()
    assert took < BOUND / 2 + 1, took  # one attempt: a create is never repeated after it left
    assert isinstance(outcome.get("error"), exc.SmsAmbiguousError), outcome
    assert "may have been carried out" in str(outcome["error"])
    assert trickled(slow_mobizon) == 1


def test_a_fast_answer_is_not_cut(sandbox_url: str) -> None:
    client = sync_client(sandbox_url, 0.2, True)
    with client:
        answer = send(client, Request("GET", "/_sandbox/health", "health"), lambda r: r.status_code,
                      RetryPolicy(max_attempts=1))  # fmt: skip
    assert answer == 200


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("http://127.0.0.1:9", "connection refused"),
        ("http://no-such-host.invalid:8080", "the host name does not resolve"),
    ],
)
def test_could_not_connect_says_why_and_where(url: str, cause: str) -> None:
    with sync_client(url, 2, True) as client, pytest.raises(exc.SmsServerError) as caught:
        send(client, Request("GET", "/x", "probe", params=[("apiKey", "SECRET-KEY")]), lambda r: r,
             RetryPolicy(max_attempts=1))  # fmt: skip
    message = str(caught.value)
    assert f"could not connect to {url}: {cause}" in message, message
    assert "SECRET" not in message and "/x" not in message


def test_could_not_connect_names_a_tls_failure(sandbox_url: str) -> None:
    tls_url = sandbox_url.replace("http://", "https://")  # the sandbox speaks plain HTTP: the handshake fails
    with sync_client(tls_url, 2, True) as client, pytest.raises(exc.SmsServerError) as caught:
        send(client, Request("GET", "/x", "probe"), lambda r: r, RetryPolicy(max_attempts=1))
    assert f"could not connect to {tls_url}: TLS failed" in str(caught.value), caught.value
    httpx.get(f"{sandbox_url}/_sandbox/health").raise_for_status()  # the sandbox is fine
