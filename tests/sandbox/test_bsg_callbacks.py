"""The sandbox's BSG status callbacks, checked against bsg/openapi.yaml by a bare capturing handler.

The handler is a few lines of Starlette, not ``airflow_sms_provider.events``: the receiver is
tested against the sandbox elsewhere (tests/integration/test_webhook_receiver.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from airflow_sms_provider.sandbox import SandboxServer
from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY
from tests.loopback import LoopbackServer
from tests.sandbox.test_mobizon_webhooks import Capture, wait_for

T0 = "2030-01-01T00:00:00+00:00"
# RcsStatusCallback's properties (openapi.yaml), the one callback payload the spec documents.
KEYS = {"error", "errorDescription", "id", "msisdn", "reference", "time_in", "time_sent", "time_dr", "status",
        "price", "currency"}  # fmt: skip


@pytest.fixture(scope="module")
def capture_server() -> Iterator[tuple[LoopbackServer, list[Capture]]]:
    current: list[Capture] = [Capture()]

    async def route(request: Request) -> Response:
        return await current[0].hook(request)

    with LoopbackServer(Starlette(routes=[Route("/hook", route, methods=["POST"])])) as srv:
        yield srv, current


@pytest.fixture
def capture(capture_server: tuple[LoopbackServer, list[Capture]]) -> Capture:
    capture_server[1][0] = Capture()
    return capture_server[1][0]


@pytest.fixture
def hook_url(capture_server: tuple[LoopbackServer, list[Capture]]) -> str:
    return capture_server[0].url + "/hook"


@pytest.fixture
def bsg(server: SandboxServer, admin: httpx.Client) -> httpx.Client:
    admin.post("/_sandbox/clock", json={"to": T0}).raise_for_status()
    admin.post("/_sandbox/bsg/config", json={"callback_tick": 0.01}).raise_for_status()
    token = admin.post("/api/auth/login", json={"api_key": SANDBOX_BSG_API_KEY}).json()["bearer"]
    return httpx.Client(base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {token}"})


def send(bsg: httpx.Client, phones: list[int], callback_url: str | None, path: str = "sms/send") -> int:
    body: dict[str, Any] = {"sender": "testsms", "text": "Hello",
                            "phones": [{"number": p, "reference_id": f"ref{p}"} for p in phones]}  # fmt: skip
    if callback_url is not None:
        body["callback_url"] = callback_url
    answer = bsg.post(f"/api/campaigns/{path}", json=body)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["data"]["id"])


def message_ids(bsg: httpx.Client, campaign_id: int) -> dict[int, int]:
    rows = bsg.get("/api/messages", params={"filter[campaign_id]": campaign_id}).json()["data"]
    return {row["phone"]: row["id"] for row in rows}


def test_each_status_change_is_posted_as_the_documented_payload(
    bsg: httpx.Client, admin: httpx.Client, capture: Capture, hook_url: str
) -> None:
    campaign_id = send(bsg, [380661230001, 380661230013], hook_url)
    admin.post("/_sandbox/clock", json={"advance": 60}).raise_for_status()  # sent, then final
    events = wait_for(lambda: len(capture.events) >= 4 and capture.events)
    ids = message_ids(bsg, campaign_id)
    assert {tuple(sorted(e)) for e in events} == {tuple(sorted(KEYS))}
    assert sorted((e["msisdn"], e["status"]) for e in events) == [
        ("380661230001", "delivered"), ("380661230001", "sent"), ("380661230013", "sent"),
        ("380661230013", "undelivered"),
    ]  # fmt: skip
    delivered = next(e for e in events if e["status"] == "delivered")
    assert delivered["id"] == ids[380661230001] and isinstance(delivered["id"], int)  # integer, as the schema says
    assert (delivered["reference"], delivered["error"], delivered["currency"]) == ("ref380661230001", 0, "USD")
    assert delivered["time_in"] <= delivered["time_sent"] < delivered["time_dr"]
    assert capture.headers[0]["content-type"] == "application/json"
    assert "sign" not in delivered and not any(h.startswith("x-") and "sign" in h for h in capture.headers[0])


def test_no_callback_url_no_callbacks_and_a_refused_one_is_retried(
    bsg: httpx.Client, admin: httpx.Client, capture: Capture, hook_url: str
) -> None:
    admin.post("/_sandbox/bsg/config", json={"callback_retry_step": 30}).raise_for_status()
    send(bsg, [380661230002], None)
    capture.answer = lambda body, n: 503 if n == 0 else 200
    send(bsg, [380661230001], hook_url)
    admin.post("/_sandbox/clock", json={"advance": 2.5}).raise_for_status()  # the "sent" of the second
    wait_for(lambda: capture.events)
    state = wait_for(lambda: admin.get("/_sandbox/bsg/callbacks").json()["waiting"] or None)
    assert state[0]["attempt"] == 2  # waiting for the sandbox's own retry schedule (30 s x attempt 1)
    assert len(capture.events) == 1
    admin.post("/_sandbox/clock", json={"advance": 30}).raise_for_status()
    wait_for(lambda: len(capture.events) >= 3)  # the retry, and the final status
    log = admin.get("/_sandbox/bsg/callbacks").json()["deliveries"]
    assert [(d["attempt"], d["httpStatus"]) for d in log[:2]] == [(1, 503), (2, 200)]
    assert {e["msisdn"] for e in capture.events} == {"380661230001"}  # the campaign without a URL: nothing
    assert all("url" not in d for d in log)  # the URL carries the receiver's token: never listed


def test_duplicates_and_reverse_order_on_request(
    bsg: httpx.Client, admin: httpx.Client, capture: Capture, hook_url: str
) -> None:
    config = {"callback_duplicate_every": 1, "callback_reverse": True}
    admin.post("/_sandbox/bsg/config", json=config).raise_for_status()
    send(bsg, [380661230001, 380661230002, 380661230003], hook_url, "sms/send")
    admin.post("/_sandbox/clock", json={"advance": 60}).raise_for_status()
    wait_for(lambda: len(capture.events) >= 12)  # 3 messages x (sent, delivered) x twice
    pairs = [(e["msisdn"], e["status"]) for e in capture.events]
    assert all(pairs.count(p) == 2 for p in pairs)
    sent = list(dict.fromkeys(e["msisdn"] for e in capture.events if e["status"] == "sent"))  # first arrivals
    assert sent == sorted(sent, reverse=True)  # newest first: out of order


def test_send_groups_and_individual_take_a_callback_url_too(
    bsg: httpx.Client, admin: httpx.Client, capture: Capture, hook_url: str
) -> None:
    spec = {"sender": "testsms", "text": "Hi", "groups": [1864276], "callback_url": hook_url}
    groups = bsg.post("/api/campaigns/sms/send-groups", json=spec)
    assert groups.status_code == 200, groups.text
    individual = bsg.post("/api/campaigns/sms/send-individual", json={
        "callback_url": hook_url, "messages": [{"phone": 380661230009, "text": "Hi", "sender": "testsms"}]})
    assert individual.status_code == 200, individual.text
    admin.post("/_sandbox/clock", json={"advance": 60}).raise_for_status()
    events = wait_for(lambda: len(capture.events) >= 6 and capture.events)
    assert {e["msisdn"] for e in events} == {"380661239001", "380661239002", "380661230009"}
    assert all("reference" not in e for e in events)  # none was given: the key is left out
