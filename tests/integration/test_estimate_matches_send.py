"""One audience rule: what ``SmsHook.estimate`` counts is what the neutral operator then sends.

A hostile audience (the same number spelled three ways, a number that is not one, a row
whose value makes the filled text too long for the provider) is
estimated, then sent with ``SmsCampaignOperator(on_invalid="skip")``; the estimate's
recipients, rejected rows and duplicates must equal what the sandbox received and what the
operator reports, on every provider.

Found (#11 audit): the estimate counted (and priced) a row whose value makes the text too long,
which the send then refuses; on BSG the whole estimate failed, the price endpoint refusing the
over-length text. The estimate now applies the send's own per-row rule (``filled_text_problem``
of the provider's protocol module, through the hook).

Found too: a row without a value for ``{name}`` was rejected by the estimate but failed the whole
send on Mobizon and Ogangi under ``on_invalid="skip"``; every send now skips it (and reports it with
the estimate's words), so the rejected counts agree.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.operators.campaign import SmsCampaignOperator
from airflow_sms_provider.providers import provider_named
from tests.helpers import set_clock, task_context

TEXT = "Hi {name}"
HOSTILE = [
    {"recipient": "380500000001", "name": "Ana"},
    {"recipient": "+380 50 000 0001", "name": "Ana again"},  # the same number, spelled otherwise
    {"recipient": "380500000002", "name": "Bo"},
    {"recipient": "not a number", "name": "Cy"},
    {"recipient": "380500000004", "name": "x" * 1600},  # too long once filled, on every provider
    {"recipient": "380-50-000-0002", "name": "Bo again"},
    {"recipient": "380500000005", "name": "Di"},
    {"recipient": "380500000006"},  # no {name} value: rejected by the estimate, skipped by every send
    {"recipient": "380500000007", "nickname": "Ed"},  # a value, but not the one the text needs
]
SENDER = {"mobizon": None, "bsg": "Vet klinika", "ogangi": None}


def context() -> dict[str, Any]:
    return task_context("manual__estimate")


def received(url: str, provider: str) -> list[str]:
    """Every number the sandbox holds a message for (repeats kept)."""
    state = httpx.get(f"{url}/_sandbox/{provider}/state", params={"messages": "true"}).json()
    if provider == "mobizon":
        return [str(r) for c in state["campaigns"] for r in c["recipients"]]
    if provider == "bsg":
        return [str(m.get("phone") or m.get("number")) for c in state["campaigns"] for m in c["messages"]]
    return [str(m.get("to") or m.get("number") or m.get("msisdn")) for b in state.get("broadcasts", [])
            for m in b.get("messages", b.get("recipients", []))]  # fmt: skip


@pytest.mark.parametrize("provider", ["mobizon", "bsg", "ogangi"])
def test_the_estimate_counts_what_the_send_then_sends(provider: str, sandbox_url: str,
                                                      request: pytest.FixtureRequest) -> None:  # fmt: skip
    conn_id = request.getfixturevalue(f"{provider}_conn")
    set_clock(sandbox_url, speed=0)
    hook = provider_named(provider, conn_id).hook_class().for_connection(conn_id)
    estimate = hook.estimate(TEXT, HOSTILE, SENDER[provider])
    summary = SmsCampaignOperator(task_id="send", conn_id=conn_id, text=TEXT, sender=SENDER[provider],
                                  recipients=HOSTILE, on_invalid="skip", wait_for_completion=False
                                  ).execute(context())  # fmt: skip
    numbers = received(sandbox_url, provider)
    assert len(numbers) == len(set(numbers)), numbers  # nothing twice
    assert (estimate.recipients, estimate.rejected, estimate.duplicates) == (
        len(numbers), summary["rejected"], summary["duplicates"]), (estimate, summary, numbers)
    # Mobizon and BSG refuse the over-length row; Ogangi has no per-row length limit and sends it.
    long_row = ["380500000004"] if provider == "ogangi" else []
    assert sorted(numbers) == sorted(["380500000001", "380500000002", "380500000005", *long_row]), numbers
    assert summary["rejected"] == 4 - len(long_row)  # "not a number", the long row, the two rows without {name}


# ---------------------------------------------------------------- what the send's options change (#11 item 7)
#
# Found: the estimate did not know Mobizon's placeholders_flag (1 keeps a missing {name}, 2 removes it; the
# row is sent either way), read Ogangi's file templates ({0}, {1}… filled from the row's values) as a
# placeholder named "0", and counted a row bringing values to a text without placeholders, which the
# Ogangi sends refused (failing the task even under on_invalid="skip") and Mobizon and BSG bulk sent with
# the values dropped. Each test estimates, sends over the sandbox, and compares with what it received.

# Filled with "Ana" 158 GSM-7 characters (1 part); a kept {name} makes 163 septets ({ and } cost 2
# each: 2 parts); a removed one 155 (1 part). So the parts, not only the count, tell the flags apart.
FLAG_TEXT = "Hi {name}, " + "y" * 150
FLAG_ROWS = [
    {"recipient": "380500000011", "name": "Ana"},
    {"recipient": "380500000012"},  # no value: sent with {name} kept (1) or removed (2)
    {"recipient": "380500000013", "nickname": "Bo"},  # a value, not the one the text needs: the same
]


def mobizon_messages(url: str) -> dict[str, str]:
    state = httpx.get(f"{url}/_sandbox/mobizon/state", params={"messages": "true"}).json()
    return {m["to"]: m["text"] for c in state["campaigns"] for m in c["messages"]}


@pytest.mark.parametrize("flag", [1, 2])
def test_mobizon_placeholders_flag_is_estimated_with_the_text_mobizon_sends(
    flag: int, sandbox_url: str, mobizon_conn: str
) -> None:
    from airflow_sms_provider.recipients import sms_parts

    set_clock(sandbox_url, speed=0)
    hook = provider_named("mobizon", mobizon_conn).hook_class().for_connection(mobizon_conn)
    estimate = hook.estimate(FLAG_TEXT, FLAG_ROWS, None, options={"placeholders_flag": flag}, sample_size=3)
    summary = SmsCampaignOperator(task_id="send", conn_id=mobizon_conn, text=FLAG_TEXT, recipients=FLAG_ROWS,
                                  on_invalid="skip", wait_for_completion=False,
                                  provider_options={"placeholders_flag": flag}).execute(context())  # fmt: skip
    sent = mobizon_messages(sandbox_url)
    assert summary["rejected"] == estimate.rejected == 0
    assert estimate.recipients == len(sent) == 3
    assert estimate.total_parts == sum(sms_parts(text)[2] for text in sent.values())
    assert estimate.total_parts == (5 if flag == 1 else 3)
    assert sorted(s["text"] for s in estimate.samples) == sorted(sent.values())


def test_mobizon_estimate_without_the_flag_rejects_what_the_send_skips(sandbox_url: str, mobizon_conn: str) -> None:
    set_clock(sandbox_url, speed=0)
    hook = provider_named("mobizon", mobizon_conn).hook_class().for_connection(mobizon_conn)
    estimate = hook.estimate(FLAG_TEXT, FLAG_ROWS, None, options={"placeholders_flag": 3})
    summary = SmsCampaignOperator(task_id="send", conn_id=mobizon_conn, text=FLAG_TEXT, recipients=FLAG_ROWS,
                                  on_invalid="skip", wait_for_completion=False,
                                  provider_options={"placeholders_flag": 3}).execute(context())  # fmt: skip
    assert (estimate.recipients, estimate.rejected) == (len(mobizon_messages(sandbox_url)), summary["rejected"])
    assert estimate.recipients == 1


FILE_TEXT = "Hi {0}, your code is {1}"
FILE_ROWS = [
    {"recipient": "380500000021", "name": "Ana", "code": "11", "note": "vip"},
    {"recipient": "380500000022", "name": "Bo"},  # no code: refused (template parameter without a value)
    {"recipient": "380500000023", "name": "Cy", "code": "33", "text": "Own text for {0}"},  # its own text
    {"recipient": "380500000024", "code": "44", "name": "Di"},
]


def test_ogangi_file_templates_are_estimated_by_the_file_rule(sandbox_url: str, ogangi_conn: str) -> None:
    from airflow_sms_provider.operators.ogangi import OgangiSendSmsByFileOperator

    set_clock(sandbox_url, speed=0)
    hook = provider_named("ogangi", ogangi_conn).hook_class().for_connection(ogangi_conn)
    options = {"by_file": True, "template_params": ["name", "code"]}
    estimate = hook.estimate(FILE_TEXT, FILE_ROWS, None, options=options, sample_size=5)
    summary = OgangiSendSmsByFileOperator(task_id="send", ogangi_conn_id=ogangi_conn, text=FILE_TEXT,
                                          recipients=FILE_ROWS, template_params=["name", "code"],
                                          on_invalid="skip").execute(context())  # fmt: skip
    state = httpx.get(f"{sandbox_url}/_sandbox/ogangi/state").json()
    sent = {m["to"]: m["text"] for m in state["messages"]}
    assert (estimate.recipients, estimate.rejected) == (len(sent), summary["invalid"]["rejected"]) == (3, 1)
    assert sorted(s["text"] for s in estimate.samples) == sorted(sent.values()) == sorted(
        ["Hi Ana, your code is 11", "Own text for Cy", "Hi Di, your code is 44"])


def test_ogangi_template_params_without_by_file_is_refused_not_miscounted(ogangi_conn: str) -> None:
    hook = provider_named("ogangi", ogangi_conn).hook_class().for_connection(ogangi_conn)
    with pytest.raises(SmsValidationError, match="by_file=True") as info:
        hook.estimate(FILE_TEXT, FILE_ROWS, None, options={"template_params": ["name", "code"]})
    assert info.value.field == "template_params"


PLAIN = "Your order is ready"
UNUSED_ROWS = [
    {"recipient": "380500000031"},
    {"recipient": "380500000032", "name": "Bo"},  # a value the text has no placeholder for
    {"recipient": "380500000033", "reference_id": "order33"},  # BSG reads it; a value elsewhere
    {"recipient": "380500000034"},
]


@pytest.mark.parametrize("provider", ["mobizon", "bsg", "ogangi"])
def test_values_without_a_placeholder_are_skipped_and_estimated_alike(provider: str, sandbox_url: str,
                                                                       request: pytest.FixtureRequest) -> None:
    conn_id = request.getfixturevalue(f"{provider}_conn")
    set_clock(sandbox_url, speed=0)
    hook = provider_named(provider, conn_id).hook_class().for_connection(conn_id)
    estimate = hook.estimate(PLAIN, UNUSED_ROWS, SENDER[provider])
    summary = SmsCampaignOperator(task_id="send", conn_id=conn_id, text=PLAIN, sender=SENDER[provider],
                                  recipients=UNUSED_ROWS, on_invalid="skip", wait_for_completion=False
                                  ).execute(context())  # fmt: skip
    numbers = received(sandbox_url, provider)
    assert (estimate.recipients, estimate.rejected) == (len(numbers), summary["rejected"]), (estimate, summary)
    want = ["380500000031", "380500000034", *(["380500000033"] if provider == "bsg" else [])]
    assert sorted(numbers) == sorted(want)
    assert "values for name but the text has no placeholders" in str(estimate.rejected_examples)


@pytest.mark.parametrize("provider", ["mobizon", "bsg", "ogangi"])
def test_values_without_a_placeholder_fail_naming_row_and_column_before_any_request(
    provider: str, sandbox_url: str, request: pytest.FixtureRequest
) -> None:
    conn_id = request.getfixturevalue(f"{provider}_conn")
    set_clock(sandbox_url, speed=0)
    op = SmsCampaignOperator(task_id="send", conn_id=conn_id, text=PLAIN, sender=SENDER[provider],
                             recipients=UNUSED_ROWS[:2], wait_for_completion=False)  # fmt: skip
    with pytest.raises(SmsValidationError, match=r"row 2: values for name but the text has no placeholders"):
        op.execute(context())
    assert received(sandbox_url, provider) == []


def test_ogangi_file_values_without_a_placeholder_are_skipped_under_skip(sandbox_url: str, ogangi_conn: str) -> None:
    from airflow_sms_provider.operators.ogangi import OgangiSendSmsByFileOperator

    set_clock(sandbox_url, speed=0)
    hook = provider_named("ogangi", ogangi_conn).hook_class().for_connection(ogangi_conn)
    estimate = hook.estimate(PLAIN, UNUSED_ROWS[:2], None, options={"by_file": True})
    summary = OgangiSendSmsByFileOperator(task_id="send", ogangi_conn_id=ogangi_conn, text=PLAIN,
                                          recipients=UNUSED_ROWS[:2], on_invalid="skip").execute(context())
    sent = [m["to"] for m in httpx.get(f"{sandbox_url}/_sandbox/ogangi/state").json()["messages"]]
    assert (estimate.recipients, estimate.rejected) == (len(sent), summary["invalid"]["rejected"]) == (1, 1)
