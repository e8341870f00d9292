"""The upload hot path's shortcuts (docs/benchmarks.md) give what the general code gives.

Equivalence tests, not behaviour changes: each shortcut is compared with the general path
on the inputs where the two could part (empty items, string codes, the id cap).
"""

from __future__ import annotations

import random

import pytest

from airflow_sms_provider.hooks.mobizon import AddResult
from airflow_sms_provider.protocols import mobizon as proto
from tests.unit.test_mobizon_scale import _reference_query


class _Text(str):
    """A str subclass: the whole-list shortcut must treat it as the per-item loop does."""


@pytest.mark.parametrize(
    "items",
    [
        ["77011112233", "77011112234"],
        ["77011112233", "", ""],
        [""],
        [],
        ("77011112233", "abc"),
        [_Text("77011112233"), "1"],
        ["77011112233", "+7 701"],
        ["77011112233", 77011112234],
        ["77011112233", {"recipient": "77011112234", "name": "A"}],
        ["\uff17\uff17\uff10"],  # full-width digits: alphanumeric, not ASCII
    ],
)
def test_portion_shortcut_writes_the_bytes_of_the_general_encoder(items: list) -> None:
    params = {"id": 5, "recipients": items}
    assert proto.http_build_query(params) == _reference_query(params)


def test_portions_of_random_numbers_encode_as_before() -> None:
    rng = random.Random(11)
    for _ in range(200):
        items = [rng.choice(["", "0", "77011112233", "7701 111", str(rng.randint(0, 10**12))]) for _ in range(5)]
        assert proto.http_build_query({"recipients": items}) == _reference_query({"recipients": items})


def _counted_one_by_one(items: list[dict], keep_ids: int, keep_rejections: int) -> AddResult:
    # The per-recipient loop alone: items that are not all added never take the shortcut.
    result = AddResult()
    for item in items:
        result.record([item, {"code": 2}], keep_ids, keep_rejections)
        result.rejected -= 1
        result.rejections = [r for r in result.rejections if r["code"] != 2]
    return result


@pytest.mark.parametrize("keep_ids", [0, 1, 3, 100])
def test_all_added_shortcut_counts_and_keeps_ids_as_the_loop(keep_ids: int) -> None:
    items = [{"code": 0, "messageId": str(100 + i)} for i in range(5)] + [{"code": 0}, {"code": 0, "messageId": 7}]
    fast = AddResult()
    fast.record(items, keep_ids, 20)
    fast.record(items, keep_ids, 20)  # a second portion: the cap counts ids kept before
    slow = _counted_one_by_one(items * 2, keep_ids, 20)
    assert fast.summary() == slow.summary()
    assert fast.added == 14


def test_string_codes_and_mixed_portions_take_the_loop() -> None:
    result = AddResult()
    result.record([{"code": "0", "messageId": "1"}, {"code": 4}, {"code": "3", "recipient": "7"}, {}], 10, 10)
    assert (result.added, result.duplicates, result.rejected, result.message_ids) == (1, 1, 2, [1])
    assert [r["code"] for r in result.rejections] == [3, 99]
