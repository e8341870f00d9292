"""Estimates before a send (issue 16, governed sends): size, parts, cost; BSG's price request bytes.

No server: the rate comes from the connection (an ``AIRFLOW_CONN_*`` variable) and BSG's hook is
given a recorded ``campaign_price``; the wire bytes are the protocol module's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_sms_provider.estimate import RatePricer, UnknownPricer, connection_rate, estimate_audience, masked
from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.hooks import bsg as bsg_hook
from airflow_sms_provider.hooks.bsg import BsgHook, BsgPricer
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.hooks.ogangi import OgangiHook
from airflow_sms_provider.protocols import bsg as proto
from airflow_sms_provider.transport import Response

NUMBERS = [f"7701000{i:04d}" for i in range(10)]


def estimate(text: str, rows: Any, pricer: Any = None, **kwargs: Any) -> Any:
    return estimate_audience(text, rows, pricer or UnknownPricer("c"), provider="test", **kwargs)


@pytest.mark.parametrize(
    ("text", "encoding", "parts"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # an extension character counts two septets: 160
        ("€" * 81, "GSM-7", 2),
        ("ж" * 70, "UCS-2", 1),
        ("ж" * 71, "UCS-2", 2),
        ("ж" * 134, "UCS-2", 2),
        ("ж" * 135, "UCS-2", 3),
    ],
)
def test_parts_at_the_edges(text: str, encoding: str, parts: int) -> None:
    result = estimate(text, NUMBERS[:2])
    assert (result.encodings, result.parts, result.total_parts) == ({encoding: 2}, {parts: 2}, 2 * parts)


def test_placeholders_are_filled_per_row_before_counting() -> None:
    rows = [
        {"recipient": NUMBERS[0], "name": "Ann"},  # 150 GSM-7 characters filled: 1 part
        {"recipient": NUMBERS[1], "name": "A" * 20},  # 167: 2 parts
        {"recipient": NUMBERS[2], "name": "Жанна"},  # a Cyrillic name makes the text UCS-2: 3 parts
    ]
    text = "Hi {name}! " + "x" * 143
    result = estimate(text, rows, sample_size=2)
    assert result.parts == {1: 1, 2: 1, 3: 1} and result.total_parts == 6
    assert result.encodings == {"GSM-7": 2, "UCS-2": 1}
    assert result.samples == [{"to": "+7701***0000", "text": "Hi Ann! " + "x" * 143},
                              {"to": "+7701***0001", "text": "Hi " + "A" * 20 + "! " + "x" * 143}]  # fmt: skip
    assert result.parts_line() == "1 part: 1, 2 parts: 1, 3 parts: 1"


def test_duplicates_once_invalid_rows_reported_and_missing_values_rejected() -> None:
    rows = [
        {"phone": "+7 701 000 0000", "name": "First"},
        {"phone": "77010000000", "name": "Second"},  # the same number: sent once, first row wins
        {"phone": "12", "name": "Short"},
        {"phone": NUMBERS[3]},  # no value for {name}
        {"phone": NUMBERS[4], "name": "{{ 7 * 7 }}"},  # data, kept as written
    ]
    result = estimate("Hi {name}", rows)
    assert (result.recipients, result.duplicates, result.rejected) == (2, 1, 2)
    assert [(e["row"], e["reason"]) for e in result.rejected_examples] == [
        (3, "too short: 2 digits, at least 10 expected"), (4, "no value for {name}")]  # fmt: skip
    assert [s["text"] for s in result.samples] == ["Hi First", "Hi {{ 7 * 7 }}"]


def test_the_audience_is_read_once_streaming() -> None:
    reads = []

    class Once:
        def __iter__(self) -> Iterator[str]:
            reads.append(1)
            yield from NUMBERS

    pricer = RatePricer(json_decimal("0.5"), "KZT", "c")
    result = estimate("Hello", Once(), pricer)
    assert reads == [1] and result.recipients == 10 and (result.cost, result.currency) == (5.0, "KZT")


def json_decimal(text: str) -> Any:
    from decimal import Decimal

    return Decimal(text)


def test_masked_numbers() -> None:
    assert (masked("77011234567"), masked("380661230101"), masked("12345678")) == (
        "+7701***4567", "+3806***0101", "+********")  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "field", "value"),
    [
        ({"price_per_part": "ten", "currency": "KZT"}, "price_per_part", "ten"),
        ({"price_per_part": -1, "currency": "KZT"}, "price_per_part", -1),
        ({"price_per_part": True, "currency": "KZT"}, "price_per_part", True),
        ({"price_per_part": "NaN", "currency": "KZT"}, "price_per_part", "NaN"),
        ({"price_per_part": 0.02}, "currency", None),
        ({"price_per_part": 0.02, "currency": "tenge"}, "currency", "tenge"),
    ],
)
def test_a_bad_rate_names_its_field_and_value(extra: dict, field: str, value: Any) -> None:
    with pytest.raises(SmsValidationError) as info:
        connection_rate(extra, "mz")
    assert (info.value.field, info.value.value) == (field, value)
    assert f"{field}={value!r}" in str(info.value) and "'mz'" in str(info.value)


def _conn(monkeypatch: pytest.MonkeyPatch, name: str, conn_type: str, **extra: Any) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", json.dumps(
        {"conn_type": conn_type, "host": "http://127.0.0.1:9", "login": "u", "password": "k" * 40, "extra": extra}))


def test_mobizon_and_ogangi_cost_from_the_connections_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    _conn(monkeypatch, "mz_rate", "mobizon", price_per_part="0.1", currency="kzt")
    _conn(monkeypatch, "og_rate", "ogangi", price_per_part=0.35, currency="USD", instance_id=1, public_key="p")
    text = "x" * 161  # 2 parts each
    mobizon = MobizonHook(mobizon_conn_id="mz_rate").estimate(text, NUMBERS[:3])
    assert (mobizon.total_parts, mobizon.cost, mobizon.currency) == (6, 0.6, "KZT")  # 6 x 0.1, no float error
    assert mobizon.cost_line() == "0.6 KZT (price_per_part 0.1 KZT of connection 'mz_rate')"
    ogangi = OgangiHook(ogangi_conn_id="og_rate").estimate(text, NUMBERS[:3])
    assert (ogangi.cost, ogangi.currency) == (2.1, "USD")


def test_no_rate_means_an_unknown_cost_said_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    _conn(monkeypatch, "mz_norate", "mobizon")
    result = MobizonHook(mobizon_conn_id="mz_norate").estimate("Hello", NUMBERS[:2])
    assert (result.cost, result.currency, result.recipients) == (None, None, 2)
    assert result.cost_line() == ("unknown: connection 'mz_norate' has no 'price_per_part' extra "
                                  "(set it and 'currency' to see a cost)")  # fmt: skip


def test_bsg_price_request_bytes() -> None:
    request = proto.campaign_price([380661230101, 380661230102], "Hi Olena!", "MyShop")
    assert (request.method, request.path, request.idempotent) == ("POST", "/api/campaigns/price", True)
    assert request.headers["Content-Type"] == "application/json"
    assert request.content == (b'{"sender":"MyShop","text":"Hi Olena!","messages":'
                               b'[{"phone":380661230101},{"phone":380661230102}]}')  # fmt: skip
    tariff = proto.campaign_price([380661230101], "\u0416", "MyShop", tariff_code=9)
    assert tariff.content == (  # UTF-8 as written (ensure_ascii=False), the tariff last
        '{"sender":"MyShop","text":"Ж","messages":[{"phone":380661230101}],"tariff_code":9}'.encode()
    )


def test_bsg_price_answer() -> None:
    assert proto.parse_price(Response(200, b'{"price":0.0527088,"currency":"USD"}', {})) == (0.0527088, "USD")
    assert proto.parse_price(Response(200, b'{"price":null,"currency":"USD"}', {})) == (None, "USD")
    with pytest.raises(SmsValidationError):
        proto.parse_price(Response(422, b'{"message":"The given data was invalid.",'
                                            b'"errors":{"messages0phone":["This value is too long."]}}', {}))


def test_bsg_prices_rows_grouped_by_parts_in_portions(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[int], str]] = []

    def campaign_price(self: Any, phones: list[int], text: str, sender: str, *, tariff_code: Any = None) -> Any:
        calls.append((list(phones), text))
        return 0.01 * len(phones) * proto_parts(text), "USD"

    monkeypatch.setattr(BsgHook, "campaign_price", campaign_price)
    monkeypatch.setattr(bsg_hook.proto, "MAX_PHONES_PER_CAMPAIGN", 2)
    rows = [{"phone": f"38066123010{i}", "name": "Ann" if i % 2 else "A" * 160} for i in range(5)]
    result = BsgHook().estimate("Hi {name}", rows, "MyShop")
    # 1-part rows (1, 3) filled a portion of 2 and were priced at once; the 2-part rows (0, 2, 4)
    # in a portion of 2 and one left over, each priced with the first text of its group.
    assert [(phones, text[:6]) for phones, text in calls] == [
        ([380661230100, 380661230102], "Hi AAA"), ([380661230101, 380661230103], "Hi Ann"),
        ([380661230104], "Hi AAA")]  # fmt: skip
    assert (result.cost, result.currency, result.total_parts) == (0.08, "USD", 8)
    assert result.cost_basis == "BSG's price endpoint, 3 requests"


def proto_parts(text: str) -> int:
    from airflow_sms_provider.recipients import sms_parts

    return sms_parts(text)[2]


def test_bsg_needs_a_sender_before_reading_anything() -> None:
    with pytest.raises(SmsValidationError) as info:
        BsgHook().pricer(None)
    assert info.value.field == "sender"


def test_bsg_null_price_is_unknown_not_free() -> None:
    class Hook:
        def campaign_price(self, phones: Any, text: str, sender: str, tariff_code: Any = None) -> Any:
            return None, "USD"

    pricer = BsgPricer(Hook(), "MyShop")  # type: ignore[arg-type]
    pricer.add("380661230101", "Hi", 1)
    cost, currency, basis = pricer.result()
    assert (cost, currency) == (None, None) and basis.startswith("unknown: BSG answered no price for 1 recipients")


# ------------------------------------------------------------------ the send's options (#11 item 7)


def test_the_estimate_counts_a_row_without_a_value_with_the_text_mobizon_sends() -> None:
    from airflow_sms_provider.estimate import fill_rule

    rows = [{"recipient": "77011234567", "name": "Ana"}, {"recipient": "77011234568"}]
    kept = estimate_audience("Hi {name}", rows, UnknownPricer("c"), provider="mobizon",
                             row_rule=fill_rule("Hi {name}", missing_allowed=True))  # fmt: skip
    removed = estimate_audience("Hi {name}", rows, UnknownPricer("c"), provider="mobizon",
                                row_rule=fill_rule("Hi {name}", missing_allowed=True, remove_missing=True))
    refused = estimate_audience("Hi {name}", rows, UnknownPricer("c"), provider="mobizon")
    assert [s["text"] for s in kept.samples] == ["Hi Ana", "Hi {name}"]
    assert [s["text"] for s in removed.samples] == ["Hi Ana", "Hi "]
    assert (refused.recipients, refused.rejected) == (1, 1)


def test_the_estimate_rejects_values_for_a_text_without_placeholders() -> None:
    from airflow_sms_provider.recipients import unused_values_reason

    rows = [{"recipient": "77011234567", "name": "Ana"}, {"recipient": "77011234568"}]
    estimate = estimate_audience("Hi", rows, UnknownPricer("c"), provider="ogangi")
    assert (estimate.recipients, estimate.rejected) == (1, 1)
    assert estimate.rejected_examples[0]["reason"] == unused_values_reason(["name"])
    assert unused_values_reason(["name"]).startswith("values for name but the text has no placeholders")


@pytest.mark.parametrize(
    ("params", "template_params", "expected"),
    [
        ({"a": "1", "b": "2"}, None, (None, "1-2")),
        ({"b": "2", "a": "1"}, ["a", "b"], (None, "1-2")),  # template_params order, not the row's
        ({"a": "1"}, ["a", "b"], ("no value for template parameter(s) ['b']", None)),
        ({"a": "1"}, None, ("the text uses {1} but the row has 1 template value(s)", None)),
        ({"a": "1", "b": "2", "text": "own {1}"}, None, (None, "own 2")),
        ({"a": "", "b": " "}, None, (None, "- ")),
    ],
)
def test_the_ogangi_file_rule_fills_positionally(params: dict[str, str], template_params: list[str] | None,
                                                 expected: tuple[str | None, str | None]) -> None:
    from airflow_sms_provider.campaigns.ogangi import file_fill

    fill = file_fill("{0}-{1}", params, template_params)
    assert (fill.problem, fill.filled) == expected
