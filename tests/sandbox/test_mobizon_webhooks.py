"""The sandbox's Mobizon webhooks, checked against the documents by a bare capturing handler.

The handler here is a few lines of Starlette, not ``airflow_sms_provider.events``: the receiver is
tested against the sandbox elsewhere (tests/integration/test_webhook_receiver.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.loopback import LoopbackServer
from tests.sandbox.conftest import Mobizon

T0 = "2030-01-01T00:00:00+00:00"
SECRET = "s3cr3t-|-key"


class Capture:
    """Records every POST; ``answer(body, n)`` decides the HTTP status (n: how many came before)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.answer: Callable[[dict[str, Any], int], int] = lambda body, n: 200
        self.delay = 0.0
        self.redirects = 0

    async def hook(self, request: Request) -> Response:
        raw = await request.body()
        if self.redirects and request.url.path == "/hook":
            return Response(status_code=302, headers={"location": "/moved" if self.redirects == 1 else "/hook"})
        self.bodies.append(raw)
        self.headers.append(dict(request.headers))
        if self.delay:
            await asyncio.sleep(self.delay)
        return Response(status_code=self.answer(json.loads(raw), len(self.bodies) - 1))

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(b) for b in self.bodies]


@pytest.fixture(scope="module")
def capture_server() -> Iterator[tuple[LoopbackServer, list[Capture]]]:
    current: list[Capture] = [Capture()]

    async def route(request: Request) -> Response:
        return await current[0].hook(request)

    app = Starlette(routes=[Route("/hook", route, methods=["POST"]), Route("/moved", route, methods=["POST"])])
    with LoopbackServer(app) as srv:
        yield srv, current


@pytest.fixture
def capture(capture_server: tuple[LoopbackServer, list[Capture]]) -> Capture:
    capture_server[1][0] = Capture()
    return capture_server[1][0]


@pytest.fixture
def hook_url(capture_server: tuple[LoopbackServer, list[Capture]]) -> str:
    return capture_server[0].url + "/hook"


def start(mobizon: Mobizon, **config: Any) -> None:
    mobizon.client.post("/_sandbox/clock", json={"to": T0}).raise_for_status()
    mobizon.configure(webhook_tick=0.01, **config)


def register(mobizon: Mobizon, url: str, **spec: Any) -> dict[str, Any]:
    answer = mobizon.client.post("/_sandbox/mobizon/webhooks", json={"url": url, **spec})
    assert answer.status_code == 200, answer.text
    return answer.json()


def send(mobizon: Mobizon, numbers: list[str], text: str = "Hello") -> int:
    campaign_id = mobizon.campaign(text, numbers)
    mobizon.ok("campaign/send", {"id": campaign_id})
    return campaign_id


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


def deliveries(mobizon: Mobizon) -> list[dict[str, Any]]:
    return mobizon.client.get("/_sandbox/mobizon/webhooks").json()["deliveries"]


def waiting(mobizon: Mobizon) -> list[tuple[int, str]]:
    """The attempts queued: (attempt, due in simulated time)."""
    queue = mobizon.client.get("/_sandbox/mobizon/webhooks").json()["waiting"]
    return [(w["attempt"], w["due"]) for w in queue]


def test_a_final_status_is_posted_as_documented(mobizon: Mobizon, capture: Capture, hook_url: str) -> None:
    start(mobizon)
    assert register(mobizon, hook_url, secret=SECRET)["id"] == 1
    campaign_id = send(mobizon, ["77011112222"])
    time.sleep(0.2)
    assert capture.bodies == []  # accepted, not final: nothing yet
    mobizon.advance(60)  # 2030-01-01 00:01:00; the message turned DELIVRD at 00:00:06
    wait_for(lambda: capture.bodies)
    (message,) = mobizon.campaign_state(campaign_id)["messages"]
    # sign: printf '%s' '1|1|2030-01-01 00:01:00|s3cr3t-|-key' | sha1sum
    assert capture.bodies[0] == (
        b'{"eventId": 1, "eventType": "sms-delivery-report", "eventCreateTs": "2030-01-01 00:01:00", '
        b'"webhookId": 1, "attempt": 1, "data": {"campaignId": %d, "messageId": %d, "segNum": 1, '
        b'"statusUpdateTs": "2030-01-01 00:00:06", "status": "DELIVRD", "to": "77011112222"}, '
        b'"sign": "fc8753b592971235ded011957d2309308cf6c24f"}' % (campaign_id, message["id"])
    )
    assert capture.headers[0]["content-type"] == "application/json"
    time.sleep(0.2)
    assert len(capture.bodies) == 1  # delivered: not sent again


