"""Delivery records a page at a time: the page checks must decide exactly as the per-record ones.

``check_page`` and ``_once_pages`` take C-level shortcuts for the usual page (nothing wrong, nothing
repeated) and fall back to the per-record rules otherwise. Each is compared here with the per-record rule on
many random hostile pages: a shortcut that accepted a page the per-record rule refuses (or named another
message) fails these tests.
"""

from __future__ import annotations

import itertools
import random
import sys
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from airflow_sms_provider.exceptions import SmsProtocolError
from airflow_sms_provider.operators.reports import SmsDeliveryReportOperator, _once, _once_pages
from airflow_sms_provider.reports.record import DeliveryRecord, check_listed, check_page, new_record


def record(message: str, campaign: str = "7", **fields: Any) -> DeliveryRecord:
    values: dict[str, Any] = {"provider": "mobizon", "campaign_id": campaign, "message_id": message,
                              "recipient": "77010000001", "status": "delivered", "provider_status": "DELIVRD",
                              "parts": 1, "cost": Decimal("2.5"), **fields}  # fmt: skip
    return new_record(**values)


# Values a listing may hold: good ones (most of them) and each kind the per-record check refuses or that
# a shortcut could get wrong (NaN compares false both ways, a signalling NaN cannot be hashed, a valid
# non-ASCII text must pass, a lone surrogate must not, non-str values make the check raise TypeError).
HOSTILE: dict[str, list[Any]] = {
    "campaign_id": ["7"] * 12 + ["8", "", "07", 7],
    "message_id": [None] * 12 + ["", "None", "é1", "\udc80", "none"],  # None: the record's own number
    "recipient": ["77010000001"] * 12 + ["", "+7 701 é", "7701\udc80"],
    "status": ["delivered"] * 6 + ["pending", "failed"],
    "provider_status": ["DELIVRD"] * 10 + ["", "ДОСТАВЛЕНО", "\ud800"],
    "parts": [1] * 8 + [None, 0, 2**31 - 1, 2**31, -1, float("nan"), 1.5, True],
    "cost": [Decimal("2.5")] * 8 + [None, Decimal(0), Decimal("-3"), Decimal("NaN"), Decimal("sNaN"),
                                    Decimal("Infinity"), Decimal("-Infinity"), Decimal("1E+12"),
                                    Decimal("999999999999.999999")],
    "error_code": [None] * 8 + ["", "E1", "é", "\udc80", 0],
}


def hostile_page(rng: random.Random, size: int, bad: float) -> list[DeliveryRecord]:
    page = []
    for i in range(size):
        values = {name: (choices[0] if rng.random() > bad else rng.choice(choices)) for name, choices in
                  HOSTILE.items()}  # fmt: skip
        if values["message_id"] is None:
            values["message_id"] = str(i + 1)
        page.append(new_record(provider="mobizon", **values))
    return page


def outcome(check: Any, page: list[DeliveryRecord]) -> tuple[str, str]:
    try:
        result = check(page)
    except Exception as err:  # the kind and the words must be the same
        return type(err).__name__, str(err)
    return "passed", "" if result is page or result is None else "returned another list"


def per_record(page: list[DeliveryRecord]) -> None:
    for r in page:
        check_listed(r, 7)


def test_check_page_decides_exactly_as_check_listed_on_hostile_pages() -> None:
    rng = random.Random(15)
    seen: Counter[str] = Counter()
    for n in range(3000):
        page = hostile_page(rng, rng.choice([1, 2, 5, 100]), bad=rng.choice([0.0, 0.002, 0.02, 0.2]))
        expected = outcome(per_record, page)
        assert outcome(lambda p: check_page(p, 7), page) == expected, f"page {n}: {page}"
        seen[expected[0]] += 1
    # The pages exercised both ways: most pass, many fail in each way the per-record check fails.
    assert seen["passed"] > 500 and seen["SmsProtocolError"] > 500 and seen["TypeError"] > 20, seen


