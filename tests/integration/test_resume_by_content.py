"""Resume by content, verify before adopting (issue 11, items 1 and 2), over the sandbox.

A retried task is a new operator whose ``execute()`` gets the same durable store (and a
fresh audience object, as a new process would build it). Each test asserts on the
sandbox's recorded messages: every recipient exactly once, or a stop without retry that
names what already exists.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from airflow_sms_provider.exceptions import SmsFatalError
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator
from airflow_sms_provider.operators.mobizon import MobizonAddRecipientsOperator, MobizonCampaignOperator
from airflow_sms_provider.operators.ogangi import OgangiCreateBroadcastOperator, OgangiSendSmsByFileOperator
from tests.conftest import mobizon_conn_uri
from tests.helpers import DurableStore, add_faults, sandbox_requests, sandbox_state, set_clock


def context(store: DurableStore | None = None, run_id: str = "manual__1", task_id: str = "send") -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="dag", task_id=task_id, run_id=run_id, map_index=-1)
    return {"ti": ti, **({"task_state_store": store} if store is not None else {})}


def numbers(count: int, start: int = 77010000001) -> list[str]:
    return [str(start + i) for i in range(count)]


def shuffled(values: list[str], seed: int) -> list[str]:
    out = list(values)
    random.Random(seed).shuffle(out)
    return out


# ------------------------------------------------------------------------ Mobizon


@pytest.fixture
def mobizon_one_attempt(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """mobizon_default with one HTTP attempt per call, so an injected 500 fails the try."""
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", mobizon_conn_uri(sandbox_url, retry_attempts=1))
    set_clock(sandbox_url, speed=0)
    return sandbox_url


def mobizon_campaign(recipients: Any, text: str = "Spring sale") -> MobizonCampaignOperator:
    return MobizonCampaignOperator(task_id="send", text=text, name="Spring", recipients=recipients,
                                   wait_for_completion=False)  # fmt: skip


def fail_second_portion(url: str) -> None:
    add_faults(url, {"provider": "mobizon", "path": "addRecipients", "action": "http_status", "status": 500,
                     "skip": 1, "times": 1})  # fmt: skip


def mobizon_campaigns(url: str) -> list[dict[str, Any]]:
    return sandbox_state(url, "mobizon")["campaigns"]


def test_mobizon_set_audience_reordered_between_tries_sends_everyone_once(mobizon_one_attempt: str) -> None:
    url, store, audience = mobizon_one_attempt, DurableStore(), numbers(1200)
    fail_second_portion(url)
    with pytest.raises(Exception, match="500"):
        mobizon_campaign(shuffled(audience, 1)).execute(context(store))
    assert mobizon_campaigns(url)[0]["recipientsCount"] == 500

    # The retry, in a new process, reads the same set in another order.
    summary = mobizon_campaign(shuffled(audience, 2)).execute(context(store))
    [campaign] = mobizon_campaigns(url)
    assert summary["campaign_id"] == campaign["id"] and campaign["sendCalls"] == 1
    assert sorted(campaign["recipients"]) == sorted(audience)  # none skipped (the old code lost 300+)
    assert campaign["recipientsCount"] == 1200


def test_mobizon_same_order_resumes_by_position_without_listing(mobizon_one_attempt: str) -> None:
    url, store, audience = mobizon_one_attempt, DurableStore(), numbers(1200)
    fail_second_portion(url)
    with pytest.raises(Exception, match="500"):
        mobizon_campaign(list(audience)).execute(context(store))
    mobizon_campaign(list(audience)).execute(context(store))
    [campaign] = mobizon_campaigns(url)
    # One portion, then two (the faulted call never reached the provider).
    assert campaign["recipientsCount"] == 1200 and campaign["addRecipientsCalls"] == 3
    assert not [r for r in sandbox_requests(url, "mobizon") if "message/list" in r["path"]]


def test_mobizon_file_rewritten_with_other_numbers_stops_naming_the_campaign(
    mobizon_one_attempt: str, tmp_path: Path
) -> None:
    url, store, path = mobizon_one_attempt, DurableStore(), tmp_path / "audience.csv"
    path.write_text("\n".join(numbers(1200)) + "\n")
    fail_second_portion(url)
    with pytest.raises(Exception, match="500"):
        mobizon_campaign(str(path)).execute(context(store))
    [campaign] = mobizon_campaigns(url)
    path.write_text("\n".join(numbers(1200, start=77020000001)) + "\n")  # refreshed between tries

    with pytest.raises(SmsFatalError, match=rf"500 recipients were uploaded to Mobizon campaign {campaign['id']}"):
        mobizon_campaign(str(path)).execute(context(store))
    [campaign] = mobizon_campaigns(url)
    assert campaign["recipientsCount"] == 500 and campaign["sendCalls"] == 0


def test_mobizon_generator_with_other_numbers_is_not_sent(mobizon_one_attempt: str) -> None:
    """A one-shot iterator cannot be read ahead: Mobizon's own list of the campaign is the check."""
    url, store = mobizon_one_attempt, DurableStore()
    fail_second_portion(url)
    with pytest.raises(Exception, match="500"):
        mobizon_campaign(iter(numbers(1200))).execute(context(store))
    with pytest.raises(SmsFatalError, match="holds 500 of 500 number"):
        mobizon_campaign(iter(numbers(1200, start=77020000001))).execute(context(store))
    [campaign] = mobizon_campaigns(url)
    assert campaign["sendCalls"] == 0