def test_every_final_status_once_and_none_for_a_declined_campaign(
    mobizon: Mobizon, capture: Capture, hook_url: str
) -> None:
    start(mobizon)
    register(mobizon, hook_url)  # no secret: "the request signature is not generated"
    send(mobizon, ["77011110013", "77011110066", "77011110099", "77077110001", "77011110001"])
    send(mobizon, ["77011110002"], text="moderate and decline this")
    mobizon.advance(600)
    wait_for(lambda: len(capture.bodies) >= 5)
    time.sleep(0.2)
    statuses = {e["data"]["to"]: e["data"]["status"] for e in capture.events}
    assert statuses == {"77011110013": "UNDELIV", "77011110066": "EXPIRED", "77011110099": "REJECTD",
                        "77077110001": "DELETED", "77011110001": "DELIVRD"}  # fmt: skip
    assert all("sign" not in e for e in capture.events)
    assert sorted(e["eventId"] for e in capture.events) == [1, 2, 3, 4, 5]


def test_retries_follow_the_documented_schedule(mobizon: Mobizon, capture: Capture, hook_url: str) -> None:
    start(mobizon)
    capture.answer = lambda body, n: 200 if body["attempt"] == 3 else 500
    register(mobizon, hook_url, secret=SECRET)
    send(mobizon, ["77011112222"])
    mobizon.advance(10)
    wait_for(lambda: len(deliveries(mobizon)) == 1)  # answered, and attempt 2 scheduled
    # The schedule is read from the queue, not inferred from a quiet pause: attempt 2 is due one minute
    # after attempt 1, attempt 3 two minutes after attempt 2.
    assert waiting(mobizon) == [(2, "2030-01-01T00:01:10+00:00")]
    mobizon.advance(59)
    assert len(capture.bodies) == 1
    mobizon.advance(1)
    wait_for(lambda: len(deliveries(mobizon)) == 2)
    assert waiting(mobizon) == [(3, "2030-01-01T00:03:10+00:00")]
    mobizon.advance(119)
    assert len(capture.bodies) == 2
    mobizon.advance(1)
    # The sandbox logs an attempt once its answer is back, after the handler saw the body: wait for the log.
    wait_for(lambda: len(deliveries(mobizon)) == 3)
    events = capture.events
    assert [e["attempt"] for e in events] == [1, 2, 3]
    assert {e["eventId"] for e in events} == {1} and {e["eventCreateTs"] for e in events} == {"2030-01-01 00:00:10"}
    for e in events:  # each attempt signs its own number
        text = f"{e['eventId']}|{e['attempt']}|{e['eventCreateTs']}|{SECRET}"
        assert e["sign"] == hashlib.sha1(text.encode()).hexdigest()
    assert [(d["attempt"], d["httpStatus"], d["outcome"]) for d in deliveries(mobizon)] == [
        (1, 500, "refused"), (2, 500, "refused"), (3, 200, "delivered")]  # fmt: skip


def test_ten_attempts_then_undelivered(mobizon: Mobizon, capture: Capture, hook_url: str) -> None:
    start(mobizon)
    capture.answer = lambda body, n: 404
    register(mobizon, hook_url)
    send(mobizon, ["77011112222"])
    mobizon.advance(10)
    for attempt in range(1, 11):
        # The answer is logged (and the next attempt scheduled) after the handler saw the body.
        wait_for(lambda attempt=attempt: len(deliveries(mobizon)) == attempt)
        mobizon.advance(attempt * 60)
    time.sleep(0.3)
    assert [e["attempt"] for e in capture.events] == list(range(1, 11))
    assert deliveries(mobizon)[-1]["undelivered"] is True


