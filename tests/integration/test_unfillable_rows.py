"""Issue 11 item 7, one audience rule: a row whose values cannot fill the text (a placeholder without
a value, an empty filled text) follows ``on_invalid`` on every send that fills templates, as the
estimate does: ``skip`` leaves the row out, reports it with the estimate's words and sends every
other row once; ``fail`` names the row and the placeholder before any request.

Found (#11 audit): under ``on_invalid="skip"`` a row missing a ``{name}`` value failed the whole
Mobizon campaign, Ogangi broadcast and Ogangi file send, although the estimate counted it as
rejected and the others as sent. Every check is made on the sandbox's side.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.operators.bsg import BsgIndividualCampaignOperator
from airflow_sms_provider.operators.mobizon import MobizonCampaignOperator
from airflow_sms_provider.operators.ogangi import OgangiCreateBroadcastOperator, OgangiSendSmsByFileOperator
from tests.conftest import mobizon_conn_uri
from tests.helpers import DurableStore, add_faults, sandbox_requests, sandbox_state, set_clock, task_context

NO_NAME = "no value for {name}"
EMPTY = "the text filled with this row's values is empty"


def context(store: DurableStore | None = None) -> dict[str, Any]:
    return task_context("manual__fill", store)


@pytest.fixture
def frozen(sandbox_url: str) -> str:
    set_clock(sandbox_url, speed=0)
    return sandbox_url


def reasons(summary: dict[str, Any]) -> list[tuple[int, str]]:
    return [(e["row"], e["reason"]) for e in summary["invalid"]["examples"]]


# ------------------------------------------------------------------ Mobizon (template campaign)

MOBIZON_ROWS = [{"recipient": "77011112201", "name": "Ana"}, {"recipient": "77011112202"},
                {"recipient": "77011112203", "name": "Bo"}]


def mobizon(rows: Any, on_invalid: str = "skip", **kw: Any) -> MobizonCampaignOperator:
    return MobizonCampaignOperator(task_id="send", text="Hi {name}", campaign_type=3, recipients=rows,
                                   on_invalid=on_invalid, wait_for_completion=False, **kw)


def test_mobizon_skip_leaves_out_a_row_without_a_value_and_sends_the_others(mobizon_conn: str, frozen: str) -> None:
    summary = mobizon(MOBIZON_ROWS).execute(context())
    (campaign,) = sandbox_state(frozen, "mobizon")["campaigns"]
    assert sorted(campaign["recipients"]) == ["77011112201", "77011112203"] and campaign["sendCalls"] == 1
    assert summary["added"] == 2
    assert reasons(summary) == [(2, NO_NAME)]


def test_mobizon_skip_of_plain_numbers_for_a_template_stops_before_any_request(mobizon_conn: str,
                                                                               frozen: str) -> None:
    # A run of plain numbers (no values at all) goes the batched path: every row is skipped, none sent.
    with pytest.raises(exc.SmsValidationError, match=r"recipients: no valid row \(3 rejected\)"):
        mobizon(["77011112201", "77011112202", "77011112203"]).execute(context())
    assert sandbox_requests(frozen, "mobizon") == []


def test_mobizon_fail_names_the_row_and_placeholder_before_any_request(mobizon_conn: str, frozen: str) -> None:
    with pytest.raises(exc.SmsValidationError, match=r"recipients row 2: placeholder\(s\) \{name\} have no value"):
        mobizon(MOBIZON_ROWS, on_invalid="fail").execute(context())
    assert sandbox_requests(frozen, "mobizon") == []


def test_mobizon_resume_with_skipped_rows_sees_the_same_audience(sandbox_url: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger's digests count the rows the send sends: a skipped row is in neither, so a retry
    (in the same order, then in another) resumes instead of stopping on a "changed audience"."""
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", mobizon_conn_uri(sandbox_url, retry_attempts=1))
    set_clock(sandbox_url, speed=0)
    rows = [{"recipient": str(77010000001 + i), **({} if i % 7 == 3 else {"name": f"N{i}"})} for i in range(1200)]
    valid = sorted(r["recipient"] for r in rows if "name" in r)
    add_faults(sandbox_url, {"provider": "mobizon", "path": "addRecipients", "action": "http_status", "status": 500,
                             "skip": 1, "times": 1})  # fmt: skip
    store = DurableStore()
    with pytest.raises(Exception, match="500"):
        mobizon(rows).execute(context(store))
    summary = mobizon(list(reversed(rows))).execute(context(store))
    (campaign,) = sandbox_state(sandbox_url, "mobizon")["campaigns"]
    assert sorted(campaign["recipients"]) == valid and campaign["sendCalls"] == 1
    assert summary["invalid"]["rejected"] == 1200 - len(valid)


# ------------------------------------------------------------------ Ogangi broadcast

OGANGI_ROWS = [{"recipient": "584121234501", "name": "Ana"}, {"recipient": "584121234502"},
               {"recipient": "584121234503", "name": "Bo"}]


def test_ogangi_broadcast_skip_leaves_out_a_row_without_a_value(ogangi_conn: str, frozen: str) -> None:
    summary = OgangiCreateBroadcastOperator(task_id="send", text="Hi {name}", recipients=OGANGI_ROWS,
                                            on_invalid="skip").execute(context())
    (broadcast,) = sandbox_state(frozen, "ogangi")["broadcasts"]
    assert sorted(r["to"] for r in broadcast["recipients"]) == ["584121234501", "584121234503"]
    assert summary["recipients"] == 2 and reasons(summary) == [(2, NO_NAME)]


