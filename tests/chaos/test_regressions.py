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


# ------------------------------------------------------------------ BSG: reference_ids by content

# Chaos seeds that found BSG's positional auto reference_ids (``<prefix>c<chunk>n<pos>``): without durable
# state, a retry whose audience came back in another order gave phones ids try 1 had used for other phones
# (SmsValidationError), or new ids, and phones try 1 had sent went out again. ``make chaos CHAOS_ARGS="--seed-base
# 5000"`` found the last ten; each failed on the code before reference_ids were derived from the phone.
BSG_ORDER_SEEDS = [17, 30, 5071, 5101, 5110, 5114, 5136, 5292, 5327, 5365, 5468, 5487]


@pytest.mark.parametrize("seed", BSG_ORDER_SEEDS)
def test_bsg_retry_without_durable_state_in_another_order_seed(seed: int, sandbox: Any, tmp_path: Any) -> None:
    from tests.chaos.harness import draw, run_guarded

    result = run_guarded(sandbox.url, draw(seed), tmp_path)
    assert result.survived, f"rerun with CHAOS_SEED={seed}: {result.line()}"


# Ogangi without durable state, the worker killed after the create / upload was carried out: try 2 knew
# nothing of it and created a second broadcast or sent every SMS again. Not drawn by seeds 9000-9149 (the
# fresh run of #11); found by drawing (not running) seeds 9000-59999 for that shape, one per operator.
OGANGI_KILL_SEEDS = [17479, 22483, 27575]


@pytest.mark.parametrize("seed", OGANGI_KILL_SEEDS)
def test_ogangi_retry_without_durable_state_after_a_kill_seed(seed: int, sandbox: Any, tmp_path: Any) -> None:
    from tests.chaos.harness import draw, run_guarded

    result = run_guarded(sandbox.url, draw(seed), tmp_path)
    assert result.survived, f"rerun with CHAOS_SEED={seed}: {result.line()}"


def _bsg_try(recipients: Any, text: str = "Sale") -> dict[str, Any]:
    from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator

    op = BsgBulkCampaignOperator(task_id="send", recipients=recipients, text=text, sender="Vet klinika", chunk_size=4,
                                 max_concurrent_creates=1)  # fmt: skip
    return op.execute(context())


def _bsg_sent(url: str) -> list[int]:
    return sorted(int(m["phone"]) for c in sandbox_state(url, "bsg")["campaigns"] for m in c["messages"])


def _second_chunk_refused(url: str) -> None:
    """Chunk 1 is created, chunk 2 answered 503 (not created; try 1 finds nothing and fails, retryable)."""
    add_faults(url, {"provider": "bsg", "path": "/sms/send$", "action": "http_status", "status": 503, "skip": 1,
                     "times": 1})  # fmt: skip


def test_bsg_retry_without_durable_state_with_the_audience_reversed_sends_each_phone_once(
    bsg_conn: str, sandbox_url: str
) -> None:
    """Seed 17's class, by hand: try 1 creates chunk 1 (phones 0-3) and fails on chunk 2; the retry reads
    the audience reversed. Positional ids gave its first chunk (phones 11-8) ids try 1 had used for 0-3:
    "already belongs to ... another phone" and a fatal stop; other orders sent phones twice. Now each phone
    keeps its id, the retry finds campaign 1 by any of them, verifies it, and sends only the other eight."""
    set_clock(sandbox_url, speed=0)
    audience = [str(380500000100 + i) for i in range(12)]
    _second_chunk_refused(sandbox_url)
    with pytest.raises(Exception, match=r"503|unavailable|HTTP"):
        _bsg_try(audience)
    [first] = sandbox_state(sandbox_url, "bsg")["campaigns"]
    summary = _bsg_try(audience[::-1])
    assert _bsg_sent(sandbox_url) == sorted(int(p) for p in audience)  # every phone exactly once
    assert first["id"] in summary["campaign_ids"] and len(summary["campaign_ids"]) == 3


