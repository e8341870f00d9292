"""Issue 11 item 3, overlapping tries: a second try of the same task instance starts while the first
try's request is still in flight (Airflow replacing a worker it presumes dead). Two real tries run in
two threads with the same task-instance identity and one durable store; the first one's request is
held by a sandbox fault. The sandbox must end with one campaign / one SMS and each number messaged once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_sms_provider.operators.mobizon import MobizonCampaignOperator, MobizonSendSmsOperator
from airflow_sms_provider.operators.ogangi import OgangiCreateBroadcastOperator
from tests.helpers import DurableStore, add_faults, sandbox_state, set_clock, task_context

NUMBERS = [f"7701222{i:04d}" for i in range(1, 13)]
HOLD = 2.0  # seconds the sandbox holds the first try's request before carrying it out


def context(store: DurableStore, try_number: int) -> dict[str, Any]:
    return task_context("manual__overlap", store, try_number=try_number)


class Try(threading.Thread):
    """One try of the task, in its own thread: its result or its error."""

    def __init__(self, run: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.run_it, self.result, self.error = run, None, None

    def run(self) -> None:
        try:
            self.result = self.run_it()
        except BaseException as err:  # reported by the test
            self.error = err


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def overlap(store: DurableStore, first: Callable[[], Any], second: Callable[[], Any], started: Callable[[], bool]
            ) -> tuple[Try, Try]:
    """Start try 1; once its held request has left (``started``), start try 2; wait for both."""
    one = Try(first)
    one.start()
    wait_for(started, "try 1's request to leave")
    time.sleep(0.3)  # well inside the hold: try 1's request is in flight
    two = Try(second)
    two.start()
    one.join(60)
    two.join(60)
    assert not one.is_alive() and not two.is_alive()
    return one, two


@pytest.fixture
def frozen(sandbox_url: str) -> str:
    set_clock(sandbox_url, speed=0)
    return sandbox_url


def test_overlapping_tries_of_mobizon_campaign_create_and_send_one_campaign(mobizon_conn: str, frozen: str) -> None:
    add_faults(frozen, {"provider": "mobizon", "path": "campaign/create", "action": "delay", "seconds": HOLD})
    store = DurableStore()

    def attempt(try_number: int) -> Callable[[], Any]:
        operator = MobizonCampaignOperator(task_id="send", text="Sale", name="Overlap", recipients=NUMBERS,
                                           wait_for_completion=False)
        return lambda: operator.execute(context(store, try_number))

    one, two = overlap(store, attempt(1), attempt(2),
                       lambda: bool((store.values.get("mobizon_campaign") or {}).get("create_started")))
    assert one.error is None and two.error is None, (one.error, two.error)
    (campaign,) = sandbox_state(frozen, "mobizon")["campaigns"]  # exactly one campaign
    assert campaign["sendCalls"] == 1
    assert sorted(campaign["recipients"]) == NUMBERS and len(campaign["messages"]) == len(NUMBERS)
    assert one.result["campaign_id"] == two.result["campaign_id"] == int(campaign["id"])


def test_overlapping_tries_of_mobizon_single_sms_send_it_once(mobizon_conn: str, frozen: str) -> None:
    add_faults(frozen, {"provider": "mobizon", "path": "sendSmsMessage", "action": "delay", "seconds": HOLD})
    store = DurableStore()

    def attempt(try_number: int) -> Callable[[], Any]:
        operator = MobizonSendSmsOperator(task_id="send", recipient=NUMBERS[0], text="Your code is 1234")
        return lambda: operator.execute(context(store, try_number))

    one, two = overlap(store, attempt(1), attempt(2),
                       lambda: bool((store.values.get("mobizon_sms") or {}).get("started_at")))
    assert one.error is None and two.error is None, (one.error, two.error)
    campaigns = sandbox_state(frozen, "mobizon")["campaigns"]
    messages = [m for c in campaigns for m in c["messages"]]
    assert [m["to"] for m in messages] == [NUMBERS[0]], f"the SMS must exist once, found {len(messages)}"
    assert one.result == two.result


def test_overlapping_tries_of_ogangi_broadcast_create_one_broadcast(ogangi_conn: str, frozen: str) -> None:
    add_faults(frozen, {"provider": "ogangi", "path": "createBroadcastFromJson", "action": "delay", "seconds": HOLD})
    store = DurableStore()

    def attempt(try_number: int) -> Callable[[], Any]:
        operator = OgangiCreateBroadcastOperator(task_id="send", text="Hi", recipients=NUMBERS[:3])
        return lambda: operator.execute(context(store, try_number))

    one, two = overlap(store, attempt(1), attempt(2),
                       lambda: bool((store.values.get("ogangi_broadcast") or {}).get("create_started")))
    # Try 2 waited for try 1's lease and returned its broadcast (before: "may exist", failed).
    assert one.error is None and two.error is None, (one.error, two.error)
    (broadcast,) = sandbox_state(frozen, "ogangi")["broadcasts"]
    assert sorted(r["to"] for r in broadcast["recipients"]) == NUMBERS[:3]
    assert one.result["broadcast_id"] == two.result["broadcast_id"]
