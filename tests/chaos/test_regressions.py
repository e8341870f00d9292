"""Bugs the chaos suite found, each as a named test (the seed that found it in its docstring)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_sms_provider.exceptions import SmsFatalError
from airflow_sms_provider.operators.mobizon import MobizonCampaignOperator
from tests.conftest import mobizon_conn_uri
from tests.helpers import DurableStore, add_faults, sandbox_requests, sandbox_state, set_clock


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


def _durable_upload_lost(sandbox_url: str, csv: Any, first: list[str]) -> tuple[DurableStore, int]:
    """Try 1 with durable state: the campaign is created and recorded, its one portion is uploaded
    but the answer never comes (the worker "killed" with the upload carried out, not recorded)."""
    add_faults(sandbox_url, {"provider": "mobizon", "path": "addRecipients", "action": "timeout_after",
                             "seconds": 0.6, "times": 1})  # fmt: skip
    csv.write_text("\n".join(first) + "\n")
    store = DurableStore()
    with pytest.raises(Exception, match=r"addRecipients|answer|timed out"):
        _csv_campaign(csv).execute({**context(), "task_state_store": store})
    [campaign] = sandbox_state(sandbox_url, "mobizon")["campaigns"]
    assert sorted(campaign["recipients"]) == first and campaign["sendCalls"] == 0
    return store, int(campaign["id"])


def _csv_campaign(csv: Any) -> MobizonCampaignOperator:
    return MobizonCampaignOperator(task_id="send", text="Sale", name="Chaos", recipients=str(csv),
                                   wait_for_completion=False)  # fmt: skip


def test_mobizon_unrecorded_upload_then_a_number_replaced_stops_before_uploading(
    sandbox_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Chaos seed 7014: durable state, the upload carried out but not recorded, the CSV rewritten
    with one number replaced. The retry took the new file as the first upload (770 duplicates,
    1 added) and sent: the replaced number, no longer in the audience, got the SMS. Now the
    retry reads the campaign back first and stops without retry, naming it, sending nothing."""
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT",
                       mobizon_conn_uri(sandbox_url, timeout=0.3, retry_attempts=1))  # fmt: skip
    set_clock(sandbox_url, speed=0)
    csv = tmp_path / "audience.csv"
    first = [f"7701444{i:04d}" for i in range(1, 9)]
    store, campaign_id = _durable_upload_lost(sandbox_url, csv, first)
    csv.write_text("\n".join([*first[:3], "77014449999", *first[4:]]) + "\n")  # first[3] replaced
    uploads = len(sandbox_requests(sandbox_url, "mobizon"))
    with pytest.raises(SmsFatalError, match=rf"campaign {campaign_id} .*holds 1 number\(s\) .*not in") as caught:
        _csv_campaign(csv).execute({**context(), "task_state_store": store})
    assert "...0004" in str(caught.value) and first[3] not in str(caught.value)  # masked, never whole
    [campaign] = sandbox_state(sandbox_url, "mobizon")["campaigns"]
    assert sorted(campaign["recipients"]) == first and campaign["sendCalls"] == 0
    assert not [r for r in sandbox_requests(sandbox_url, "mobizon")[uploads:] if "addRecipients" in r["path"]]


def test_mobizon_unrecorded_upload_then_a_number_added_uploads_only_it(
    sandbox_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The same path with a number added (none removed): the retry reads the campaign back,
    uploads only the number it lacks (not the seven again) and sends once."""
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT",
                       mobizon_conn_uri(sandbox_url, timeout=0.3, retry_attempts=1))  # fmt: skip
    set_clock(sandbox_url, speed=0)
    csv = tmp_path / "audience.csv"
    first = [f"7701444{i:04d}" for i in range(1, 9)]
    store, campaign_id = _durable_upload_lost(sandbox_url, csv, first)
    csv.write_text("\n".join([*first[::-1], "77014449999"]) + "\n")
    summary = _csv_campaign(csv).execute({**context(), "task_state_store": store})
    [campaign] = sandbox_state(sandbox_url, "mobizon")["campaigns"]
    assert summary["campaign_id"] == campaign_id and campaign["sendCalls"] == 1
    assert sorted(campaign["recipients"]) == sorted([*first, "77014449999"])
    assert summary["added"] == 1 and not summary.get("duplicates")


def test_mobizon_tagged_campaign_filled_then_a_number_replaced_stops_before_uploading(
    sandbox_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Seed 7014's path without durable state: the retry finds the campaign by its tag. The old
    code uploaded the new number first and only then noticed the number the audience lost."""
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT",
                       mobizon_conn_uri(sandbox_url, timeout=0.3, retry_attempts=1))  # fmt: skip
    set_clock(sandbox_url, speed=0)
    csv, first = tmp_path / "audience.csv", [f"7701444{i:04d}" for i in range(1, 9)]
    add_faults(sandbox_url, {"provider": "mobizon", "path": "addRecipients", "action": "timeout_after",
                             "seconds": 0.6, "times": 1})  # fmt: skip
    csv.write_text("\n".join(first) + "\n")
    with pytest.raises(Exception, match=r"addRecipients|answer|timed out"):
        _csv_campaign(csv).execute(context())
    csv.write_text("\n".join([*first[1:], "77014449999"]) + "\n")
    seen = len(sandbox_requests(sandbox_url, "mobizon"))
    with pytest.raises(SmsFatalError, match=r"campaign \d+ .*holds 1 number\(s\) .*not in"):
        _csv_campaign(csv).execute(context())
    [campaign] = sandbox_state(sandbox_url, "mobizon")["campaigns"]
    assert sorted(campaign["recipients"]) == first and campaign["sendCalls"] == 0
    assert not [r for r in sandbox_requests(sandbox_url, "mobizon")[seen:] if "addRecipients" in r["path"]]


def test_mobizon_one_shot_iterator_after_unrecorded_upload_is_not_sent_to_a_lost_number(
    sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 7014's path with a generator (cannot be read ahead): the old code, with durable state,
    uploaded it as the first upload and sent. It is reconciled while uploading, before the send."""
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT",
                       mobizon_conn_uri(sandbox_url, timeout=0.3, retry_attempts=1))  # fmt: skip
    set_clock(sandbox_url, speed=0)
    first = [f"7701444{i:04d}" for i in range(1, 9)]
    add_faults(sandbox_url, {"provider": "mobizon", "path": "addRecipients", "action": "timeout_after",
                             "seconds": 0.6, "times": 1})  # fmt: skip
    store = DurableStore()

    def operator(numbers: list[str]) -> MobizonCampaignOperator:
        return MobizonCampaignOperator(task_id="send", text="Sale", name="Chaos", recipients=iter(numbers),
                                       wait_for_completion=False)  # fmt: skip

    with pytest.raises(Exception, match=r"addRecipients|answer|timed out"):
        operator(first).execute({**context(), "task_state_store": store})
    with pytest.raises(SmsFatalError, match=r"holds 1 of \d+ number"):
        operator([*first[1:], "77014449999"]).execute({**context(), "task_state_store": store})
    [campaign] = sandbox_state(sandbox_url, "mobizon")["campaigns"]
    assert campaign["sendCalls"] == 0