def test_ogangi_broadcast_skip_leaves_out_an_empty_text(ogangi_conn: str, frozen: str) -> None:
    rows = [{"recipient": "584121234501", "name": "Ana"}, {"recipient": "584121234502", "name": ""}]
    summary = OgangiCreateBroadcastOperator(task_id="send", text="{name}", recipients=rows,
                                            on_invalid="skip").execute(context())
    (broadcast,) = sandbox_state(frozen, "ogangi")["broadcasts"]
    assert [r["to"] for r in broadcast["recipients"]] == ["584121234501"]
    assert reasons(summary) == [(2, EMPTY)]


def test_ogangi_broadcast_skip_of_every_row_stops_before_any_request(ogangi_conn: str, frozen: str) -> None:
    rows = [{"recipient": "584121234501"}, {"recipient": "584121234502"}]
    with pytest.raises(exc.SmsValidationError, match=r"recipients: no valid row \(2 rejected\)"):
        OgangiCreateBroadcastOperator(task_id="send", text="Hi {name}", recipients=rows,
                                      on_invalid="skip").execute(context())
    assert sandbox_requests(frozen, "ogangi") == []


def test_ogangi_broadcast_fail_names_the_row_before_any_request(ogangi_conn: str, frozen: str) -> None:
    with pytest.raises(exc.SmsValidationError, match=r"recipients row 2: placeholder \{name\} has no value"):
        OgangiCreateBroadcastOperator(task_id="send", text="Hi {name}", recipients=OGANGI_ROWS).execute(context())
    assert sandbox_requests(frozen, "ogangi") == []


# ------------------------------------------------------------------ Ogangi send by file


def file_numbers(url: str) -> list[str]:
    return sorted(str(m.get("to") or m.get("number")) for m in sandbox_state(url, "ogangi")["messages"])


def test_ogangi_file_skip_leaves_out_rows_it_cannot_fill(ogangi_conn: str, frozen: str) -> None:
    rows = [{"recipient": "584121234501", "name": "Ana"}, {"recipient": "584121234502"},
            {"recipient": "584121234503", "name": "Bo"}, {"recipient": "584121234504", "name": ""}]
    summary = OgangiSendSmsByFileOperator(task_id="send", text="{0}", recipients=rows, template_params=["name"],
                                          on_invalid="skip").execute(context())
    assert file_numbers(frozen) == ["584121234501", "584121234503"]
    assert summary["invalid"]["rejected"] == 2
    assert [row for row, _ in reasons(summary)] == [2, 4]
    assert "no value for template parameter(s) ['name']" in reasons(summary)[0][1]
    assert reasons(summary)[1][1] == EMPTY


def test_ogangi_file_skip_leaves_out_a_row_with_too_few_values(ogangi_conn: str, frozen: str) -> None:
    rows = [{"recipient": "584121234501", "a": "1", "b": "2"}, {"recipient": "584121234502", "a": "1"}]
    summary = OgangiSendSmsByFileOperator(task_id="send", text="Code {0}-{1}", recipients=rows,
                                          on_invalid="skip").execute(context())
    assert file_numbers(frozen) == ["584121234501"]
    assert reasons(summary) == [(2, "the text uses {1} but the row has 1 template value(s)")]


def test_ogangi_file_skip_of_every_row_stops_before_any_request(ogangi_conn: str, frozen: str) -> None:
    rows = [{"recipient": "584121234501"}, {"recipient": "584121234502"}]
    with pytest.raises(exc.SmsValidationError, match=r"recipients: no valid row \(2 rejected\)"):
        OgangiSendSmsByFileOperator(task_id="send", text="Hi {0}", recipients=rows, template_params=["name"],
                                    on_invalid="skip").execute(context())
    assert sandbox_requests(frozen, "ogangi") == []


def test_ogangi_file_fail_names_the_row_before_any_request(ogangi_conn: str, frozen: str) -> None:
    rows = [{"recipient": "584121234501", "name": "Ana"}, {"recipient": "584121234502"}]
    with pytest.raises(exc.SmsValidationError, match=r"recipients row 2: no value for template parameter"):
        OgangiSendSmsByFileOperator(task_id="send", text="Hi {0}", recipients=rows,
                                    template_params=["name"]).execute(context())
    assert sandbox_requests(frozen, "ogangi") == []


# ------------------------------------------------------------------ BSG individual

BSG_ROWS = [{"phone": "380500000001", "name": "Ana"}, {"phone": "380500000002"},
            {"phone": "380500000003", "name": "Bo"}]


def test_bsg_individual_skip_reports_a_row_without_a_value_in_the_estimate_s_words(bsg_conn: str,
                                                                                   frozen: str) -> None:
    summary = BsgIndividualCampaignOperator(task_id="send", recipients=BSG_ROWS, text="Hi {name}",
                                            sender="Vet klinika", on_invalid="skip").execute(context())
    state = httpx.get(f"{frozen}/_sandbox/bsg/state", params={"messages": "true"}).json()
    sent = sorted(str(m.get("phone") or m.get("number")) for c in state["campaigns"] for m in c["messages"])
    assert sent == ["380500000001", "380500000003"] and summary["phones"] == 2
    assert reasons(summary) == [(2, NO_NAME)]


def test_bsg_individual_fail_names_the_row_before_any_request(bsg_conn: str, frozen: str) -> None:
    with pytest.raises(exc.SmsValidationError, match=r"recipients row 2: placeholder \{name\} has no value"):
        BsgIndividualCampaignOperator(task_id="send", recipients=BSG_ROWS, text="Hi {name}",
                                      sender="Vet klinika").execute(context())
    assert sandbox_requests(frozen, "bsg") == []
