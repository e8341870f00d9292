"""Every HTTP call of every hook, sync and async, ends by its overall deadline.

A tiny server on 127.0.0.1 answers every request with a status line and headers trickled
a byte every 0.1 s, never ending: each read is quick (well under the connection's 0.5 s
timeout), so only a deadline on the whole attempt (connect + the whole answer, headers
included) ends the call. The table below names a call for every public method of the
three hooks; :func:`test_the_table_covers_every_public_method` fails when a new method is
not in it, so a method added later is checked too (or is declared free of HTTP).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from airflow.providers.common.compat.sdk import BaseHook

from airflow_sms_provider import transport
from airflow_sms_provider.hooks.bsg import BsgHook
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.hooks.ogangi import OgangiHook
from airflow_sms_provider.protocols import bsg as bsg_proto
from airflow_sms_provider.transport import Request
from tests.helpers import within

TIMEOUT = 0.5
DEADLINE = transport.DEADLINE_FACTOR * TIMEOUT
# A call may make a few attempts in a row (a BSG login before the call itself); each ends by DEADLINE.
BOUND = 4 * DEADLINE + 3
PHONE = "380501234567"
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


class TricklingServer:
    """Answers every request with headers a byte every ``pause`` seconds, for ever; stops on exit."""

    def __init__(self, pause: float = 0.1, lifetime: float = 600) -> None:
        self.pause, self.requests = pause, 0
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._ends = time.monotonic() + lifetime  # stops by itself even if a test forgets it

    def __enter__(self) -> TricklingServer:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._ends:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # the accept timeout, or the socket closed on exit
                continue
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                if not conn.recv(65536):
                    return
                self.requests += 1
                answer = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100_000
                for byte in answer:
                    if self._stop.is_set() or time.monotonic() > self._ends:
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(self.pause)
            except OSError:  # the client gave up: what the test wants
                return


@pytest.fixture(scope="module")
def trickling() -> Iterator[TricklingServer]:
    with TricklingServer() as server:
        # The suite's BSG contract check (tests/contract/bsg_traffic.py) loads BSG's spec on the first
        # BSG request, seconds on a loaded machine: longer than the 1 s deadline here. Load it first.
        with httpx.Client() as client, pytest.raises(httpx.ConnectError):
            client.post("http://127.0.0.1:9/api/auth/login", json={"api_key": "k"})
        yield server


@pytest.fixture
def slow_connections(trickling: TricklingServer, monkeypatch: pytest.MonkeyPatch) -> TricklingServer:
    extra = {"timeout": TIMEOUT, "retry_attempts": 1, "retry_base_delay": 0.01}
    conns = {
        "mobizon": {"conn_type": "mobizon", "host": trickling.url, "password": "k", "extra": extra},
        "bsg": {"conn_type": "bsg", "host": trickling.url, "password": "k", "extra": extra},
        "ogangi": {"conn_type": "ogangi", "host": f"{trickling.url}/mmc", "login": "u", "password": "p",
                   "extra": {**extra, "instance_id": "1", "public_key": "pk"}},
    }  # fmt: skip
    for name, conn in conns.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}_DEFAULT", json.dumps(conn))
    return trickling


def _async(kind: str, conn_id: str, *args: Any) -> Callable[[Any], Any]:
    """A call of the hook class's async reader/sender, in an event loop of its own."""

    def call(hook: Any) -> Any:
        client, function = getattr(type(hook), kind)(BaseHook.get_connection(conn_id))

        async def run() -> Any:
            async with client:
                return await function(client, *args)

        return asyncio.run(run())

    return call


def _drain(value: Any) -> Any:
    return list(value) if inspect.isgenerator(value) or isinstance(value, Iterator) else value


