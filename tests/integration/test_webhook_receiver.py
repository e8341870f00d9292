"""The sandbox's Mobizon webhooks against the receiver (events/) served on 127.0.0.1.

The sandbox signs, retries, duplicates and reorders as the documents allow; the receiver must
record each event once and turn a finished campaign into one asset event with the right counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_sms_provider.events.receiver import Receiver, asset_uri
from airflow_sms_provider.events.store import EventStore
from airflow_sms_provider.hooks.mobizon import MobizonHook
from tests.loopback import LoopbackServer

SECRET = "whsec-0123456789abcdef"
T0 = "2030-01-01T00:00:00+00:00"


class Harness:
    def __init__(self, sandbox_url: str, receiver: Receiver, receiver_url: str,
                 secrets: dict[str, str | None], sunk: list[tuple[str, dict[str, Any]]]) -> None:  # fmt: skip
        self.sandbox = httpx.Client(base_url=sandbox_url, timeout=10)
        self.receiver = receiver
        self.receiver_url = receiver_url
        self.secrets = secrets
        self.sunk = sunk

    def configure(self, **config: Any) -> None:
        self.sandbox.post("/_sandbox/config", json={"webhook_tick": 0.01, **config}).raise_for_status()

    def webhook(self, conn_id: str, secret: str) -> None:
        spec = {"url": f"{self.receiver_url}/mobizon/{conn_id}", "secret": secret, "eventType": "sms"}
        self.sandbox.post("/_sandbox/mobizon/webhooks", json=spec).raise_for_status()

    def advance(self, seconds: float) -> None:
        self.sandbox.post("/_sandbox/clock", json={"advance": seconds}).raise_for_status()

    def deliveries(self) -> list[dict[str, Any]]:
        return self.sandbox.get("/_sandbox/mobizon/webhooks").json()["deliveries"]


def send_campaign(numbers: list[str]) -> int:
    hook = MobizonHook()
    campaign_id = hook.create_campaign("Webhook test", name="events")
    hook.add_recipients(campaign_id, numbers)
    hook.send_campaign(campaign_id)
    return campaign_id


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


@pytest.fixture
def harness(sandbox_url: str, mobizon_conn: str, tmp_path: Path) -> Iterator[Harness]:
    secrets: dict[str, str | None] = {mobizon_conn: SECRET}
    sunk: list[tuple[str, dict[str, Any]]] = []

    def secret_for(provider: str, conn_id: str) -> str | None:
        if conn_id not in secrets:
            raise LookupError(conn_id)
        return secrets[conn_id]

    receiver = Receiver(EventStore(tmp_path / "events.sqlite3"), lambda u, e: sunk.append((u, e)),
                        secret_for=secret_for, quiet_seconds=0.3, secret_ttl=0.0)  # fmt: skip
    httpx.post(f"{sandbox_url}/_sandbox/clock", json={"to": T0, "speed": 0}).raise_for_status()
    with LoopbackServer(receiver.app()) as srv:
        yield Harness(sandbox_url, receiver, srv.url, secrets, sunk)


def test_duplicates_and_disorder_make_one_asset_event_with_the_counts(harness: Harness) -> None:
    harness.configure(webhook_duplicate_every=2, webhook_reverse=True)
    harness.webhook("mobizon_default", SECRET)
    numbers = ["77011110001", "77011110002", "77011110013", "77011110099", "77011110005"]
    campaign_id = send_campaign(numbers)
    harness.advance(60)
    wait_for(lambda: harness.sunk)
    # every event, twice for every second one: the duplicates changed nothing. An attempt is logged when its
    # answer is back, which can be after the receiver sank the campaign: wait for the log, not the sink.
    wait_for(lambda: len(harness.deliveries()) >= 7)
    attempts = [(d["eventId"], d["attempt"]) for d in harness.deliveries()]
    assert len(attempts) == 7 and {a for _, a in attempts} == {1, 2}
    assert sorted(e["event_id"] for e in harness.receiver.store.events()) == [1, 2, 3, 4, 5]
    ((uri, extra),) = harness.sunk
    assert uri == asset_uri("mobizon", "mobizon_default") == "sms://mobizon/mobizon_default"
    assert extra["campaign_ids"] == [campaign_id]
    assert extra["counts"] == {"DELIVRD": 3, "REJECTD": 1, "UNDELIV": 1}
    assert extra["messages"] == 5
    time.sleep(0.5)
    assert len(harness.sunk) == 1  # quiet since: no second event


def test_retries_reach_the_receiver_once_it_knows_the_connection(harness: Harness) -> None:
    harness.configure()
    harness.webhook("mobizon_later", SECRET)  # no such connection yet: 404, Mobizon retries
    send_campaign(["77011110001"])
    harness.advance(10)
    wait_for(lambda: harness.deliveries())
    assert [(d["attempt"], d["httpStatus"]) for d in harness.deliveries()] == [(1, 404)]
    harness.secrets["mobizon_later"] = SECRET
    harness.advance(60)  # attempt 2, a minute later
    wait_for(lambda: len(harness.deliveries()) == 2)
    assert [(d["attempt"], d["httpStatus"]) for d in harness.deliveries()] == [(1, 404), (2, 200)]
    wait_for(lambda: harness.sunk)
    assert harness.sunk[0][0] == "sms://mobizon/mobizon_later"
    assert [e["attempt"] for e in harness.receiver.store.events()] == [2]


def test_a_wrong_signature_is_refused_and_retried(harness: Harness) -> None:
    harness.configure(webhook_attempts=2)
    harness.webhook("mobizon_default", "not-the-secret")
    send_campaign(["77011110001"])
    harness.advance(10)
    wait_for(lambda: harness.deliveries())
    harness.advance(60)
    wait_for(lambda: len(harness.deliveries()) == 2)
    assert [(d["attempt"], d["httpStatus"]) for d in harness.deliveries()] == [(1, 403), (2, 403)]
    assert harness.deliveries()[-1]["undelivered"] is True
    assert harness.receiver.store.events() == [] and harness.sunk == []
