"""Estimates over loopback HTTP (issue 16, governed sends): BSG prices through its price endpoint,
the rate providers ask nothing, and no estimate sends an SMS."""

from __future__ import annotations

import json

import pytest

from airflow_sms_provider.hooks.bsg import BsgHook
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.recipients import sms_parts
from tests.conftest import mobizon_conn_uri
from tests.helpers import sandbox_requests, sandbox_state

SANDBOX_PRICE = 0.015  # the sandbox's bsg_sms_price: USD per part
ROWS = [
    {"phone": "+380 66 123 0101", "name": "Olena"},
    {"phone": "380661230102", "name": "Taras " * 30},  # 2 parts
    {"phone": "380661230101", "name": "again"},  # duplicate: priced once
    {"phone": "12", "name": "typo"},  # invalid: not priced
    {"phone": "380661230103", "name": "Жанна"},  # UCS-2
]


def test_bsg_estimate_asks_the_price_endpoint_and_sends_nothing(bsg_conn: str, sandbox_url: str) -> None:
    result = BsgHook(bsg_conn).estimate("Hi {name}! Pickup until Friday.", ROWS, "MyShop")
    filled = ["Hi Olena! Pickup until Friday.", f"Hi {'Taras ' * 30}! Pickup until Friday.",
              "Hi Жанна! Pickup until Friday."]  # fmt: skip
    parts = [sms_parts(text)[2] for text in filled]
    assert parts == [1, 2, 1]
    assert (result.recipients, result.rejected, result.duplicates, result.total_parts) == (3, 1, 1, 4)
    assert (result.cost, result.currency) == (pytest.approx(4 * SANDBOX_PRICE), "USD")
    assert result.cost_basis == "BSG's price endpoint, 2 requests"  # one per part count
    paths = [r["path"] for r in sandbox_requests(sandbox_url, "bsg")]
    assert sorted(set(paths)) == ["/api/auth/login", "/api/campaigns/price"]
    assert sandbox_state(sandbox_url, "bsg")["campaigns"] == []


def test_a_rate_estimate_makes_no_request(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MZ_RATE", mobizon_conn_uri(sandbox_url, price_per_part=12, currency="KZT"))
    result = MobizonHook("mz_rate").estimate("Hi {name}", [{"recipient": "77011234567", "name": "A"}])
    assert (result.cost, result.currency) == (12.0, "KZT")
    assert sandbox_requests(sandbox_url) == []
    assert json.dumps(result.as_dict())  # XCom-ready