def test_mobizon_generator_reordered_resumes_against_the_campaign(mobizon_one_attempt: str) -> None:
    url, store, audience = mobizon_one_attempt, DurableStore(), numbers(1200)
    fail_second_portion(url)
    with pytest.raises(Exception, match="500"):
        mobizon_campaign(iter(shuffled(audience, 3))).execute(context(store))
    mobizon_campaign(iter(shuffled(audience, 4))).execute(context(store))
    [campaign] = mobizon_campaigns(url)
    assert sorted(campaign["recipients"]) == sorted(audience) and campaign["sendCalls"] == 1


def test_mobizon_tagged_campaign_with_other_text_is_not_adopted(mobizon_one_attempt: str) -> None:
    url, store = mobizon_one_attempt, DurableStore()
    fail_second_portion(url)
    with pytest.raises(Exception, match="500"):
        mobizon_campaign(numbers(1200), text="Spring sale").execute(context(store))
    [campaign] = mobizon_campaigns(url)

    # The DAG was edited between tries: the text is corrected.
    wanted = rf"campaign {campaign['id']} .*'Spring sale' \(this task: 'Spring sale!'\)"
    with pytest.raises(SmsFatalError, match=wanted):
        mobizon_campaign(numbers(1200), text="Spring sale!").execute(context(store))
    [campaign] = mobizon_campaigns(url)
    assert campaign["sendCalls"] == 0 and campaign["recipientsCount"] == 500


def test_mobizon_without_durable_state_resumes_against_the_campaign(mobizon_one_attempt: str) -> None:
    """Airflow < 3.3: the tagged campaign is found again and Mobizon's list says who is in it."""
    url, audience = mobizon_one_attempt, numbers(1200)
    fail_second_portion(url)
    with pytest.raises(Exception, match="500"):
        mobizon_campaign(shuffled(audience, 5)).execute(context())
    mobizon_campaign(shuffled(audience, 6)).execute(context())
    [campaign] = mobizon_campaigns(url)
    assert sorted(campaign["recipients"]) == sorted(audience) and campaign["sendCalls"] == 1
    # Only the 700 missing numbers went up again: two portions, not three.
    assert campaign["addRecipientsCalls"] == 1 + 2