MOBIZON: dict[str, Callable[[MobizonHook], Any]] = {
    "add_recipient_portions": lambda h: h.add_recipient_portions(1, [[PHONE]]),
    "add_recipients": lambda h: h.add_recipients(1, [PHONE]),
    "add_recipients_in_portions": lambda h: h.add_recipients_in_portions(1, [PHONE]),
    "call": lambda h: h.call("campaign", "get", {"id": 1}),
    "confirm_campaign": lambda h: h.confirm_campaign(1),
    "create_campaign": lambda h: h.create_campaign("Hi"),
    "delete_campaign": lambda h: h.delete_campaign(1),
    "find_sms": lambda h: h.find_sms(PHONE, "Hi", since=NOW),
    "get_balance": lambda h: h.get_balance(),
    "get_campaign": lambda h: h.get_campaign(1),
    "get_campaign_info": lambda h: h.get_campaign_info(1),
    "get_campaign_links": lambda h: h.get_campaign_links(1),
    "get_sms_status": lambda h: h.get_sms_status([1]),
    "get_task_status": lambda h: h.get_task_status(1),
    "iter_campaigns": lambda h: h.iter_campaigns(),
    "iter_delivery_records": lambda h: h.iter_delivery_records([1]),
    "iter_delivery_pages": lambda h: h.iter_delivery_pages([1]),
    "iter_messages": lambda h: h.iter_messages(),
    "iter_sms_status": lambda h: h.iter_sms_status([1]),
    "list_campaigns": lambda h: h.list_campaigns(),
    "list_messages": lambda h: h.list_messages(),
    "neutral_status": lambda h: h.neutral_status(1),
    "read_campaign": lambda h: h.read_campaign(1),
    "send_campaign": lambda h: h.send_campaign(1),
    "send_sms": lambda h: h.send_sms(PHONE, "Hi"),
    "send_text": lambda h: h.send_text([PHONE], "Hi", None),
    "test_connection": lambda h: h.test_connection(),
    "async_campaign_reader": _async("async_campaign_reader", "mobizon_default", 1),
    "async_counts_reader": _async("async_counts_reader", "mobizon_default", 1),
    "async_text_sender": _async("async_text_sender", "mobizon_default", [PHONE], "Hi", None),
}
BSG: dict[str, Callable[[BsgHook], Any]] = {
    "call": lambda h: h.call(bsg_proto.get_balance()),
    "campaign_price": lambda h: h.campaign_price([PHONE], "Hi", "Sender"),
    "confirm_campaign": lambda h: h.confirm_campaign(1),
    "estimate": lambda h: h.estimate("Hi", [PHONE], "Sender"),
    "find_message": lambda h: h.find_message("ref1"),
    "get_balance": lambda h: h.get_balance(),
    "get_campaign": lambda h: h.get_campaign(1),
    "get_campaign_detail": lambda h: h.get_campaign_detail(1),
    "iter_delivery_records": lambda h: h.iter_delivery_records([1]),
    "iter_delivery_pages": lambda h: h.iter_delivery_pages([1]),
    "iter_messages": lambda h: h.iter_messages(1),
    "list_messages": lambda h: h.list_messages(campaign_id=1),
    "neutral_status": lambda h: h.neutral_status(1),
    "read_campaign": lambda h: h.read_campaign(1),
    "send_bulk": lambda h: h.send_bulk([PHONE], "Hi", "Sender"),
    "send_groups": lambda h: h.send_groups([1], "Hi", "Sender"),
    "send_individual": lambda h: h.send_individual([{"phone": PHONE, "text": "Hi", "sender": "Sender"}]),
    "send_text": lambda h: h.send_text([PHONE], "Hi", "Sender"),
    "stop_campaign": lambda h: h.stop_campaign(1),
    "test_connection": lambda h: h.test_connection(),
    "async_campaign_reader": _async("async_campaign_reader", "bsg_default", 1),
    "async_counts_reader": _async("async_counts_reader", "bsg_default", 1),
    "async_text_sender": _async("async_text_sender", "bsg_default", [PHONE], "Hi", "Sender"),
}
OGANGI: dict[str, Callable[[OgangiHook], Any]] = {
    "broadcast_action": lambda h: h.broadcast_action("stop", 1),
    "call": lambda h: h.call(Request("GET", "shortcodes", "shortcodes")),
    "confirm_campaign": lambda h: h.confirm_campaign(1),
    "create_broadcast": lambda h: h.create_broadcast([PHONE], text="Hi", shortcode="123"),
    "delete_broadcast": lambda h: h.delete_broadcast(1),
    "get_broadcast": lambda h: h.get_broadcast(1),
    "get_shortcodes": lambda h: h.get_shortcodes(),
    "neutral_status": lambda h: h.neutral_status(1),
    "read_campaign": lambda h: h.read_campaign(1),
    "resume_broadcast": lambda h: h.resume_broadcast(1),
    "send_sms_by_file": lambda h: h.send_sms_by_file(("r.csv", f"{PHONE},Hi\n".encode())),
    "send_sms_rows": lambda h: h.send_sms_rows([{"number": PHONE, "text": "Hi"}]),
    "send_text": lambda h: h.send_text([PHONE], "Hi", None),
    "stop_broadcast": lambda h: h.stop_broadcast(1),
    "suspend_broadcast": lambda h: h.suspend_broadcast(1),
    "test_connection": lambda h: h.test_connection(),
    "async_campaign_reader": _async("async_campaign_reader", "ogangi_default", 1),
    "async_text_sender": _async("async_text_sender", "ogangi_default", [PHONE], "Hi", None),
}
TABLE: dict[type, dict[str, Callable[[Any], Any]]] = {MobizonHook: MOBIZON, BsgHook: BSG, OgangiHook: OGANGI}
# Public methods that make no HTTP call: pure mappings, the client itself, and Airflow's own.
NO_HTTP = {
    "campaign_word",
    "close",
    "dashboard_page",
    "delivery_record",
    "delivery_records",
    "describe_campaign",
    "for_connection",
    "get_conn",
    "message_status",
    "neutral_word",
    "status_reached",
    "pricer",
    "events_callback_url",
    "get_connection_form_widgets",
    "get_ui_field_behaviour",
    "filled_text_problem",
    "estimate_rule",  # the per-row rule of an estimate: pure
    # estimate prices from the connection's extras on Mobizon and Ogangi (BSG's asks its price endpoint:
    # in the table); Ogangi has no counts endpoint (async_counts_reader returns None).
    "estimate",
    "async_counts_reader",
}
# Refused before any request: Ogangi lists no messages.
NO_HTTP_ON = {OgangiHook: {"iter_delivery_records", "iter_delivery_pages"}}
CASES = [pytest.param(cls, name, id=f"{cls.__name__}.{name}") for cls, calls in TABLE.items() for name in calls]