def test_a_slow_answer_is_a_failure_and_the_event_comes_again(
    mobizon: Mobizon, capture: Capture, hook_url: str
) -> None:
    start(mobizon, webhook_timeout=0.2)
    capture.delay = 0.5  # past the (shortened) 5-second limit: the handler did get it, Mobizon retries
    register(mobizon, hook_url)
    send(mobizon, ["77011112222"])
    mobizon.advance(10)
    wait_for(lambda: len(capture.bodies) == 1)
    capture.delay = 0
    wait_for(lambda: deliveries(mobizon))
    assert deliveries(mobizon)[0]["outcome"] == "timeout"  # and attempt 2 scheduled
    mobizon.advance(60)
    wait_for(lambda: len(capture.bodies) == 2)
    assert [(e["eventId"], e["attempt"]) for e in capture.events] == [(1, 1), (1, 2)]


def test_duplicates_and_out_of_order_when_asked(mobizon: Mobizon, capture: Capture, hook_url: str) -> None:
    start(mobizon, webhook_duplicate_every=2, webhook_reverse=True)
    register(mobizon, hook_url)
    send(mobizon, ["77011110001", "77011110002", "77011110003", "77011110004"])
    mobizon.advance(60)
    wait_for(lambda: len(capture.bodies) >= 6)
    time.sleep(0.2)
    seen = [(e["eventId"], e["attempt"]) for e in capture.events]
    assert seen[:4] == [(4, 1), (3, 1), (2, 1), (1, 1)]  # one scan's batch, newest first
    assert sorted(seen[4:]) == [(1, 2), (3, 2)]  # every 2nd delivered event once more, as a retry


def test_one_redirect_is_followed_two_are_not(mobizon: Mobizon, capture: Capture, hook_url: str) -> None:
    start(mobizon)
    capture.redirects = 1
    register(mobizon, hook_url)
    send(mobizon, ["77011112222"])
    mobizon.advance(10)
    wait_for(lambda: capture.bodies)
    wait_for(lambda: deliveries(mobizon))
    assert deliveries(mobizon)[0]["outcome"] == "delivered"
    capture.redirects = 2  # /hook -> /hook -> ...: a chain
    send(mobizon, ["77011113333"])
    mobizon.advance(10)
    wait_for(lambda: len(deliveries(mobizon)) == 2)
    assert deliveries(mobizon)[1]["outcome"] == "too many redirects"


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"url": "http://example.com/hook"}, "url"),
        ({"url": "http://127.0.0.1/" + "x" * 1000}, "url"),
        ({"url": "http://127.0.0.1/h", "secret": "s" * 256}, "secret"),
        ({"url": "http://127.0.0.1/h", "format": "xml"}, "format"),
        ({"url": "http://127.0.0.1/h", "eventType": "forms"}, "eventType"),
    ],
)
def test_webhook_settings_are_checked(admin: httpx.Client, spec: dict[str, Any], error: str) -> None:
    answer = admin.post("/_sandbox/mobizon/webhooks", json=spec)
    assert answer.status_code == 400 and answer.json()["error"].startswith(error)


def test_a_reset_forgets_the_webhooks_and_stops_emitting(mobizon: Mobizon, capture: Capture, hook_url: str) -> None:
    start(mobizon)
    register(mobizon, hook_url, secret=SECRET)
    send(mobizon, ["77011112222"])
    mobizon.client.post("/_sandbox/reset").raise_for_status()
    start(mobizon)
    send(mobizon, ["77011112222"])
    mobizon.advance(60)
    time.sleep(0.3)
    assert capture.bodies == []
    listed = mobizon.client.get("/_sandbox/mobizon/webhooks").json()
    assert listed == {"webhooks": [], "deliveries": [], "waiting": []}
