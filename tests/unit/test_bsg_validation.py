"""What is checked before anything is sent to BSG, and the exact requests the operators build."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pendulum
import pytest
import respx

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.operators.bsg import (
    BsgBulkCampaignOperator,
    BsgCampaignStatsOperator,
    BsgGroupsCampaignOperator,
    BsgIndividualCampaignOperator,
    BsgStopCampaignOperator,
)
from airflow_sms_provider.protocols import bsg as proto

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
BASE = "https://one-api.bsg.world"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJpYXQiOjEsImV4cCI6MzYwMX0.c2ln"


class TestPhones:
    @pytest.mark.parametrize(
        ("raw", "number"),
        [("+380 66 123-12-31", 380661231231), ("123456789", 123456789), (380661231231, 380661231231),
         ("(380) 66.123.12.31", 380661231231), ("123456789012345", 123456789012345)],
    )  # fmt: skip
    def test_valid(self, raw: object, number: int) -> None:
        assert proto.phone_number(raw) == number

    @pytest.mark.parametrize("raw", ["12345678", "1234567890123456", "38066abc1231", "0661231231", "", None])
    def test_invalid(self, raw: object) -> None:
        with pytest.raises(ValueError):
            proto.phone_number(raw)


class TestSender:
    @pytest.mark.parametrize("sender", ["Vet klinika", "BSG", "Shop-24!", "123", "123456789012345"])
    def test_valid(self, sender: str) -> None:
        assert proto.check_sender(sender) == sender

    @pytest.mark.parametrize(
        ("sender", "why"),
        [("Ab", "3-11"), ("ABCDEFGHIJKL", "3-11"), ("12", "3-15 digits"), ("1234567890123456", "3-15 digits"),
         ("Café", "Latin"), ("", "empty"), ("   ", "empty"), (None, "empty")],
    )  # fmt: skip
    def test_invalid(self, sender: Any, why: str) -> None:
        with pytest.raises(exc.SmsValidationError, match=why) as err:
            proto.check_sender(sender)
        assert err.value.field == "sender"


class TestText:
    def test_gsm7_limit_is_765_septets(self) -> None:
        assert proto.check_message_text("a" * 765)
        with pytest.raises(exc.SmsValidationError, match="766 GSM-7 characters; BSG allows at most 765"):
            proto.check_message_text("a" * 766)

    def test_extension_characters_count_twice(self) -> None:
        assert proto.check_message_text("€" * 382)  # 764 septets
        with pytest.raises(exc.SmsValidationError, match="766 GSM-7"):
            proto.check_message_text("€" * 383)

    def test_ucs2_limit_is_335(self) -> None:
        assert proto.check_message_text("Ж" * 335)
        with pytest.raises(exc.SmsValidationError, match="336 UCS-2 characters; BSG allows at most 335"):
            proto.check_message_text("Ж" * 336)

    def test_one_non_gsm_character_makes_the_whole_text_ucs2(self) -> None:
        with pytest.raises(exc.SmsValidationError, match="outside GSM-7 makes the whole text UCS-2"):
            proto.check_message_text("a" * 400 + "Ж")

    @pytest.mark.parametrize("text", ["", "  \n", None, 5])
    def test_empty(self, text: Any) -> None:
        with pytest.raises(exc.SmsValidationError, match="empty"):
            proto.check_message_text(text)


class TestSettings:
    @pytest.mark.parametrize(("value", "hours"), [(None, None), ("", None), (1, 1), (72, 72), ("24", 24)])
    def test_validity(self, value: Any, hours: int | None) -> None:
        assert proto.check_validity(value) == hours

    @pytest.mark.parametrize("value", [0, 73, -1, "abc", True, "1.5"])
    def test_bad_validity(self, value: Any) -> None:
        with pytest.raises(exc.SmsValidationError) as err:
            proto.check_validity(value)
        assert err.value.field == "validity"

    @pytest.mark.parametrize(("value", "code"), [(0, 0), (9, 9), ("3", 3), (None, None)])
    def test_tariff(self, value: Any, code: int | None) -> None:
        assert proto.check_tariff_code(value) == code

    @pytest.mark.parametrize("value", [-1, 10, "x"])
    def test_bad_tariff(self, value: Any) -> None:
        with pytest.raises(exc.SmsValidationError, match="tariff_code"):
            proto.check_tariff_code(value)

    @pytest.mark.parametrize(("value", "ok"), [("A" * 32, True), ("A" * 33, False), ("abc-1", False),
                                               ("", False), (123, True), (None, False)])  # fmt: skip
    def test_reference_id(self, value: Any, ok: bool) -> None:
        if ok:
            assert proto.check_reference_id(value) == str(value)
        else:
            with pytest.raises(exc.SmsValidationError, match="1-32 Latin letters and digits"):
                proto.check_reference_id(value)

    def test_reference_ids_unique_within_a_request(self) -> None:
        items = [{"reference_id": "A"}, {}, {"reference_id": "B"}, {"reference_id": "A"}]
        with pytest.raises(exc.SmsValidationError, match="positions 1 and 4"):
            proto.check_unique_references(items, "phones")

    def test_callback_url(self) -> None:
        assert proto.check_callback_url("https://x.example/dlr") == "https://x.example/dlr"
        for bad in ("ftp://x", "https://" + "x" * 100):
            with pytest.raises(exc.SmsValidationError, match="callback_url"):
                proto.check_callback_url(bad)


class TestStartAt:
    @pytest.mark.parametrize(
        ("value", "wire"),
        [
            (dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=3))), "2026-03-02 06:30:00"),
            (dt.datetime(2026, 3, 2, 9, 30), "2026-03-02 09:30:00"),  # naive = UTC
            (pendulum.datetime(2026, 3, 2, 9, 30, tz="Europe/Kyiv"), "2026-03-02 07:30:00"),
            ("2026-03-02T09:30:00+02:00", "2026-03-02 07:30:00"),
            ("2026-03-02 09:30:00", "2026-03-02 09:30:00"),
            (None, None),
            ("", None),
        ],
    )
    def test_converted_to_bsg_format_in_utc(self, value: Any, wire: str | None) -> None:
        assert proto.format_start_at(value, now=NOW) == wire

    def test_past(self) -> None:
        with pytest.raises(exc.SmsValidationError, match="in the past") as err:
            proto.format_start_at("2026-03-01 11:44:59", now=NOW)  # 15 min 1 s late
        assert err.value.field == "start_at"

    def test_up_to_the_lateness_in_the_past_means_now(self) -> None:
        assert proto.format_start_at("2026-03-01 11:45:00", now=NOW) is None
        assert proto.format_start_at("2026-03-01 11:59:00", now=NOW) is None
        with pytest.raises(exc.SmsValidationError, match="in the past"):
            proto.format_start_at("2026-03-01 11:59:00", now=NOW, lateness=dt.timedelta(0))

    def test_written_in_the_accounts_zone(self) -> None:
        almaty = ZoneInfo("Asia/Almaty")
        assert proto.format_start_at("2026-03-02T09:30:00+00:00", now=NOW, tz=almaty) == "2026-03-02 14:30:00"

    def test_at_most_30_days_ahead(self) -> None:
        assert proto.format_start_at(NOW + dt.timedelta(days=30), now=NOW) == "2026-03-31 12:00:00"
        with pytest.raises(exc.SmsValidationError, match="more than 30 days"):
            proto.format_start_at(NOW + dt.timedelta(days=30, seconds=1), now=NOW)

    def test_not_a_date(self) -> None:
        with pytest.raises(exc.SmsValidationError, match="not a date"):
            proto.format_start_at("next tuesday-ish", now=NOW)


# ------------------------------------------------------------------------ operators, no network


@pytest.fixture
def bsg(monkeypatch: pytest.MonkeyPatch) -> Iterator[respx.MockRouter]:
    """A bsg connection to the real base URL, and a router that refuses any unmocked request."""
    conn = {"conn_type": "bsg", "password": "test_unitkey0123456789", "extra": {"retry_base_delay": 0.001}}
    monkeypatch.setenv("AIRFLOW_CONN_BSG_DEFAULT", json.dumps(conn))
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.post("/api/auth/login").mock(return_value=httpx.Response(200, json={"bearer": TOKEN}))
        yield router


def created(campaign_id: int) -> httpx.Response:
    return httpx.Response(200, json={"data": {"id": campaign_id, "status": "creation", "calculated_price": 0.015,
                                              "currency": "USD", "statistics": {"sent": 0, "delivered": 0}}})


def nothing_sent(router: respx.MockRouter) -> bool:
    return all(not call.request.url.path.startswith("/api/campaigns") for call in router.calls)


def bulk(**kwargs: Any) -> BsgBulkCampaignOperator:
    return BsgBulkCampaignOperator(task_id="bulk", **{"text": "Sale!", "sender": "Vet klinika", **kwargs})


def test_bad_row_fails_before_anything_is_sent_naming_the_row(bsg: respx.MockRouter) -> None:
    rows = ["380661231231", "380661231232", "12345", "380661231234"]
    with pytest.raises(exc.SmsValidationError, match="row 3") as err:
        bulk(recipients=rows).execute({})
    assert "too short" in str(err.value)
    assert len(bsg.calls) == 0


def test_bad_row_far_down_the_audience_fails_before_the_first_campaign(bsg: respx.MockRouter) -> None:
    rows = [str(380500000000 + i) for i in range(25_000)] + ["+380 66 abc"]
    with pytest.raises(exc.SmsValidationError, match="row 25001"):
        bulk(recipients=iter(rows)).execute({})
    assert nothing_sent(bsg)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"sender": "X"}, "sender"), ({"text": "Ж" * 336}, "text"), ({"validity": 73}, "validity"),
     ({"tariff_code": 10}, "tariff_code"), ({"start_at": "2001-01-01 00:00:00"}, "start_at"),
     ({"on_invalid": "ignore"}, "on_invalid"), ({"callback_url": "nope"}, "callback_url"),
     ({"chunk_size": 10_001}, "chunk_size")],
)  # fmt: skip
def test_bad_settings_fail_before_anything_is_sent(bsg: respx.MockRouter, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(exc.SmsValidationError) as err:
        bulk(recipients=["380661231231"], **kwargs).execute({})
    assert err.value.field == field
    assert len(bsg.calls) == 0


def test_audience_over_10000_with_splitting_off_is_a_clear_error(bsg: respx.MockRouter) -> None:
    rows = [str(380500000000 + i) for i in range(10_001)]
    with pytest.raises(exc.SmsValidationError, match=r"10001 valid phones need 2 campaigns.*split=False"):
        bulk(recipients=rows, split=False).execute({})
    assert len(bsg.calls) == 0


def test_reference_id_repeated_across_rows_names_the_later_row(bsg: respx.MockRouter) -> None:
    rows = [{"phone": "380661231231", "reference_id": "A1"}, {"phone": "380661231232", "reference_id": "B2"},
            {"phone": "380661231233", "reference_id": "A1"}]  # fmt: skip
    with pytest.raises(exc.SmsValidationError, match="row 3: reference_id 'A1' is used by an earlier row"):
        bulk(recipients=rows).execute({})
    assert len(bsg.calls) == 0


def test_bad_reference_id_names_the_row(bsg: respx.MockRouter) -> None:
    with pytest.raises(exc.SmsValidationError, match="row 1: reference_id='has space'"):
        bulk(recipients=[{"phone": "380661231231", "reference_id": "has space"}]).execute({})


def test_empty_audience(bsg: respx.MockRouter) -> None:
    with pytest.raises(exc.SmsValidationError, match="no audience"):
        bulk(recipients=[]).execute({})
    with pytest.raises(exc.SmsValidationError, match="no valid row"):
        bulk(recipients=["123"], on_invalid="skip").execute({})
    assert len(bsg.calls) == 0


def test_bulk_request_body_split_and_skip_report(bsg: respx.MockRouter, tmp_path: Path) -> None:
    # The chunks' campaigns are created concurrently (max_concurrent_creates=4): the requests leave in any
    # order, so each is answered by what it holds, and the bodies are compared in chunk order.
    def by_chunk(request: httpx.Request) -> httpx.Response:
        return created(11 if json.loads(request.content)["phones"][0]["number"] == 380661231231 else 12)

    send = bsg.post("/api/campaigns/sms/send").mock(side_effect=by_chunk)
    report = tmp_path / "rejected.csv"
    rows = ["+380 66 123 1231", "bad", {"phone": 380661231232, "reference_id": "Mine7"}, "380661231233"]
    op = bulk(recipients=rows, on_invalid="skip", reject_report_path=str(report), chunk_size=2, validity="24",
              start_at=pendulum.now("UTC").add(days=2).replace(microsecond=0))
    summary = op.execute({})

    # Auto reference_ids: the run's prefix (dag, task, run) + a digest of the phone, not its position.
    prefix = proto.reference_prefix("adhoc_airflow", "bulk", "no-run")
    assert prefix == summary["reference_prefix"] == "9794c48430fa5261"
    bodies = sorted((json.loads(c.request.content) for c in send.calls), key=lambda b: b["phones"][0]["number"])
    assert bodies == [
        {"phones": [{"number": 380661231231, "reference_id": "9794c48430fa5261d735854490ac4281"},
                    {"number": 380661231232, "reference_id": "Mine7"}],
         "sender": "Vet klinika", "text": "Sale!", "validity": 24, "start_at": summary["start_at"]},
        {"phones": [{"number": 380661231233, "reference_id": "9794c48430fa5261fde1975abbe50ae3"}],
         "sender": "Vet klinika", "text": "Sale!", "validity": 24, "start_at": summary["start_at"]},
    ]  # fmt: skip
    assert all(c.request.headers["authorization"] == f"Bearer {TOKEN}" for c in send.calls)
    assert summary["campaign_ids"] == [11, 12] and summary["phones"] == 3
    assert summary["invalid"]["rejected"] == 1 and summary["invalid"]["examples"][0]["row"] == 2
    assert summary["calculated_price"] == 0.03 and summary["currency"] == "USD"
    with report.open() as fh:
        assert [row[:2] for row in csv.reader(fh)] == [["row", "value"], ["2", "bad"]]
    assert "380661231231" not in json.dumps(summary)  # no audience in XCom


def test_individual_template_rows_and_row_texts(bsg: respx.MockRouter) -> None:
    send = bsg.post("/api/campaigns/sms/send-individual").mock(return_value=created(21))
    rows = [
        {"phone": "380661231231", "name": "Olena", "code": "A1"},
        {"phone": "380661231232", "text": "Own text", "sender": "Clinic 2"},
    ]
    op = BsgIndividualCampaignOperator(task_id="ind", recipients=rows, text="Hi {name}, code {code}",
                                       sender="Vet klinika", auto_reference_ids=False, tariff_code=1,
                                       transliterate=True)  # fmt: skip
    assert op.execute({})["campaign_ids"] == [21]
    assert json.loads(send.calls.last.request.content) == {
        "messages": [
            {"phone": 380661231231, "text": "Hi Olena, code A1", "sender": "Vet klinika", "transliterate": True},
            {"phone": 380661231232, "text": "Own text", "sender": "Clinic 2", "transliterate": True},
        ],
        "tariff_code": 1,
    }


@pytest.mark.parametrize(
    ("row", "why"),
    [({"phone": "380661231231"}, "placeholder {name} has no value"),
     ({"phone": "380661231231", "name": "Ж" * 340}, "UCS-2"),
     ({"phone": "380661231231", "name": "x", "sender": "A"}, "sender='A'")],
)  # fmt: skip
def test_individual_row_problems_name_the_row(bsg: respx.MockRouter, row: dict[str, str], why: str) -> None:
    rows = [{"phone": "380661231239", "name": "ok"}, row]
    op = BsgIndividualCampaignOperator(task_id="ind", recipients=rows, text="Hi {name}", sender="Vet klinika")
    with pytest.raises(exc.SmsValidationError, match="row 2") as err:
        op.execute({})
    assert why in str(err.value)
    assert len(bsg.calls) == 0


def test_individual_without_any_text(bsg: respx.MockRouter) -> None:
    op = BsgIndividualCampaignOperator(task_id="ind", recipients=[{"phone": "380661231231"}], sender="Vet klinika")
    with pytest.raises(exc.SmsValidationError, match="no text"):
        op.execute({})


def test_individual_skip_mode_sends_only_good_rows(bsg: respx.MockRouter) -> None:
    send = bsg.post("/api/campaigns/sms/send-individual").mock(return_value=created(22))
    rows = [{"phone": "380661231231", "name": "A"}, {"phone": "380661231232"}, {"phone": "1", "name": "B"}]
    op = BsgIndividualCampaignOperator(task_id="ind", recipients=rows, text="Hi {name}", sender="Vet klinika",
                                       on_invalid="skip", auto_reference_ids=False)  # fmt: skip
    summary = op.execute({})
    assert [m["phone"] for m in json.loads(send.calls.last.request.content)["messages"]] == [380661231231]
    assert [e["row"] for e in summary["invalid"]["examples"]] == [2, 3]


def test_groups_body_and_bad_groups(bsg: respx.MockRouter) -> None:
    with pytest.raises(exc.SmsValidationError, match="groups"):
        BsgGroupsCampaignOperator(task_id="g", groups="abc", text="Hi", sender="Vet klinika").execute({})
    assert len(bsg.calls) == 0
    send = bsg.post("/api/campaigns/sms/send-groups").mock(return_value=created(31))
    op = BsgGroupsCampaignOperator(task_id="g", groups="1864275, 1864276", text="Hi {12}", sender="Vet klinika",
                                   validity=12)  # fmt: skip
    assert op.execute({}) == {"campaign_ids": [31], "campaign_id": 31, "groups": [1864275, 1864276],
                              "status": "creation", "calculated_price": 0.015, "currency": "USD"}
    assert json.loads(send.calls.last.request.content) == {
        "groups": [1864275, 1864276], "sender": "Vet klinika", "text": "Hi {12}", "validity": 12}


def test_stop_and_stats_need_campaign_ids(bsg: respx.MockRouter) -> None:
    for op in (BsgStopCampaignOperator(task_id="s", campaign_ids=""),
               BsgCampaignStatsOperator(task_id="t", campaign_ids=None)):  # fmt: skip
        with pytest.raises(exc.SmsValidationError, match="campaign_ids"):
            op.execute({})
    assert len(bsg.calls) == 0


def test_templated_fields_cover_what_users_template() -> None:
    for cls in (BsgBulkCampaignOperator, BsgIndividualCampaignOperator):
        assert {"recipients", "text", "sender", "start_at", "validity", "tariff_code", "bsg_conn_id"} <= set(
            cls.template_fields)
    assert {"groups", "text", "sender", "start_at"} <= set(BsgGroupsCampaignOperator.template_fields)
    assert "campaign_ids" in BsgStopCampaignOperator.template_fields