def test_mobizon_file_upload_reordered_between_tries_sends_everyone_once(mobizon_one_attempt: str) -> None:
    """file_upload_threshold: the audience goes up as several recipientsFile uploads; file 2 fails."""
    url, store, audience = mobizon_one_attempt, DurableStore(), numbers(1200)
    set_clock(url, speed=1000)  # background imports progress
    fail_second_portion(url)

    def by_files(recipients: list[str]) -> MobizonCampaignOperator:
        return MobizonCampaignOperator(task_id="send", text="Spring sale", recipients=recipients,
                                       wait_for_completion=False, file_upload_threshold=100,
                                       max_file_bytes=4096, task_timeout=30)  # fmt: skip

    with pytest.raises(Exception, match="500"):
        by_files(shuffled(audience, 21)).execute(context(store))
    assert store.values["mobizon_campaign"]["file_parts_done"] == 1
    by_files(shuffled(audience, 22)).execute(context(store))
    [campaign] = mobizon_campaigns(url)
    assert sorted(campaign["recipients"]) == sorted(audience) and campaign["sendCalls"] == 1


def test_mobizon_add_recipients_reordered_between_tries_into_a_shared_campaign(mobizon_one_attempt: str) -> None:
    """The step-by-step upload: the campaign also holds a number from elsewhere, which is not an error."""
    url, store, audience = mobizon_one_attempt, DurableStore(), numbers(1200)
    hook = MobizonHook()
    campaign_id = hook.create_campaign("Sale today")
    hook.add_recipients(campaign_id, ["77090000001"])
    fail_second_portion(url)

    def add(recipients: list[str]) -> MobizonAddRecipientsOperator:
        return MobizonAddRecipientsOperator(task_id="add", campaign_id=campaign_id, recipients=recipients)

    with pytest.raises(Exception, match="500"):
        add(shuffled(audience, 7)).execute(context(store, task_id="add"))
    add(shuffled(audience, 8)).execute(context(store, task_id="add"))
    [campaign] = mobizon_campaigns(url)
    assert sorted(campaign["recipients"]) == sorted([*audience, "77090000001"])


# ------------------------------------------------------------------------ BSG


