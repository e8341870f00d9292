"""operators/reports._once: a message repeated within the window is written once (bounded memory)."""

from __future__ import annotations

from airflow_sms_provider.operators.reports import _once
from airflow_sms_provider.reports.record import DeliveryRecord


def record(campaign: str, message: str) -> DeliveryRecord:
    return DeliveryRecord("mobizon", campaign, message, "77010000001", "delivered", "DELIVRD")


def test_a_repeat_within_the_window_is_dropped_and_one_older_than_it_is_kept() -> None:
    stream = [record("1", "a"), record("1", "b"), record("1", "a"), record("2", "a"), record("1", "c"),
              record("1", "d"), record("1", "a"), record("1", "d")]  # fmt: skip
    kept = [(r.campaign_id, r.message_id) for r in _once(stream, window=3)]
    # ("1", "a") is repeated while among the last 3 kept (dropped), then again after 3 others (kept).
    assert kept == [("1", "a"), ("1", "b"), ("2", "a"), ("1", "c"), ("1", "d"), ("1", "a")]


def test_a_long_stream_without_repeats_passes_whole_in_order() -> None:
    stream = [record("7", str(i)) for i in range(50_000)]
    assert [r.message_id for r in _once(stream, window=1000)] == [str(i) for i in range(50_000)]