def public_methods(cls: type) -> set[str]:
    """Public callables defined by this package's classes (Airflow's own BaseHook methods left out)."""
    names = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("airflow_sms_provider"):
            names |= {n for n, v in vars(klass).items() if not n.startswith("_") and callable(getattr(cls, n))}
    return names


@pytest.mark.parametrize("cls", list(TABLE), ids=lambda c: c.__name__)
def test_the_table_covers_every_public_method(cls: type) -> None:
    missing = public_methods(cls) - set(TABLE[cls]) - NO_HTTP - NO_HTTP_ON.get(cls, set())
    assert not missing, f"add a call of {sorted(missing)} to the deadline table (or to NO_HTTP if it makes none)"


@pytest.mark.parametrize(("cls", "name"), CASES)
def test_every_call_ends_by_its_deadline_against_trickled_headers(
    slow_connections: TricklingServer, cls: type, name: str
) -> None:
    hook = cls()
    before = slow_connections.requests
    try:
        took, outcome = within(BOUND, lambda: _drain(TABLE[cls][name](hook)), f"{cls.__name__}.{name}")
    finally:
        hook.close()
    assert slow_connections.requests > before, f"{name} never reached the server: {outcome}"  # the table is honest
    error = outcome.get("error")
    if error is not None:  # test_connection answers (False, why) instead of raising
        assert "deadline" in str(error) or "could not" in str(error) or "no answer" in str(error), repr(error)
    assert took < BOUND, took
