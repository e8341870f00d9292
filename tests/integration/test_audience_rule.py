"""Issue 11 item 7, one audience rule: a number repeated within an audience is sent once by every
provider (first row wins, counted), and a row whose filled text is too long is refused before anything
is sent. Every check is made on the sandbox's side."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator, BsgIndividualCampaignOperator
from airflow_sms_provider.operators.campaign import SmsCampaignOperator
from airflow_sms_provider.operators.mobizon import MobizonCampaignOperator
from airflow_sms_provider.operators.ogangi import OgangiCreateBroadcastOperator, OgangiSendSmsByFileOperator
from tests.helpers import DurableStore, sandbox_requests, sandbox_state, set_clock, task_context

# Three rows repeat an earlier number once normalised ("+", spaces, dashes).
AUDIENCE = ["380500000001", "+380 50 000 0002", "380-50-000-0001", "380500000003", "+380500000002",
            "380 500 000 001"]
UNIQUE = ["380500000001", "380500000002", "380500000003"]


def context(store: DurableStore | None = None) -> dict[str, Any]:
    return task_context("manual__audience", store)


@pytest.fixture
def frozen(sandbox_url: str) -> str:
    set_clock(sandbox_url, speed=0)
    return sandbox_url


def bsg_numbers(url: str) -> list[str]:
    state = httpx.get(f"{url}/_sandbox/bsg/state", params={"messages": "true"}).json()
    return [str(m.get("phone") or m.get("number")) for c in state["campaigns"] for m in c["messages"]]


def bsg_texts(url: str) -> dict[str, str]:
    state = httpx.get(f"{url}/_sandbox/bsg/state", params={"messages": "true"}).json()
    return {str(m.get("phone") or m.get("number")): m.get("text") for c in state["campaigns"] for m in c["messages"]}


def assert_duplicates_reported(summary: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    assert summary["audience_duplicates"]["count"] == 3
    assert summary["audience_duplicates"]["examples"][0] == {"row": 3, "first_row": 1}
    # Task loggers write through Airflow's structlog (stdout) or the logging module, by version.
    assert "duplicates: 3" in caplog.text + CAPSYS[0].readouterr().out


CAPSYS: list[Any] = []


@pytest.fixture(autouse=True)
def _capsys(capsys: pytest.CaptureFixture[str]) -> Any:
    CAPSYS[:] = [capsys]
    yield
    CAPSYS.clear()


def test_bsg_bulk_sends_a_repeated_number_once(bsg_conn: str, frozen: str, caplog: pytest.LogCaptureFixture
                                               ) -> None:
    caplog.set_level(logging.INFO)
    summary = BsgBulkCampaignOperator(task_id="send", recipients=AUDIENCE, text="Sale", sender="Vet klinika"
                                      ).execute(context())  # fmt: skip
    assert sorted(bsg_numbers(frozen)) == UNIQUE
    assert summary["phones"] == 3
    assert_duplicates_reported(summary, caplog)


def test_bsg_individual_keeps_the_first_row_of_a_repeated_number(bsg_conn: str, frozen: str) -> None:
    rows = [{"phone": "380500000001", "name": "Ana"}, {"phone": "380500000002", "name": "Bo"},
            {"phone": "+380 50 000 0001", "name": "Ana again"}]
    summary = BsgIndividualCampaignOperator(task_id="send", recipients=rows, text="Hi {name}", sender="Vet klinika"
                                            ).execute(context())  # fmt: skip
    assert bsg_texts(frozen) == {"380500000001": "Hi Ana", "380500000002": "Hi Bo"}
    assert summary["audience_duplicates"] == {"count": 1, "examples": [{"row": 3, "first_row": 1}]}


def test_ogangi_broadcast_sends_a_repeated_number_once(ogangi_conn: str, frozen: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    summary = OgangiCreateBroadcastOperator(task_id="send", recipients=AUDIENCE, text="Hi").execute(context())
    (broadcast,) = sandbox_state(frozen, "ogangi")["broadcasts"]
    assert sorted(r["to"] for r in broadcast["recipients"]) == UNIQUE
    assert summary["recipients"] == 3
    assert_duplicates_reported(summary, caplog)


def test_ogangi_send_by_file_sends_a_repeated_number_once(ogangi_conn: str, frozen: str,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    summary = OgangiSendSmsByFileOperator(task_id="send", recipients=AUDIENCE, text="Hi").execute(context())
    messages = sandbox_state(frozen, "ogangi")["messages"]
    assert sorted(str(m.get("to") or m.get("number")) for m in messages) == UNIQUE
    assert_duplicates_reported(summary, caplog)


def test_mobizon_campaign_reports_the_repeated_numbers(mobizon_conn: str, frozen: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    summary = MobizonCampaignOperator(task_id="send", text="Hi", recipients=AUDIENCE, wait_for_completion=False
                                      ).execute(context())  # fmt: skip
    (campaign,) = sandbox_state(frozen, "mobizon")["campaigns"]
    assert sorted(campaign["recipients"]) == UNIQUE and len(campaign["messages"]) == 3
    assert summary["added"] == 3
    assert_duplicates_reported(summary, caplog)


def test_neutral_operator_reports_the_repeated_numbers(bsg_conn: str, frozen: str) -> None:
    summary = SmsCampaignOperator(task_id="send", conn_id=bsg_conn, text="Sale", sender="Vet klinika",
                                  recipients=AUDIENCE, wait_for_completion=False).execute(context())
    assert sorted(bsg_numbers(frozen)) == UNIQUE
    assert summary["accepted"] == 3 and summary["duplicates"] == 3


# ------------------------------------------------------------------ a value that makes the text too long

LONG = "x" * 1600  # over Mobizon's 10 parts (1530 GSM-7 characters) and BSG's 765 once filled in


def test_mobizon_template_row_too_long_fails_before_any_request(mobizon_conn: str, frozen: str) -> None:
    rows = [{"recipient": "77011112201", "name": "Ana"}, {"recipient": "77011112202", "name": LONG}]
    operator = MobizonCampaignOperator(task_id="send", text="Hi {name}", campaign_type=3, recipients=rows,
                                       wait_for_completion=False)
    with pytest.raises(exc.SmsValidationError, match=r"row 2: .*'name', is 1600 characters"):
        operator.execute(context())
    assert sandbox_requests(frozen, "mobizon") == []


def test_mobizon_template_row_too_long_is_skipped_with_a_reason(mobizon_conn: str, frozen: str) -> None:
    rows = [{"recipient": "77011112201", "name": "Ana"}, {"recipient": "77011112202", "name": LONG}]
    summary = MobizonCampaignOperator(task_id="send", text="Hi {name}", campaign_type=3, recipients=rows,
                                      on_invalid="skip", wait_for_completion=False).execute(context())
    (campaign,) = sandbox_state(frozen, "mobizon")["campaigns"]
    assert sorted(campaign["recipients"]) == ["77011112201"]
    (rejected,) = summary["invalid"]["examples"]
    assert rejected["row"] == 2 and "1600 characters" in rejected["reason"]


def test_bsg_individual_row_too_long_fails_before_any_request(bsg_conn: str, frozen: str) -> None:
    rows = [{"phone": "380500000001", "name": "Ana"}, {"phone": "380500000002", "name": LONG}]
    operator = BsgIndividualCampaignOperator(task_id="send", recipients=rows, text="Hi {name}", sender="Vet klinika")
    with pytest.raises(exc.SmsValidationError, match=r"recipients row 2: .*'name', is 1600 characters"):
        operator.execute(context())
    assert sandbox_requests(frozen, "bsg") == []
