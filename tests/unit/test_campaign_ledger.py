"""The campaign ledger: content digests that ignore order, sequence digests that do not."""

from __future__ import annotations

import random
from typing import Any

import pytest

from airflow_sms_provider.campaigns.ledger import Digest, Ledger, SequenceDigest, number_hash
from airflow_sms_provider.campaigns.reconcile import verify_bsg_chunk, verify_mobizon_campaign
from airflow_sms_provider.exceptions import SmsFatalError
from airflow_sms_provider.progress import Checkpoint
from tests.helpers import DurableStore

NUMBERS = [str(380500000000 + i) for i in range(2000)]


def test_digest_is_the_same_in_any_order_and_survives_json() -> None:
    shuffled = list(NUMBERS)
    random.Random(7).shuffle(shuffled)
    a, b = Digest.of(NUMBERS), Digest.of(shuffled)
    assert a == b and a.count == 2000
    assert Digest.load(a.dump()) == a
    assert len(str(a.dump())) < 80  # small: a count and 32 hex digits, never the numbers


def test_digest_sees_a_changed_missing_or_repeated_number() -> None:
    base = Digest.of(NUMBERS)
    assert Digest.of([*NUMBERS[:-1], "380599999999"]) != base
    assert Digest.of(NUMBERS[:-1]) != base
    assert Digest.of([*NUMBERS[:-1], NUMBERS[0]]) != base  # same count, one number twice
    assert Digest.of([*NUMBERS, NUMBERS[0]]) != Digest.of([*NUMBERS, NUMBERS[1]])


def test_number_hash_reads_ints_and_digit_strings_alike() -> None:
    assert number_hash("380501234567") == number_hash(380501234567)
    assert Digest.of([380501234567, "380501234568"]) == Digest.of(["380501234568", "380501234567"])


def test_sequence_digest_depends_on_order_not_on_portion_boundaries() -> None:
    whole, in_portions, reordered = SequenceDigest(), SequenceDigest(), SequenceDigest()
    whole.update(NUMBERS)
    for start in range(0, len(NUMBERS), 500):
        in_portions.update(NUMBERS[start : start + 500])
    reordered.update(list(reversed(NUMBERS)))
    assert whole.matches(in_portions.dump())
    assert not whole.matches(reordered.dump()) and not whole.matches(None)


def ledger(store: DurableStore) -> Ledger:
    return Ledger(Checkpoint({"task_state_store": store}, "k"))


def test_ledger_records_the_audience_then_accepts_it_in_another_order() -> None:
    store = DurableStore()
    ledger(store).check_audience(Digest.of(NUMBERS), sent=None, provider="bsg")
    assert store.values["k"]["audience"]["count"] == 2000
    ledger(store).check_audience(Digest.of(reversed(NUMBERS)), sent="campaign 1 holds 500", provider="bsg")


def test_ledger_stops_on_another_audience_naming_what_was_sent() -> None:
    store = DurableStore()
    ledger(store).check_audience(Digest.of(NUMBERS), sent=None, provider="bsg")
    with pytest.raises(SmsFatalError, match=r"read 2,000 recipients .* this one 1,999 .*BSG campaign 7 holds 500"):
        ledger(store).check_audience(Digest.of(NUMBERS[1:]), sent="BSG campaign 7 holds 500", provider="bsg")


def test_ledger_takes_a_new_audience_when_nothing_was_sent() -> None:
    store = DurableStore()
    ledger(store).check_audience(Digest.of(NUMBERS), sent=None, provider="bsg")
    ledger(store).check_audience(Digest.of(NUMBERS[:10]), sent=None, provider="bsg")
    assert Digest.load(store.values["k"]["audience"]) == Digest.of(NUMBERS[:10])


def test_mobizon_campaign_verified_on_text_sender_and_type() -> None:
    held = {"id": "5", "name": "Sale [af-1]", "text": "Sale", "from": "Shop", "type": "2", "commonStatus": "NEW"}
    verify_mobizon_campaign(held, {"text": "Sale", "sender": None, "campaign_type": 2}, "Shop")
    with pytest.raises(SmsFatalError, match=r"campaign 5 .*text 'Sale' \(this task: 'Sale!'\)"):
        verify_mobizon_campaign(held, {"text": "Sale!", "campaign_type": 2}, None)
    with pytest.raises(SmsFatalError, match=r"from 'Shop' \(this task: 'Other'\)"):
        verify_mobizon_campaign(held, {"text": "Sale", "sender": "Other", "campaign_type": 2}, None)


class FakeBsg:
    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = messages

    def iter_messages(self, campaign_id: int) -> Any:
        return iter(self.messages)


def test_bsg_chunk_verified_on_every_reference_id_text_and_sender() -> None:
    phones = {"r1": 380500000001, "r2": 380500000002}
    expected = {ref: (phone, "Hi", "Shop") for ref, phone in phones.items()}
    good = [{"id": i, "reference_id": r, "phone": p, "text": "Hi", "sender": "Shop"}
            for i, (r, p) in enumerate(phones.items())]  # fmt: skip
    verify_bsg_chunk(FakeBsg(good), 9, expected, chunk=0)
    with pytest.raises(SmsFatalError, match=r"campaign 9 .*1 of the chunk's 2 reference_ids are not in it"):
        verify_bsg_chunk(FakeBsg(good[:1]), 9, expected, chunk=0)
    with pytest.raises(SmsFatalError, match=r"text 'Hi' \(this task: 'Hello'\)"):
        verify_bsg_chunk(FakeBsg(good), 9, {ref: (p, "Hello", "Shop") for ref, p in phones.items()}, chunk=0)
    other = [*good, {"id": 5, "reference_id": "x", "phone": 1, "text": "Hi", "sender": "Shop"}]
    with pytest.raises(SmsFatalError, match="not one of this chunk's"):
        verify_bsg_chunk(FakeBsg(other), 9, expected, chunk=0)
    moved = [{**good[0], "phone": 380500000009}, good[1]]
    with pytest.raises(SmsFatalError, match="went to 380500000009"):
        verify_bsg_chunk(FakeBsg(moved), 9, expected, chunk=0)
