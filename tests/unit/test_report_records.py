"""Delivery records on their way to a sink: the de-duplication window, Mobizon items read without number conversion."""

from __future__ import annotations

import pytest

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


def test_check_listed_names_what_the_provider_got_wrong_never_the_phone() -> None:
    import dataclasses
    from decimal import Decimal

    from airflow_sms_provider.exceptions import SmsProtocolError
    from airflow_sms_provider.reports.record import DeliveryRecord, check_listed

    good = DeliveryRecord("mobizon", "7", "70", "77010000001", "delivered", "DELIVRD", 1, Decimal("2.5"))
    assert check_listed(good, 7) is good
    for change, words in [({"campaign_id": "8"}, "is of campaign '8'"), ({"message_id": "None"}, "no message id"),
                          ({"parts": 2**31}, "parts=2147483648"), ({"parts": -1}, "parts=-1"),
                          ({"cost": Decimal("Infinity")}, "cost=Infinity"),
                          ({"cost": Decimal("1E+12")}, "cost=1E\\+12")]:
        bad = dataclasses.replace(good, **change)
        with pytest.raises(SmsProtocolError, match=words) as info:
            check_listed(bad, 7)
        assert "77010000001" not in str(info.value) and "campaign 7" in str(info.value)


def test_check_count_exact_for_a_full_listing_at_least_for_a_filtered_one() -> None:
    from airflow_sms_provider.exceptions import SmsProtocolError
    from airflow_sms_provider.reports.record import check_count

    check_count("bsg", 1, 3, [3, 3], exact=True)
    check_count("mobizon", 1, 5, [3, 4, 5], exact=False)  # messages entering a "changed since" listing
    check_count("mobizon", 1, 0, [], exact=True)
    with pytest.raises(SmsProtocolError, match="3 message\\(s\\) were announced and 2 listed"):
        check_count("bsg", 1, 2, [3], exact=True)
    with pytest.raises(SmsProtocolError, match="3 message\\(s\\) were announced and 4 listed"):
        check_count("bsg", 1, 4, [3, 3], exact=True)
    with pytest.raises(SmsProtocolError, match="total changed from 3 to 4"):
        check_count("bsg", 1, 3, [3, 4], exact=True)
    with pytest.raises(SmsProtocolError, match="3 message\\(s\\) were announced and 2 listed"):
        check_count("mobizon", 1, 2, [3, 4], exact=False)
