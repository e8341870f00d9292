"""The campaign ledger: content digests that ignore order, sequence digests that do not."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest

from airflow_sms_provider.campaigns.bsg import Found, settle
from airflow_sms_provider.campaigns.ledger import Digest, Ledger, SequenceDigest, number_hash
from airflow_sms_provider.campaigns.reconcile import verify_bsg_found, verify_mobizon_campaign
from airflow_sms_provider.exceptions import SmsFatalError
from airflow_sms_provider.progress import Checkpoint
from airflow_sms_provider.protocols import bsg as proto
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


PREFIX = "0123456789abcdef"


def test_bsg_auto_reference_id_is_the_phones_in_any_order_within_the_spec() -> None:
    """Derived from run and phone, not position: the same phone gets the same id in every read, and
    the id keeps to BSG's ReferenceId (1-32 letters and digits, openapi.yaml)."""
    ids = {phone: proto.auto_reference_id(PREFIX, phone) for phone in NUMBERS}
    shuffled = list(NUMBERS)
    random.Random(3).shuffle(shuffled)
    assert {phone: proto.auto_reference_id(PREFIX, phone) for phone in shuffled} == ids
    assert proto.auto_reference_id(PREFIX, "380500000000") == proto.auto_reference_id(PREFIX, 380500000000)
    assert len(set(ids.values())) == len(ids)
    assert all(len(r) == 32 and r.startswith(PREFIX) and proto.check_reference_id(r) == r for r in ids.values())
    assert proto.auto_reference_id("fedcba9876543210", NUMBERS[0]) != ids[NUMBERS[0]]  # another run
    assert proto.auto_reference_id(PREFIX, 380661231231) == "0123456789abcdeffa33e1de96be616a"


def _message(i: int, phone: int, text: str = "Hi", sender: str = "Shop", campaign: int = 9) -> dict[str, Any]:
    return {"id": i, "campaign_id": campaign, "phone": phone, "reference_id": proto.auto_reference_id(PREFIX, phone),
            "text": text, "sender": sender}


def _expect(phone: int, item: Any) -> tuple[str | None, str | None, str | None]:
    return proto.auto_reference_id(PREFIX, phone), "Hi", "Shop"


def test_bsg_found_campaign_verified_on_every_message_of_any_chunk() -> None:
    held = [_message(i, 380500000001 + i) for i in range(3)]
    assert verify_bsg_found(9, held, lambda p: _expect(p, None), chunk=0) == [380500000001, 380500000002,
                                                                               380500000003]  # fmt: skip
    with pytest.raises(SmsFatalError, match=r"campaign 9 .*text 'Hi' \(this task: 'Hello'\)"):
        verify_bsg_found(9, held, lambda p: (_expect(p, None)[0], "Hello", None), chunk=0)
    stranger = [*held, {**_message(7, 380500000007), "reference_id": "Other7"}]
    with pytest.raises(SmsFatalError, match=r"message 7 to 380500000007 has reference_id 'Other7', this task gives"):
        verify_bsg_found(9, stranger, lambda p: _expect(p, None), chunk=0)
    with pytest.raises(SmsFatalError, match=r"message 0 to 380500000001 has reference_id"):
        verify_bsg_found(9, held, lambda p: None, chunk=0)


class FakeBsg:
    """Messages by reference_id and by campaign; counts the lookups."""

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = messages
        self.lookups: list[str] = []

    def find_message(self, ref: str) -> dict[str, Any] | None:
        self.lookups.append(ref)
        return next((m for m in self.messages if m["reference_id"] == ref), None)

    def iter_messages(self, campaign_id: int) -> Any:
        return iter([m for m in self.messages if m["campaign_id"] == campaign_id])

    def get_campaign(self, campaign_id: int) -> dict[str, Any]:
        return {"id": campaign_id, "status": "scheduled"}


def _items(phones: list[int]) -> list[dict[str, Any]]:
    return [{"number": p, "reference_id": proto.auto_reference_id(PREFIX, p)} for p in phones]


def _settle(hook: FakeBsg, items: list[dict[str, Any]], found: Found, full: bool) -> tuple[list[Any], bool]:
    return settle(hook, items, found, phone_of=lambda i: int(i["number"]), expect=_expect, index=0, full=full,
                  log=logging.getLogger("test"))  # fmt: skip


def test_settle_finds_a_campaign_by_any_id_of_the_chunk_and_keeps_the_other_phones() -> None:
    """An earlier try's campaign 9 holds phones 3 and 4 (and 8, of another chunk of this read): this chunk
    (1-4, in another order) finds it by its third id, reads it once, and keeps 1 and 2 to send."""
    hook = FakeBsg([_message(0, 3), _message(1, 8), _message(2, 4)])
    found = Found()
    left, hit = _settle(hook, _items([2, 1, 3, 4]), found, full=True)
    assert hit and [i["number"] for i in left] == [2, 1]
    assert found.holds(8) and found.records()[0]["phones"] == 3
    assert len(hook.lookups) == 3  # 2, 1, 3; phone 4 is in campaign 9 already: not looked up
    hook.lookups.clear()
    left, hit = _settle(hook, _items([8, 5]), found, full=True)  # another chunk: 8 known, only 5 looked up
    assert hit and [i["number"] for i in left] == [5] and len(hook.lookups) == 1


def test_settle_after_an_unanswered_request_stops_at_the_first_id_not_found() -> None:
    """A request is created whole or not at all: when its first id is not found, nothing else is looked up."""
    hook = FakeBsg([_message(0, 3)])
    left, hit = _settle(hook, _items([1, 2, 3]), Found(), full=False)
    assert not hit and len(left) == 3 and len(hook.lookups) == 1


def test_settle_stops_when_a_found_campaign_holds_a_phone_the_audience_no_longer_has() -> None:
    hook = FakeBsg([_message(0, 1), _message(1, 9)])
    masked = r"audience changed .*campaign 9 holds 1 phone\(s\) .*\(of 2; e\.g\. \*\*\*\)"  # never the number
    with pytest.raises(SmsFatalError, match=masked):
        settle(hook, _items([1, 2]), Found(), phone_of=lambda i: int(i["number"]), expect=_expect, index=0,
               full=True, log=logging.getLogger("test"), in_audience=lambda p: p != 9)  # fmt: skip