def test_a_page_with_one_bad_item_fails_naming_that_message_never_the_phone() -> None:
    page = [record(str(i)) for i in range(1, 101)]
    for bad, words in [({"campaign_id": "8"}, "is of campaign '8'"), ({"message_id": "None"}, "has no message id"),
                       ({"parts": -1}, "has parts=-1"), ({"cost": Decimal("NaN")}, "has cost=NaN"),
                       ({"provider_status": "\udc80"}, "not valid Unicode")]:  # fmt: skip
        hostile = [*page[:57], record("58", **bad), *page[58:]]
        with pytest.raises(SmsProtocolError, match=words) as info:
            check_page(hostile, 7)
        name = bad.get("message_id", "58")
        assert f"campaign 7 holds a message ('{name}')" in str(info.value)
        assert "77010000001" not in str(info.value)


def test_a_page_of_valid_non_ascii_texts_passes_whole() -> None:
    page = [record(str(i), provider_status="ДОСТАВЛЕНО", recipient="+7 701 é") for i in range(1, 51)]
    assert check_page(page, "7") is page


def reference_once(records: Iterable[DeliveryRecord], window: int, strict: bool, repeats: list[int]
                   ) -> Iterator[DeliveryRecord]:  # fmt: skip
    """The per-record de-duplication as it was before pages (one set, one queue, a step per record)."""
    recent: set[tuple[str, str]] = set()
    order: deque[tuple[str, str]] = deque()
    for r in records:
        key = (r.campaign_id, r.message_id)
        if key in recent:
            if strict:
                raise SmsProtocolError(f"gave message {r.message_id!r} twice")
            repeats[0] += 1
            continue
        recent.add(key)
        order.append(key)
        if len(order) > window:
            recent.discard(order.popleft())
        yield r


def paged(records: list[DeliveryRecord], rng: random.Random) -> list[list[DeliveryRecord]]:
    pages, at = [], 0
    while at < len(records):
        size = rng.choice([1, 3, 7, 100])
        pages.append(records[at : at + size])
        at += size
    return pages


@pytest.mark.parametrize("strict", [False, True])
def test_once_pages_keeps_and_drops_exactly_what_the_per_record_window_does(strict: bool) -> None:
    rng = random.Random(8)
    for _ in range(300):
        window = rng.choice([1, 2, 5, 20, 150])
        ids = rng.choice([30, 400, 10_000])  # few ids: many repeats, some beyond the window
        stream = [record(str(rng.randrange(ids)), campaign=rng.choice("77778")) for _ in range(rng.randrange(400))]
        expected_repeats, got_repeats = [0], [0]
        try:
            expected: Any = [id(r) for r in reference_once(stream, window, strict, expected_repeats)]
        except SmsProtocolError as err:
            expected = str(err).split(": ")[-1][:-len(" twice")]  # fmt: skip
        pages = paged(stream, rng)
        try:
            got: Any = [id(r) for page in _once_pages(pages, window, strict=strict, repeats=got_repeats) for r in page]
        except SmsProtocolError as err:
            assert "(a page answered twice or shifted)" in str(err)
            got = str(err).split("gave message ")[1].split(" twice")[0]
            expected = expected.split("gave message ")[1] if isinstance(expected, str) else expected
        assert got == expected
        assert got_repeats == expected_repeats
        # The per-record form (kept for single records) is the same rule.
        if not isinstance(expected, str):
            assert [id(r) for r in _once(stream, window, strict=strict)] == expected


def test_a_page_answered_twice_fails_a_full_export_and_is_dropped_from_an_incremental_one() -> None:
    page0 = [record(str(i)) for i in range(1, 101)]
    page1 = [record(str(i)) for i in range(101, 201)]
    with pytest.raises(SmsProtocolError, match="campaign 7 gave message '1' twice"):
        list(_once_pages([page0, page0, page1], strict=True))
    repeats = [0]
    kept = list(_once_pages([page0, page0, page1], strict=False, repeats=repeats))
    assert kept == [page0, page1] and repeats == [100]
    # A page that shifted by one (a message moved across the boundary): only the repeated message goes.
    shifted = [page0[-1], *page1[:99]]
    assert [len(p) for p in _once_pages([page0, shifted, page1[99:]], repeats=repeats)] == [100, 99, 1]


class _ListSink:
    """A destination that keeps what it is given (the operator's own pipeline, nothing written)."""

    def __init__(self) -> None:
        self.rows: list[DeliveryRecord] = []

    def open(self, export_key: str, *, incremental: bool) -> _ListSink:
        return self

    def write(self, records: list[DeliveryRecord]) -> None:
        self.rows.extend(records)

    def commit(self) -> int:
        return len(self.rows)

    def abort(self) -> None:
        self.rows = []


