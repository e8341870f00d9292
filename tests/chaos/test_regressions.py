"""Bugs the chaos suite found, each as a named test (the seed that found it in its docstring)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_sms_provider.exceptions import SmsFatalError
from airflow_sms_provider.operators.mobizon import MobizonCampaignOperator
from tests.conftest import mobizon_conn_uri
from tests.helpers import DurableStore, add_faults, sandbox_state, set_clock


def context(run_id: str = "manual__chaos") -> dict[str, Any]:
    """A try without durable state (Airflow < 3.3): nothing is shared between tries."""
    return {"ti": SimpleNamespace(dag_id="dag", task_id="send", run_id=run_id, map_index=-1)}


def test_mobizon_sent_campaign_found_again_with_another_audience_stops_naming_it(
    sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chaos seed 2134: no durable state, the campaign sent but its answer lost; the retry reads a
    file rewritten with one number replaced, finds the tagged campaign already sent and reported
    success: the new number never got the SMS. Now it stops without retry naming the campaign."""
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", mobizon_conn_uri(sandbox_url, timeout=0.3))
    set_clock(sandbox_url, speed=0)
    first = [f"7701333{i:04d}" for i in range(1, 9)]
    second = [*first[:-1], "77013339999"]  # the file refreshed between tries: one number replaced
    add_faults(sandbox_url, {"provider": "mobizon", "path": "campaign/send", "action": "timeout_after",
                             "seconds": 0.6})  # sent; the answer comes after the client gave up

    def operator(recipients: list[str]) -> MobizonCampaignOperator:
        return MobizonCampaignOperator(task_id="send", text="Sale", name="Chaos", recipients=recipients,
                                       wait_for_completion=False)  # fmt: skip

    with pytest.raises(Exception, match=r"campaign/send|answer|timed out"):
        operator(first).execute(context())
    [campaign] = sandbox_state(sandbox_url, "mobizon")["campaigns"]
    with pytest.raises(SmsFatalError, match=rf"campaign {campaign['id']} was already sent .* 1 number\(s\) it does "):
        operator(second).execute(context())
    [campaign] = sandbox_state(sandbox_url, "mobizon")["campaigns"]
    assert sorted(m["to"] for m in campaign["messages"]) == first and campaign["sendCalls"] == 1


def test_mobizon_sent_campaign_found_again_with_the_same_audience_reordered_succeeds(
    sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above does not stop a retry whose audience is the same numbers in another order."""
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", mobizon_conn_uri(sandbox_url, timeout=0.3))
    set_clock(sandbox_url, speed=0)
    numbers = [f"7701333{i:04d}" for i in range(1, 9)]
    add_faults(sandbox_url, {"provider": "mobizon", "path": "campaign/send", "action": "timeout_after",
                             "seconds": 0.6})
    op = MobizonCampaignOperator(task_id="send", text="Sale", name="Chaos", recipients=numbers,
                                 wait_for_completion=False)  # fmt: skip
    with pytest.raises(Exception, match=r"campaign/send|answer|timed out"):
        op.execute(context())
    retry = MobizonCampaignOperator(task_id="send", text="Sale", name="Chaos", recipients=(n for n in numbers[::-1]),
                                    wait_for_completion=False)  # fmt: skip
    summary = retry.execute(context())
    [campaign] = sandbox_state(sandbox_url, "mobizon")["campaigns"]
    assert summary["campaign_id"] == campaign["id"] and campaign["sendCalls"] == 1
    assert json.dumps(sorted(m["to"] for m in campaign["messages"])) == json.dumps(numbers)


def test_bsg_key_revoked_half_way_names_the_campaigns_already_created(bsg_conn: str, sandbox_url: str) -> None:
    """Chaos seeds 2030, 2143, 2158, 2163: the key is refused (401 on a send, then on the new login)
    after some chunks' campaigns were created. The task fails without retry, as it must, but said
    only "login refused": nothing named the campaigns that had already gone out."""
    from airflow_sms_provider.exceptions import SmsAuthError
    from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator

    set_clock(sandbox_url, speed=0)
    add_faults(sandbox_url,
               {"provider": "bsg", "path": "/sms/send$", "action": "http_status", "status": 401, "skip": 1,
                "body": {"code": 401, "message": "Expired JWT Token"}},
               {"provider": "bsg", "path": "auth/login", "action": "http_status", "status": 401, "skip": 1,
                "times": 3, "body": {"code": 401, "message": "Invalid credentials"}})  # fmt: skip
    phones = [str(380500000100 + i) for i in range(6)]
    op = BsgBulkCampaignOperator(task_id="send", recipients=phones, text="Sale", sender="Vet klinika", chunk_size=2,
                                 max_concurrent_creates=1)  # fmt: skip
    with pytest.raises(SmsAuthError) as caught:
        op.execute({**context(), "task_state_store": DurableStore()})
    campaigns = sandbox_state(sandbox_url, "bsg")["campaigns"]
    assert campaigns, "the scenario needs a campaign created before the key is refused"
    for campaign in campaigns:
        assert str(campaign["id"]) in str(caught.value), str(caught.value)
