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

from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from airflow_sms_provider.operators.campaign import SmsCampaignOperator
from airflow_sms_provider.providers import provider_named
from tests.helpers import DurableStore, set_clock

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
    ti = SimpleNamespace(dag_id="dag", task_id="send", run_id="manual__estimate", map_index=-1,
                         xcom_push=lambda **kw: None)
    return {"ti": ti, "task_state_store": DurableStore()}


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
