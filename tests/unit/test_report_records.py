"""Delivery records on their way to a sink: the de-duplication window, Mobizon items read without number conversion."""

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


def test_mobizon_record_from_the_raw_page_equals_the_one_from_the_converted_page() -> None:
    """iter_delivery_records reads message/list without the protocol's number conversion: the records
    must be what the converted item gives (a price like "0.0250" is 0.025, as float conversion made it)."""
    import json
    import types
    from zoneinfo import ZoneInfo

    from airflow_sms_provider.hooks.mobizon import MobizonHook
    from airflow_sms_provider.protocols.mobizon import normalize

    hook = object.__new__(MobizonHook)
    hook.__dict__["settings"] = types.SimpleNamespace(timezone=ZoneInfo("Asia/Almaty"))
    raw = json.loads('{"id": "80012", "campaignId": "7001", "segNum": "2", "segUserBuy": "0.0250", "from": "Alpha",'
                     ' "to": "77010000001", "status": "DELIVRD", "startSendTs": "2026-11-30 15:00:00",'
                     ' "statusUpdateTs": "2026-11-30 15:00:07"}')  # fmt: skip
    converted = normalize(raw)
    assert converted["segUserBuy"] == 0.025 and converted["id"] == 80012  # the conversion the report skips
    record = hook.delivery_record(raw)
    assert record == hook.delivery_record(converted)
    assert (record.message_id, record.campaign_id, record.parts, str(record.cost)) == ("80012", "7001", 2, "0.050")
    assert record.updated_at is not None and record.updated_at.isoformat() == "2026-11-30T10:00:07+00:00"
