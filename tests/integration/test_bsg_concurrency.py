"""BSG campaigns of a split audience created concurrently: bound, 429s, exactly once across retries."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.campaigns.bsg import BsgBulkWork
from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator, BsgIndividualCampaignOperator
from tests.helpers import DurableStore, add_faults, sandbox_requests, set_clock
from tests.integration.test_bsg_operators import bsg_config, bsg_state, context, phones

SENDS = "/api/campaigns/sms/send"


@pytest.fixture
def frozen(bsg_conn: str, sandbox_url: str) -> str:
    """The sandbox with its clock stopped; returns its URL."""
    set_clock(sandbox_url, speed=0)
    return sandbox_url


def bulk(audience: list[str], bound: int, **kw: Any) -> BsgBulkCampaignOperator:
    return BsgBulkCampaignOperator(task_id="send", recipients=audience, text="Hi", sender="Vet klinika",
                                   chunk_size=4, max_concurrent_creates=bound, **kw)  # fmt: skip


def campaigns_by_chunk(url: str, audience: list[str], size: int = 4) -> dict[int, dict[str, Any]]:
    """The sandbox's campaigns keyed by the chunk of ``audience`` their phones are (one chunk each).

    Auto reference_ids are derived from the phone, not the position: the chunk is the
    phones' position in the audience, read in chunks of ``size``.
    """
    position = {int(p): i for i, p in enumerate(audience)}
    out: dict[int, dict[str, Any]] = {}
    for camp in bsg_state(url)["campaigns"]:
        chunks = {position[int(m["phone"])] // size for m in camp["messages"]}
        assert len(chunks) == 1, f"campaign {camp['id']} mixes chunks {chunks}"
        assert chunks.isdisjoint(out), f"chunk {chunks} was created twice"
        out[chunks.pop()] = camp
    return out


def assert_each_phone_once(url: str, audience: list[str]) -> None:
    sent = Counter(str(m["phone"]) for c in bsg_state(url)["campaigns"] for m in c["messages"])
    assert sent == Counter(audience)


def creates(url: str) -> list[dict[str, Any]]:
    return [r for r in sandbox_requests(url, "bsg") if r["method"] == "POST" and r["path"] == SENDS]


def limits(url: str) -> dict[str, int]:
    return bsg_state(url, messages=False)["limits"]


# ------------------------------------------------------------------------ bound and result


def test_five_chunks_bound_three_make_five_campaigns_each_phone_once(frozen: str) -> None:
    audience = phones(18)  # chunks of 4: 4, 4, 4, 4, 2
    bsg_config(frozen, create_ms=300)  # long enough for the creations to overlap
    store = DurableStore()
    summary = bulk(audience, 3).execute(context(store))

    by_chunk = campaigns_by_chunk(frozen, audience)
    assert sorted(by_chunk) == [0, 1, 2, 3, 4]
    assert_each_phone_once(frozen, audience)
    # The summary lists the campaigns in chunk order, whatever order they were created in.
    assert summary["campaign_ids"] == [by_chunk[i]["id"] for i in range(5)]
    assert [c["phones"] for c in summary["campaigns"]] == [4, 4, 4, 4, 2]
    recorded = store.values["bsg_bulk"]
    assert [(c["chunk"], c["id"]) for c in recorded["campaigns"]] == [(i, by_chunk[i]["id"]) for i in range(5)]
    assert recorded["pending"] == []
    # The bound held on the server's side, and creations did overlap.
    assert limits(frozen)["max_in_flight"] == 3
    assert len(creates(frozen)) == 5


def test_bound_one_creates_one_after_the_other_in_chunk_order(frozen: str) -> None:
    audience = phones(10)
    bsg_config(frozen, create_ms=50)
    started = threading.active_count()
    summary = bulk(audience, 1).execute(context())
    assert threading.active_count() == started  # no worker threads at all
    state = bsg_state(frozen)
    assert [c["phones"] for c in state["campaigns"]] == [4, 4, 2]  # creation order = chunk order
    assert summary["campaign_ids"] == [c["id"] for c in state["campaigns"]]
    assert limits(frozen)["max_in_flight"] == 1


def test_no_more_than_bound_chunks_are_held_at_once(frozen: str) -> None:
    """Flat memory: a chunk is built only when a slot is free, and dropped once recorded."""
    held, most = [0], [0]
    lock = threading.Lock()

    class Counting(BsgBulkWork):  # the work the operator runs (campaigns/bsg.py)
        def _chunks(self, *args: Any) -> Iterator[tuple[int, list[dict[str, Any]]]]:
            for job in super()._chunks(*args):
                with lock:
                    held[0] += 1
                    most[0] = max(most[0], held[0])
                yield job

        def _created(self, *args: Any) -> None:
            super()._created(*args)
            with lock:
                held[0] -= 1

    class CountingOperator(BsgBulkCampaignOperator):
        work_class = Counting

    bsg_config(frozen, create_ms=100)
    CountingOperator(task_id="send", recipients=phones(40), text="Hi", sender="Vet klinika", chunk_size=4,
             max_concurrent_creates=3).execute(context())  # fmt: skip
    assert len(bsg_state(frozen, messages=False)["campaigns"]) == 10
    assert most[0] == 3


def test_personalised_campaigns_are_created_concurrently_too(frozen: str) -> None:
    rows = [{"phone": p, "name": f"N{i}"} for i, p in enumerate(phones(9))]
    bsg_config(frozen, create_ms=200)
    summary = BsgIndividualCampaignOperator(task_id="send", recipients=rows, text="Hi {name}", sender="Vet klinika",
                                            chunk_size=3, max_concurrent_creates="3").execute(context())  # fmt: skip
    texts = {m["phone"]: m["text"] for c in bsg_state(frozen)["campaigns"] for m in c["messages"]}
    assert len(summary["campaign_ids"]) == 3 and len(texts) == 9 and texts[int(rows[4]["phone"])] == "Hi N4"
    assert limits(frozen)["max_in_flight"] == 3


@pytest.mark.parametrize("bound", [0, 17, "many", 2.5])
def test_a_bad_bound_fails_before_anything_is_sent(frozen: str, bound: Any) -> None:
    with pytest.raises(exc.SmsValidationError, match="max_concurrent_creates"):
        bulk(phones(10), bound).execute(context())
    assert sandbox_requests(frozen, "bsg") == []


# ------------------------------------------------------------------------ rate limits


@pytest.mark.parametrize(
    "limit",
    [{"max_concurrent_creates": 1, "create_ms": 100, "retry_after": 0.05},
     {"creates_per_second": 3, "retry_after": 0.6}],
    ids=["concurrent", "per-second"],
)  # fmt: skip
def test_429s_are_absorbed_without_a_duplicate(frozen: str, limit: dict[str, Any]) -> None:
    audience = phones(20)  # 5 chunks, 4 at once against a server that takes fewer
    bsg_config(frozen, **limit)
    summary = bulk(audience, 4).execute(context())
    got = limits(frozen)
    assert got["rate_limited"] >= 1 and got["creates"] == 5
    assert sorted(campaigns_by_chunk(frozen, audience)) == [0, 1, 2, 3, 4] and len(summary["campaign_ids"]) == 5
    assert_each_phone_once(frozen, audience)
    assert bsg_state(frozen, messages=False)["auth"]["duplicates"] == 0


@pytest.mark.parametrize("change", [{"create_ms": -1}, {"max_concurrent_creates": "2"}, {"retry_after": True}])
def test_sandbox_refuses_bad_limits(sandbox_url: str, change: dict[str, Any]) -> None:
    response = httpx.post(f"{sandbox_url}/_sandbox/bsg/config", json=change)
    assert response.status_code == 400 and "must be a number" in response.json()["error"]


def test_retry_after_is_waited_for_and_every_worker_pauses(frozen: str) -> None:
    bsg_config(frozen, max_concurrent_creates=1, create_ms=50, retry_after=0.4)
    bulk(phones(8), 2).execute(context())
    answered = [r for r in creates(frozen) if r["status"] == 200]
    refused = [r for r in creates(frozen) if r["status"] == 429]
    assert len(answered) == 2 and refused
    # The refused chunk is sent again no sooner than Retry-After says.
    first_refusal = min(datetime.fromisoformat(r["ts"]) for r in refused)
    retried = max(datetime.fromisoformat(r["ts"]) for r in answered)
    assert (retried - first_refusal).total_seconds() >= 0.4


# ------------------------------------------------------------------------ exactly once across tries


def test_retry_after_a_failed_chunk_creates_only_the_missing_ones(frozen: str) -> None:
    audience = phones(20)  # 5 chunks
    bsg_config(frozen, create_ms=150)
    # The second creation to arrive answers 502 without creating anything: ambiguous for the client.
    add_faults(frozen, {"provider": "bsg", "path": "/sms/send$", "skip": 1, "action": "http_status", "status": 502})
    store = DurableStore()
    op = bulk(audience, 3)
    with pytest.raises(exc.SmsAmbiguousError):
        op.execute(context(store))

    recorded = store.values["bsg_bulk"]
    by_chunk = campaigns_by_chunk(frozen, audience)
    # Every campaign that exists is recorded under its chunk, though the task failed.
    assert {c["chunk"]: c["id"] for c in recorded["campaigns"]} == {i: c["id"] for i, c in by_chunk.items()}
    assert 2 <= len(by_chunk) <= 4  # the others in flight finished; no new chunk started after the failure
    (failed,) = set(recorded["pending"])
    assert failed not in by_chunk
    first_try = len(creates(frozen))

    summary = op.execute(context(store))  # the retry
    assert sorted(campaigns_by_chunk(frozen, audience)) == [0, 1, 2, 3, 4]
    assert_each_phone_once(frozen, audience)
    assert len(creates(frozen)) - first_try == 5 - len(by_chunk)  # only the missing chunks were sent
    assert summary["campaign_ids"] == [campaigns_by_chunk(frozen, audience)[i]["id"] for i in range(5)]
    assert store.values["bsg_bulk"]["pending"] == []


def test_retry_looks_up_an_unanswered_creation_instead_of_repeating_it(
    sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY

    conn = {"conn_type": "bsg", "host": sandbox_url, "password": SANDBOX_BSG_API_KEY,
            "extra": {"retry_base_delay": 0.01, "timeout": 0.5}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_BSG_SLOW", json.dumps(conn))
    set_clock(sandbox_url, speed=0)
    audience = phones(20)
    # One creation is carried out but its answer comes too late, and the lookup that would
    # find it fails too (503s until attempts run out): the first try ends not knowing.
    add_faults(sandbox_url,
               {"provider": "bsg", "path": "/sms/send$", "skip": 2, "action": "timeout_after", "seconds": 1.0},
               {"provider": "bsg", "path": "/api/messages$", "times": None, "action": "http_status", "status": 503})
    store = DurableStore()
    op = bulk(audience, 3, bsg_conn_id="bsg_slow")
    with pytest.raises(exc.SmsProviderError):
        op.execute(context(store))
    recorded = store.values["bsg_bulk"]
    made = campaigns_by_chunk(sandbox_url, audience)
    (unknown,) = recorded["pending"]
    assert unknown in made and unknown not in {c["chunk"] for c in recorded["campaigns"]}

    httpx.delete(f"{sandbox_url}/_sandbox/faults").raise_for_status()
    # The held creation is logged when its late answer goes out: wait for it, or it would
    # be counted among the retry's creations.
    deadline = time.monotonic() + 10
    while len(creates(sandbox_url)) < len(made):
        assert time.monotonic() < deadline, "the held creation never finished"
        time.sleep(0.05)
    before = len(creates(sandbox_url))
    summary = op.execute(context(store))
    after = campaigns_by_chunk(sandbox_url, audience)
    assert sorted(after) == [0, 1, 2, 3, 4] and after[unknown]["id"] == made[unknown]["id"]
    assert len(creates(sandbox_url)) - before == 5 - len(made)  # the unanswered one was found, not re-sent
    assert_each_phone_once(sandbox_url, audience)
    assert summary["campaign_ids"][unknown] == made[unknown]["id"]


# ------------------------------------------------------------------------ the throttle alone


def test_throttle_cuts_once_per_burst_and_grows_back() -> None:
    from airflow_sms_provider.concurrency import Gate, Throttle

    throttle = Throttle(4, Gate(sleep=lambda _: None))
    inside = threading.Barrier(4, timeout=5)

    def refused_once() -> None:
        with throttle.slot():
            inside.wait()  # four calls in flight, all refused by the same burst
            throttle.pause(0.0)

    workers = [threading.Thread(target=refused_once) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(5)
    assert throttle.cuts == 1 and throttle.peak == 4
    assert throttle.limit == 3  # cut to 2, then +1 after 2 calls ended well (2 more since: not yet 3)
    for _ in range(3):
        with throttle.slot():
            pass
    assert throttle.limit == 4  # back to the bound, never above it
    with throttle.slot():
        throttle.pause(0.0)  # a call that started after the last cut cuts again
    assert (throttle.cuts, throttle.limit) == (2, 2)


def test_closed_throttle_sends_nothing_more() -> None:
    from airflow_sms_provider.concurrency import Throttle, ThrottleClosed

    throttle = Throttle(1)
    with throttle.slot():
        waiting: list[BaseException] = []

        def wait_for_slot() -> None:
            try:
                with throttle.slot():
                    pass
            except ThrottleClosed as err:
                waiting.append(err)

        worker = threading.Thread(target=wait_for_slot)
        worker.start()
        throttle.close()
        worker.join(5)
    assert len(waiting) == 1
