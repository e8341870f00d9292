"""Ogangi behaviours the MMC document fixes or leaves open, and the readings chosen (issue 13).

The choices are in docs/ogangi.md ("Decisions").
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.hooks.ogangi import OgangiHook
from airflow_sms_provider.operators.ogangi import OgangiCreateBroadcastOperator, OgangiSendSmsByFileOperator
from airflow_sms_provider.sandbox import ogangi as sb
from tests.helpers import DurableStore, add_faults, sandbox_requests, sandbox_state, set_clock, task_context

NUMBERS = ["14155550100", "14155550101"]
XLS = Path(__file__).parents[1] / "data" / "ogangi_recipients.xls"  # written once with xlwt 1.3.0


def state(url: str) -> dict[str, Any]:
    return sandbox_state(url, "ogangi")


def context(store: DurableStore) -> dict[str, Any]:
    return task_context("manual__1", store, task_id="create")


@pytest.fixture
def hook(ogangi_conn: str, sandbox_url: str) -> Any:
    set_clock(sandbox_url, speed=0)
    h = OgangiHook(ogangi_conn)
    yield h
    h.close()


# ------------------------------------------------------------------ personalised texts


def test_sandbox_does_not_fill_params_the_document_never_promises(hook: OgangiHook, sandbox_url: str) -> None:
    recipients = [{"to": n, "params": {"name": f"N{i}"}} for i, n in enumerate(NUMBERS)]
    hook.create_broadcast(recipients, text="Hello {name}", server_side_params=True)
    (item,) = state(sandbox_url)["broadcasts"]
    assert [(r["text"], r["params"]) for r in item["recipients"]] == [
        ("Hello {name}", {"name": "N0"}), ("Hello {name}", {"name": "N1"})]


def test_hook_fills_placeholders_itself_and_sends_no_params(hook: OgangiHook, sandbox_url: str) -> None:
    recipients = [{"to": n, "params": {"name": f"N{i}"}} for i, n in enumerate(NUMBERS)]
    hook.create_broadcast(recipients, text="Hello {name}")
    (item,) = state(sandbox_url)["broadcasts"]
    assert [(r["text"], r["params"]) for r in item["recipients"]] == [("Hello N0", {}), ("Hello N1", {})]


@pytest.mark.parametrize(("server_side", "texts"), [(False, ["Hi Ana", "Hi Bo"]), (True, ["Hi {name}", "Hi {name}"])])
def test_operator_fills_unless_server_side_params_is_chosen(
    ogangi_conn: str, sandbox_url: str, server_side: bool, texts: list[str]
) -> None:
    op = OgangiCreateBroadcastOperator(task_id="create", text="Hi {name}", check_shortcode=False,
                                       recipients=[{"number": NUMBERS[0], "name": "Ana"},
                                                   {"number": NUMBERS[1], "name": "Bo"}],
                                       server_side_params=server_side)  # fmt: skip
    op.execute(context(DurableStore()))
    assert [r["text"] for r in state(sandbox_url)["broadcasts"][0]["recipients"]] == texts


def test_file_rows_are_filled_client_side(ogangi_conn: str, sandbox_url: str) -> None:
    """Right whether or not the server fills {0}: the text column already holds the final text."""
    op = OgangiSendSmsByFileOperator(task_id="file", recipients=[{"number": NUMBERS[0], "name": "Ana"}],
                                     text="Hi {0}", sender="24365", check_shortcode=False)  # fmt: skip
    op.execute(context(DurableStore()))
    (message,) = state(sandbox_url)["messages"]
    assert message["text"] == "Hi Ana"
    upload = next(r for r in sandbox_requests(sandbox_url, "ogangi") if "sendSMSByFile" in r["path"])
    assert upload["status"] == 200


# ------------------------------------------------------------------ ERROR wording


UNKNOWN_ERROR = (
    "<response><input>createBroadcastFromJson</input><status>ERROR</status>"
    "<description>Broadcast queue busy, try later</description></response>"
)


def test_unknown_error_after_a_create_is_ambiguous_and_blocks_a_second_create(
    ogangi_conn: str, sandbox_url: str
) -> None:
    add_faults(sandbox_url, {"provider": "ogangi", "path": "createBroadcastFromJson", "action": "http_status",
                             "status": 200, "body": UNKNOWN_ERROR, "times": 1})  # fmt: skip
    store = DurableStore()
    op = OgangiCreateBroadcastOperator(task_id="create", text="Hi", recipients=NUMBERS, check_shortcode=False)
    with pytest.raises(exc.SmsAmbiguousError):
        op.execute(context(store))
    # The retry does not create a second broadcast: the first may exist.
    with pytest.raises(exc.SmsFatalError, match="may exist"):
        op.execute(context(store))
    assert sum("createBroadcastFromJson" in r["path"] for r in sandbox_requests(sandbox_url, "ogangi")) == 1


# ------------------------------------------------------------------ Excel


def test_legacy_xls_upload_is_read(hook: OgangiHook, sandbox_url: str) -> None:
    """The document: "The recipient list its a File (text or excel)"."""
    messages = hook.send_sms_by_file(("recipients.xls", XLS.read_bytes()))
    assert [(m["to"], m["text"], m["status"]) for m in messages] == [
        ("14155550100", "Hi Ana", "SENT_TO_CARRIER"), ("14155550101", "Hello from xls", "SENT_TO_CARRIER")]


# ------------------------------------------------------------------ the instance's time zone


def test_schedule_is_read_in_the_instances_zone(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    set_clock(sandbox_url, speed=0)
    httpx.post(f"{sandbox_url}/_sandbox/config", json={"ogangi_account_timezone": "America/Caracas"}
               ).raise_for_status()  # fmt: skip
    conn = {"conn_type": "ogangi", "host": f"{sandbox_url}/mmc", "login": sb.SANDBOX_OGANGI_USER,
            "password": sb.SANDBOX_OGANGI_PRIVATE_KEY,
            "extra": {"instance_id": sb.SANDBOX_OGANGI_INSTANCE_ID, "public_key": sb.SANDBOX_OGANGI_PUBLIC_KEY,
                      "schedule_timezone": "America/Caracas"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_OGANGI_CARACAS", json.dumps(conn))
    now = dt.datetime.fromisoformat(httpx.get(f"{sandbox_url}/_sandbox/clock").json()["now"])
    when = (now + dt.timedelta(hours=6)).replace(second=0, microsecond=0)
    hook = OgangiHook("ogangi_caracas")
    try:
        created = hook.create_broadcast(NUMBERS, text="Hi", scheduled_at=when)
    finally:
        hook.close()
    assert dt.datetime.fromisoformat(created["startDate"]) == when