@pytest.fixture
def bsg_one_attempt(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """bsg_default with one HTTP attempt per call: an injected 429 refuses a chunk for the try."""
    import json

    from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY

    conn = {"conn_type": "bsg", "host": sandbox_url, "password": SANDBOX_BSG_API_KEY,
            "extra": {"retry_base_delay": 0.01, "retry_attempts": 1}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_BSG_DEFAULT", json.dumps(conn))
    set_clock(sandbox_url, speed=0)
    return sandbox_url


def bsg_messages(url: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/_sandbox/bsg/state", params={"messages": "true"})
    response.raise_for_status()
    return [m for c in response.json()["campaigns"] for m in c["messages"]]


def bsg_campaign_ids(url: str) -> list[int]:
    return [c["id"] for c in sandbox_state(url, "bsg")["campaigns"]]


def bulk(recipients: Any, text: str = "Sale", **kw: Any) -> BsgBulkCampaignOperator:
    kw = {"chunk_size": 2, "max_concurrent_creates": 1, **kw}
    return BsgBulkCampaignOperator(task_id="send", recipients=recipients, text=text, sender="Vet klinika", **kw)


def refuse_third_creation(url: str) -> None:
    add_faults(url, {"provider": "bsg", "path": "/sms/send$", "action": "http_status", "status": 429,
                     "skip": 2, "times": 1})  # fmt: skip


BSG_PHONES = [str(380500000001 + i) for i in range(7)]


def test_bsg_chunk_refused_then_reordered_audience_sends_every_phone_once(bsg_one_attempt: str) -> None:
    url, store = bsg_one_attempt, DurableStore()
    refuse_third_creation(url)
    with pytest.raises(Exception, match=r"429|Too Many"):
        bulk(list(BSG_PHONES)).execute(context(store))
    assert len(bsg_messages(url)) == 4

    # The retry reads the audience (a set, a query without ORDER BY) in another order.
    summary = bulk(list(reversed(BSG_PHONES))).execute(context(store))
    phones = sorted(str(m["phone"]) for m in bsg_messages(url))
    assert phones == sorted(BSG_PHONES)  # every phone exactly once: none lost, none twice
    assert sorted(summary["campaign_ids"]) == sorted(bsg_campaign_ids(url)) and summary["phones"] == 7


def test_bsg_unanswered_chunk_then_reordered_audience_sends_every_phone_once(
    sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunk 2 is created but its answer is lost and the lookup fails: the retry finds it by its recorded probe."""
    import json

    from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY

    conn = {"conn_type": "bsg", "host": sandbox_url, "password": SANDBOX_BSG_API_KEY,
            "extra": {"retry_base_delay": 0.01, "retry_attempts": 1, "timeout": 0.4}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_BSG_DEFAULT", json.dumps(conn))
    set_clock(sandbox_url, speed=0)
    add_faults(sandbox_url,
               {"provider": "bsg", "path": "/sms/send$", "action": "timeout_after", "seconds": 0.8, "skip": 1},
               {"provider": "bsg", "path": "/api/messages", "action": "http_status", "status": 503, "times": 1})
    store = DurableStore()
    with pytest.raises(Exception):  # noqa: B017 - the lookup's 503, whatever its class
        bulk(list(BSG_PHONES)).execute(context(store))
    time.sleep(1.0)  # the held creation's answer is gone; the campaign exists
    assert store.values["bsg_bulk"]["pending"] == [1] and len(bsg_messages(sandbox_url)) == 4

    bulk(list(reversed(BSG_PHONES))).execute(context(store))
    assert sorted(str(m["phone"]) for m in bsg_messages(sandbox_url)) == sorted(BSG_PHONES)


def test_bsg_set_audience_reshuffled_between_tries(bsg_one_attempt: str) -> None:
    url, store = bsg_one_attempt, DurableStore()
    refuse_third_creation(url)
    with pytest.raises(Exception, match=r"429|Too Many"):
        bulk(shuffled(BSG_PHONES, 11)).execute(context(store))
    bulk(shuffled(BSG_PHONES, 12)).execute(context(store))
    assert sorted(str(m["phone"]) for m in bsg_messages(url)) == sorted(BSG_PHONES)


def test_bsg_file_rewritten_with_other_phones_stops_naming_the_campaigns(bsg_one_attempt: str, tmp_path: Path) -> None:
    url, store, path = bsg_one_attempt, DurableStore(), tmp_path / "phones.csv"
    path.write_text("\n".join(BSG_PHONES) + "\n")
    refuse_third_creation(url)
    with pytest.raises(Exception, match=r"429|Too Many"):
        bulk(str(path)).execute(context(store))
    first, second = bsg_campaign_ids(url)
    path.write_text("\n".join(str(380600000001 + i) for i in range(7)) + "\n")

    # Read back, not recorded: each campaign with the phones of it the audience no longer has (masked examples).
    wanted = (rf"BSG campaign {first} holds 2 phone\(s\) this try's audience no longer has "
              rf"\(of 2; e\.g\. \.\.\.\d{{4}}, \.\.\.\d{{4}}\); BSG campaign {second} holds 2")
    with pytest.raises(SmsFatalError, match=wanted):
        bulk(str(path)).execute(context(store))
    assert len(bsg_messages(url)) == 4


def test_bsg_duplicate_reference_id_with_a_corrected_text_is_not_adopted(bsg_conn: str, sandbox_url: str) -> None:
    """A rerun of the same task instance (same auto reference_ids), its text corrected, no durable state."""
    set_clock(sandbox_url, speed=0)
    bulk(BSG_PHONES[:3], text="Sale today", chunk_size=10).execute(context())
    [campaign_id] = bsg_campaign_ids(sandbox_url)

    wanted = rf"campaign {campaign_id} .*text 'Sale today' \(this task: 'Sale tomorrow'\)"
    with pytest.raises(SmsFatalError, match=wanted):
        bulk(BSG_PHONES[:3], text="Sale tomorrow", chunk_size=10).execute(context())
    assert [m["text"] for m in bsg_messages(sandbox_url)] == ["Sale today"] * 3


def test_bsg_reused_order_ids_are_not_taken_for_this_task(bsg_conn: str, sandbox_url: str) -> None:
    """A later task reuses an order id: BSG refuses the request; the campaign holding it is not this task's."""
    set_clock(sandbox_url, speed=0)
    earlier = [{"recipient": BSG_PHONES[0], "reference_id": "order1"}]
    bulk(earlier, chunk_size=10).execute(context(run_id="manual__0", task_id="old"))
    [campaign_id] = bsg_campaign_ids(sandbox_url)

    later = [{"recipient": BSG_PHONES[0], "reference_id": "order1"},
             {"recipient": BSG_PHONES[1], "reference_id": "order2"},
             {"recipient": BSG_PHONES[2], "reference_id": "order3"}]  # fmt: skip
    with pytest.raises(SmsFatalError, match=rf"campaign {campaign_id} .*2 of the chunk's 3 reference_ids are not in"):
        bulk(later, chunk_size=10).execute(context())
    assert len(bsg_messages(sandbox_url)) == 1


# ------------------------------------------------------------------------ Ogangi (no portions: whole-task content)

OG_NUMBERS = ["14155550100", "14155550101", "584125550102"]


@pytest.fixture
def og_frozen(ogangi_conn: str, sandbox_url: str) -> str:
    set_clock(sandbox_url, speed=0)
    return sandbox_url


def og_state(url: str) -> Any:
    return sandbox_state(url, "ogangi")


def test_ogangi_broadcast_rerun_with_other_recipients_is_not_adopted(og_frozen: str) -> None:
    store = DurableStore()
    first = OgangiCreateBroadcastOperator(task_id="t", text="Hi", recipients=OG_NUMBERS, campaign_name="Once")
    broadcast_id = first.execute({"task_state_store": store})["broadcast_id"]
    # The same audience in another order is the same broadcast.
    again = OgangiCreateBroadcastOperator(task_id="t", text="Hi", recipients=list(reversed(OG_NUMBERS)),
                                          campaign_name="Once").execute({"task_state_store": store})  # fmt: skip
    assert again["broadcast_id"] == broadcast_id

    changed = OgangiCreateBroadcastOperator(task_id="t", text="Hi", recipients=[*OG_NUMBERS, "14155550199"],
                                            campaign_name="Once")  # fmt: skip
    with pytest.raises(SmsFatalError, match=rf"broadcast {broadcast_id} .*made for 3 recipients.*this try has 4"):
        changed.execute({"task_state_store": store})
    retexted = OgangiCreateBroadcastOperator(task_id="t", text="Hello", recipients=OG_NUMBERS, campaign_name="Once")
    with pytest.raises(SmsFatalError, match=rf"broadcast {broadcast_id} .*text 'Hi' \(this try: 'Hello'\)"):
        retexted.execute({"task_state_store": store})
    assert len(og_state(og_frozen)["broadcasts"]) == 1


def test_ogangi_send_by_file_rerun_with_other_rows_stops_naming_what_was_sent(og_frozen: str) -> None:
    store = DurableStore()

    def send(recipients: list[str]) -> OgangiSendSmsByFileOperator:
        return OgangiSendSmsByFileOperator(task_id="t", recipients=recipients, text="Hi", sender="24365")

    send(OG_NUMBERS).execute(context(store))
    send(list(reversed(OG_NUMBERS))).execute(context(store))  # same rows, another order: nothing sent again
    with pytest.raises(SmsFatalError, match=r"already sent 3 SMS by file"):
        send(OG_NUMBERS[:2]).execute(context(store))
    assert len(og_state(og_frozen)["messages"]) == 3
