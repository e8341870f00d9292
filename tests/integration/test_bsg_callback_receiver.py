"""The sandbox's BSG status callbacks against the receiver (events/) served on 127.0.0.1.

A BSG campaign sent by the operator with ``delivery_events=True`` carries the receiver's URL
(``<events_url>/bsg/<conn_id>/<callback_token>``); the sandbox posts each status change, some
twice and newest first; the receiver counts each message once and makes one asset event for
the sending run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.events.receiver import Receiver
from airflow_sms_provider.events.store import EventStore
from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator
from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY
from tests.integration.test_webhook_receiver import wait_for
from tests.loopback import LoopbackServer

TOKEN = "cbtok_" + "0123456789abcdefABCDEF_-.~xyz"  # 35 characters


def context(run_id: str = "manual__1") -> dict[str, Any]:
    return {"ti": SimpleNamespace(dag_id="dag", task_id="send", run_id=run_id, map_index=-1)}


@pytest.fixture
def receiver(sandbox_url: str, tmp_path: Path) -> Iterator[tuple[Receiver, str, list[tuple[str, dict[str, Any]]]]]:
    sunk: list[tuple[str, dict[str, Any]]] = []

    def secret_for(provider: str, conn_id: str) -> str | None:
        if (provider, conn_id) != ("bsg", "bsg_default"):
            raise LookupError(conn_id)
        return TOKEN

    recv = Receiver(EventStore(tmp_path / "events.sqlite3"), lambda u, e: sunk.append((u, e)),
                    secret_for=secret_for, quiet_seconds=0.3, secret_ttl=0.0)  # fmt: skip
    httpx.post(f"{sandbox_url}/_sandbox/clock", json={"to": "2030-01-01T00:00:00+00:00", "speed": 0}).raise_for_status()
    with LoopbackServer(recv.app()) as srv:
        yield recv, srv.url, sunk


def bsg_conn_with(monkeypatch: pytest.MonkeyPatch, sandbox_url: str, **extra: Any) -> None:
    conn = {"conn_type": "bsg", "host": sandbox_url, "password": SANDBOX_BSG_API_KEY,
            "extra": {"retry_base_delay": 0.01, **extra}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_BSG_DEFAULT", json.dumps(conn))


def test_a_campaign_with_delivery_events_becomes_one_asset_event(
    receiver: tuple[Receiver, str, list[tuple[str, dict[str, Any]]]], sandbox_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    recv, url, sunk = receiver
    bsg_conn_with(monkeypatch, sandbox_url, callback_token=TOKEN, events_url=url)
    admin = httpx.Client(base_url=sandbox_url, timeout=10)
    admin.post("/_sandbox/bsg/config", json={"callback_tick": 0.01, "callback_duplicate_every": 2,
                                             "callback_reverse": True}).raise_for_status()  # fmt: skip
    numbers = ["380661230001", "380661230002", "380661230013", "380661230066"]
    summary = BsgBulkCampaignOperator(task_id="send", recipients=numbers, text="Hi", sender="Vet klinika",
                                      delivery_events=True).execute(context())  # fmt: skip
    admin.post("/_sandbox/clock", json={"advance": 60}).raise_for_status()
    wait_for(lambda: sunk)
    ((uri, extra),) = sunk
    assert uri == "sms://bsg/bsg_default"
    assert extra["group"] == summary["reference_prefix"] and extra["campaign_ids"] == []
    assert extra["counts"] == {"delivered": 2, "expired": 1, "undelivered": 1} and extra["messages"] == 4
    assert extra["update"] is False
    # each message's "sent" and final status, some twice: recorded once each, counted once per message
    assert len(recv.store.events("bsg/bsg_default")) == 8
    log = admin.get("/_sandbox/bsg/callbacks").json()["deliveries"]
    assert len(log) == 12 and {d["httpStatus"] for d in log} == {200}


def test_the_callback_url_is_checked_before_anything_is_sent(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    op = BsgBulkCampaignOperator(task_id="send", recipients=["380661230001"], text="Hi", sender="Vet klinika",
                                 delivery_events=True)  # fmt: skip
    long_url = "https://airflow.internal.example.com/some/deep/path/sms-events"
    bsg_conn_with(monkeypatch, sandbox_url, callback_token=TOKEN, events_url=long_url)
    with pytest.raises(exc.SmsValidationError, match="BSG takes at most 100") as caught:
        op.execute(context())
    assert TOKEN not in str(caught.value)
    bsg_conn_with(monkeypatch, sandbox_url, events_url="http://127.0.0.1:1/sms-events")
    with pytest.raises(exc.SmsValidationError, match="no callback_token"):
        op.execute(context())
    # Not a word: Airflow's masker (process-wide) would mask it in every later test's text ("too ***").
    bsg_conn_with(monkeypatch, sandbox_url, callback_token="Qz7kx", events_url="http://127.0.0.1:1/sms-events")
    with pytest.raises(exc.SmsValidationError, match="at least 32 characters"):
        op.execute(context())
    both = BsgBulkCampaignOperator(task_id="send", recipients=["380661230001"], text="Hi", sender="Vet klinika",
                                   delivery_events=True, callback_url="https://example.com/cb")  # fmt: skip
    with pytest.raises(exc.SmsValidationError, match="not both"):
        both.execute(context())
    state = httpx.get(f"{sandbox_url}/_sandbox/bsg/state", params={"messages": "false"}).json()
    assert state["campaigns"] == []  # nothing was sent