def test_bsg_retry_without_durable_state_with_a_phone_added_sends_it_and_no_other_twice(
    bsg_conn: str, sandbox_url: str
) -> None:
    """Phones added between tries are sent; those try 1 sent are not sent again, whatever the order."""
    set_clock(sandbox_url, speed=0)
    audience = [str(380500000200 + i) for i in range(10)]
    _second_chunk_refused(sandbox_url)
    with pytest.raises(Exception, match=r"503|unavailable|HTTP"):
        _bsg_try(audience)
    later = ["380500000299", *audience[::-1]]
    _bsg_try(later)
    assert _bsg_sent(sandbox_url) == sorted(int(p) for p in later)


def test_bsg_retry_without_durable_state_with_a_phone_removed_stops_naming_the_campaign(
    bsg_conn: str, sandbox_url: str
) -> None:
    """Seed 5136: a file rewritten between tries no longer holds a phone try 1 sent. Reported success
    (the removed phone had its SMS, the audience said it should not); now the task stops without retry,
    naming the campaign that holds it and every campaign created, with nobody messaged twice. (Without
    durable state the retry learns of try 1's campaign only when BSG refuses one of its ids: here at the
    retry's second chunk, after its first, phones 9-6, was created.)"""
    set_clock(sandbox_url, speed=0)
    audience = [str(380500000300 + i) for i in range(10)]
    _second_chunk_refused(sandbox_url)
    with pytest.raises(Exception, match=r"503|unavailable|HTTP"):
        _bsg_try(audience)
    [first] = sandbox_state(sandbox_url, "bsg")["campaigns"]
    with pytest.raises(SmsFatalError, match=rf"audience changed .* campaign {first['id']} .*1 phone") as caught:
        _bsg_try([*audience[1:]][::-1])  # phone 0 (in campaign 1) removed
    for campaign in sandbox_state(sandbox_url, "bsg")["campaigns"]:
        assert str(campaign["id"]) in str(caught.value)
    sent = _bsg_sent(sandbox_url)
    assert len(sent) == len(set(sent)) == 8  # try 1: 0-3; the retry's first chunk: 9-6; nothing twice


def test_bsg_campaign_found_by_a_later_reference_id_with_another_text_is_not_adopted(
    bsg_conn: str, sandbox_url: str
) -> None:
    """Verify before adopting, for any id of a chunk: the retry's first chunk finds try 1's campaign by its
    third phone's id (not the first's); the campaign holds another text (corrected between tries), so it is
    not adopted and nothing more is sent."""
    set_clock(sandbox_url, speed=0)
    audience = [str(380500000400 + i) for i in range(8)]
    _second_chunk_refused(sandbox_url)
    with pytest.raises(Exception, match=r"503|unavailable|HTTP"):
        _bsg_try(audience, text="Sale")
    [first] = sandbox_state(sandbox_url, "bsg")["campaigns"]
    retry = [audience[5], audience[6], audience[0], audience[4], *audience[1:4], audience[7]]
    with pytest.raises(SmsFatalError, match=rf"campaign {first['id']} .*text 'Sale' \(this task: 'Sale!'\)"):
        _bsg_try(retry, text="Sale!")
    assert len(sandbox_state(sandbox_url, "bsg")["campaigns"]) == 1


def test_mobizon_changed_audience_after_an_unrecorded_upload_seed_7014(sandbox: Any, tmp_path: Any) -> None:
    """The schedule that found it (``make chaos CHAOS_ARGS="--seed-base 7000"``): it sent a number the
    rewritten audience no longer had; now the retry stops before uploading more or sending."""
    from tests.chaos.harness import draw, run_guarded

    result = run_guarded(sandbox.url, draw(7014), tmp_path)
    assert result.survived, f"rerun with CHAOS_SEED=7014: {result.line()}"


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
    uploads = len(sandbox_requests(sandbox_url, "mobizon", settled=True))
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
    seen = len(sandbox_requests(sandbox_url, "mobizon", settled=True))
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


def test_mobizon_lookup_answered_with_an_empty_list_seed_70184(sandbox: Any, tmp_path: Any) -> None:
    """The schedule that found it (``--seed-base 70000 --schedules 1000``): a campaign/list answered
    ``{"code":0,"data":[]}`` was read as "no campaign of this task", and a retry without durable state
    created and sent a second campaign beside the first, which held the same audience."""
    from tests.chaos.harness import draw, run_guarded

    result = run_guarded(sandbox.url, draw(70184), tmp_path)
    assert result.survived, f"rerun with CHAOS_SEED=70184: {result.line()}"