@pytest.mark.parametrize("batch_size", [1, 7, 100, 5000])
def test_the_export_counts_per_batch_what_a_count_per_record_gives(batch_size: int) -> None:
    rng = random.Random(batch_size)
    statuses = ["delivered", "pending", "failed", "undelivered", "unknown-word"]
    records = [record(str(i), status=rng.choice(statuses)) for i in range(1, 1235)]
    pages = paged(records, rng)
    op = SmsDeliveryReportOperator(task_id="report", conn_id="c", campaign_ids=[7], destination="r.csv",
                                   batch_size=batch_size)  # fmt: skip
    sink = _ListSink()
    rows, counted = op._export(sink, "key", iter(pages), None)  # type: ignore[arg-type]
    assert rows == len(records) and sink.rows == records
    assert counted == {**dict.fromkeys(["pending", "delivered", "undelivered", "failed"], 0),
                       **Counter(r.status for r in records)}  # fmt: skip
    assert list(counted)[:4] == ["pending", "delivered", "undelivered", "failed"]


def test_the_default_page_reader_groups_the_records_and_fails_at_the_call() -> None:
    from airflow_sms_provider.hooks.base import DEFAULT_PAGE_RECORDS, SmsHook

    class Listing(SmsHook):
        def __init__(self) -> None:  # no connection needed
            pass

        def iter_delivery_records(self, campaign_ids: Any, *, since: Any = None, concurrency: int = 4
                                  ) -> Iterator[DeliveryRecord]:  # fmt: skip
            if not campaign_ids:
                raise SmsProtocolError("cannot list")
            return (record(str(i)) for i in range(1, 1201))

    pages = list(Listing().iter_delivery_pages([7]))
    assert [len(p) for p in pages] == [DEFAULT_PAGE_RECORDS, DEFAULT_PAGE_RECORDS, 1200 - 2 * DEFAULT_PAGE_RECORDS]
    assert [r.message_id for r in itertools.chain.from_iterable(pages)] == [str(i) for i in range(1, 1201)]
    with pytest.raises(SmsProtocolError, match="cannot list"):
        Listing().iter_delivery_pages([])


def test_the_collector_runs_less_often_during_the_export_and_as_before_after_it() -> None:
    import gc

    before, switch = gc.get_threshold(), sys.getswitchinterval()
    seen: list[tuple[int, float]] = []

    class Watching(_ListSink):
        def write(self, records: list[DeliveryRecord]) -> None:
            seen.append((gc.get_threshold()[0], sys.getswitchinterval()))
            super().write(records)

    class Failing(_ListSink):
        def commit(self) -> int:
            raise RuntimeError("the destination went away")

    op = SmsDeliveryReportOperator(task_id="report", conn_id="c", campaign_ids=[7], destination="r.csv")
    op._export(Watching(), "key", iter([[record("1")], [record("2")]]), None)  # type: ignore[arg-type]
    # Page readers get the GIL within 0.5 ms of their answer while records are built and written.
    assert seen == [(max(before[0], 10_000), min(switch, 0.0005))]
    assert (gc.get_threshold(), sys.getswitchinterval()) == (before, switch)
    with pytest.raises(RuntimeError, match="went away"):
        op._export(Failing(), "key", iter([[record("1")]]), None)  # type: ignore[arg-type]
    assert (gc.get_threshold(), sys.getswitchinterval()) == (before, switch)


def test_exports_overlapping_in_threads_put_the_collector_back_as_it_was() -> None:
    import gc

    from airflow_sms_provider.operators.reports import export_settings

    before, switch = gc.get_threshold(), sys.getswitchinterval()
    first, second = export_settings(), export_settings()
    first.__enter__()
    second.__enter__()
    assert gc.get_threshold()[0] == max(before[0], 10_000) and sys.getswitchinterval() == min(switch, 0.0005)
    first.__exit__(None, None, None)  # the first to begin ends first: the other still runs
    assert gc.get_threshold()[0] == max(before[0], 10_000) and sys.getswitchinterval() == min(switch, 0.0005)
    second.__exit__(None, None, None)
    assert (gc.get_threshold(), sys.getswitchinterval()) == (before, switch)
