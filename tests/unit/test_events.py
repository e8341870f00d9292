"""The webhook receiver's pieces without a network: signature, payload rules, dedup, batching."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from airflow_sms_provider.events.mobizon import delivery_report, mobizon_sign, mobizon_sign_ok, parse_body
from airflow_sms_provider.events.payload import MAX_BODY_BYTES, PayloadError
from airflow_sms_provider.events.receiver import Receiver, asset_uri
from airflow_sms_provider.events.store import EventStore

SECRET = "secret123"
# Computed by hand from the documented formula, outside Python:
#   printf '%s' '26|1|2026-01-15 11:42:28|secret123' | sha1sum
SIGN_26_1 = "5cdebbb611d765bad163d765e8637830b6fd4060"
#   printf '%s' '26|2|2026-01-15 11:42:28|secret123' | sha1sum   (a retry signs its attempt number)
SIGN_26_2 = "f951303c11d2b8d0db8bd6749a46553735ca0f94"


def doc(**over: Any) -> dict[str, Any]:
    """The documented sms-delivery-report example (_webhooks-05-data-structure.md), signed with SECRET."""
    body: dict[str, Any] = {
        "eventId": 26, "eventType": "sms-delivery-report", "eventCreateTs": "2026-01-15 11:42:28",
        "webhookId": 1, "attempt": 1,
        "data": {"campaignId": 245455096, "messageId": 169275418, "segNum": 3,
                 "statusUpdateTs": "2026-01-15 11:42:08", "status": "DELIVRD", "to": "380737893456"},
    }  # fmt: skip
    body.update(over)
    body.setdefault("sign", mobizon_sign(body["eventId"], body["attempt"], body["eventCreateTs"], SECRET))
    return body


def test_signature_matches_the_hand_computed_vector() -> None:
    assert mobizon_sign(26, 1, "2026-01-15 11:42:28", SECRET) == SIGN_26_1
    assert mobizon_sign("26", "2", "2026-01-15 11:42:28", SECRET) == SIGN_26_2
    assert mobizon_sign_ok(26, 1, "2026-01-15 11:42:28", SECRET, SIGN_26_1.upper())
    assert not mobizon_sign_ok(26, 2, "2026-01-15 11:42:28", SECRET, SIGN_26_1)
    assert not mobizon_sign_ok(26, 1, "2026-01-15 11:42:28", "secret124", SIGN_26_1)


def test_the_documented_example_parses() -> None:
    event = parse_body(json.dumps(doc()).encode())
    assert (event.event_id, event.attempt, event.webhook_id, event.sign) == (26, 1, 1, SIGN_26_1)
    report = delivery_report(event)
    assert (report.campaign_id, report.message_id, report.seg_num, report.status, report.to) == (
        245455096, 169275418, 3, "DELIVRD", "380737893456")  # fmt: skip
    # Numbers as strings (Mobizon's records elsewhere) are the same event.
    assert parse_body(json.dumps(doc(eventId="26", attempt="1")).encode()).event_id == 26


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        (b"not json", "body", 400),
        (b"[1, 2]", "body", 400),
        (b"{" * 100_000, "body", 413),
        (json.dumps(doc(eventId=None)).encode(), "eventId", 422),
        (json.dumps(doc(eventId=True)).encode(), "eventId", 422),
        (json.dumps(doc(eventId="026")).encode(), "eventId", 422),  # the signed text would differ
        (json.dumps(doc(attempt=-1)).encode(), "attempt", 422),
        (json.dumps(doc(eventCreateTs="2026-01-15T11:42:28Z")).encode(), "eventCreateTs", 422),
        (json.dumps(doc(eventType="<script>")).encode(), "eventType", 422),
        (json.dumps(doc(sign="{{ 7*7 }}")).encode(), "sign", 422),
        (json.dumps(doc(data="DELIVRD")).encode(), "data", 422),
    ],
)
def test_a_bad_body_is_refused_naming_the_field(body: bytes, field: str, status: int) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_body(body)
    assert (caught.value.field, caught.value.status) == (field, status)


@pytest.mark.parametrize(
    ("key", "value"),
    [("campaignId", "x"), ("messageId", None), ("segNum", 0), ("status", "delivered"), ("to", "+1 (555)"),
     ("statusUpdateTs", 1736941328)],
)  # fmt: skip
def test_a_bad_delivery_report_names_the_data_field(key: str, value: Any) -> None:
    body = doc()
    body["data"][key] = value
    with pytest.raises(PayloadError) as caught:
        delivery_report(parse_body(json.dumps(body).encode()))
    assert caught.value.field == f"data.{key}"


def test_store_records_an_event_once_and_reports_a_campaign_once(tmp_path: Any) -> None:
    store = EventStore(tmp_path / "events.sqlite3")
    first = parse_body(json.dumps(doc()).encode())
    retry = parse_body(json.dumps(doc(attempt=2)).encode())
    other = parse_body(
        json.dumps(doc(eventId=27, data={**doc()["data"], "messageId": 9, "status": "UNDELIV"})).encode()
    )
    assert store.add("mobizon/c", first, delivery_report(first), now=100.0)
    assert not store.add("mobizon/c", retry, delivery_report(retry), now=101.0)  # same eventId: a retry
    assert store.add("mobizon/other", retry, delivery_report(retry), now=101.0)  # another connection's event
    assert store.add("mobizon/c", other, delivery_report(other), now=102.0)
    assert store.due(quiet_seconds=10, now=111.0) == [("mobizon/other", 245455096)]  # c had news at 102
    emitted: list[dict[str, Any]] = []
    assert store.report("mobizon/c", 245455096, emitted.append, now=120.0) is not None
    assert emitted == [{
        "provider": "mobizon", "source": "mobizon/c", "campaign_ids": [245455096],
        "counts": {"DELIVRD": 1, "UNDELIV": 1}, "messages": 2, "segments": 6,
        "first_status_ts": "2026-01-15 11:42:08", "last_status_ts": "2026-01-15 11:42:08",
    }]  # fmt: skip
    assert store.report("mobizon/c", 245455096, emitted.append) is None  # nothing new: no second event
    store.close()
    reopened = EventStore(tmp_path / "events.sqlite3")  # durable: a restarted API server still knows
    assert not reopened.add("mobizon/c", retry, delivery_report(retry))
    assert [e["event_id"] for e in reopened.events("mobizon/c")] == [26, 27]


def test_a_failed_asset_event_leaves_the_events_for_the_next_flush(tmp_path: Any) -> None:
    store = EventStore(tmp_path / "events.sqlite3")
    event = parse_body(json.dumps(doc()).encode())
    store.add("mobizon/c", event, delivery_report(event), now=1.0)

    def broken(extra: dict[str, Any]) -> None:
        raise RuntimeError("database is down")

    with pytest.raises(RuntimeError):
        store.report("mobizon/c", 245455096, broken)
    assert store.pending() == 1 and store.batches() == []
    assert store.report("mobizon/c", 245455096, lambda extra: None) is not None
    assert store.pending() == 0


@pytest.fixture
def receiver(tmp_path: Any) -> tuple[Receiver, list[tuple[str, dict[str, Any]]]]:
    sunk: list[tuple[str, dict[str, Any]]] = []
    secrets = {"mobizon_default": SECRET, "unsigned": None}

    def secret_for(provider: str, conn_id: str) -> str | None:
        if conn_id not in secrets:
            raise LookupError(conn_id)
        return secrets[conn_id]

    store = EventStore(tmp_path / "e.sqlite3")
    return Receiver(store, lambda u, e: sunk.append((u, e)), secret_for=secret_for), sunk


def test_receiver_answers(receiver: tuple[Receiver, list[tuple[str, dict[str, Any]]]]) -> None:
    recv, sunk = receiver
    with TestClient(recv.app()) as client:
        post = client.post
        assert post("/mobizon/mobizon_default", json=doc()).json() == {"status": "recorded", "eventId": 26}
        assert post("/mobizon/mobizon_default", json=doc(attempt=2)).json() == {"status": "duplicate", "eventId": 26}
        wrong = post("/mobizon/mobizon_default", json=doc(eventId=28, sign=SIGN_26_1))
        assert (wrong.status_code, wrong.json()["field"]) == (403, "sign")
        unsigned = doc(eventId=29)
        del unsigned["sign"]
        assert post("/mobizon/mobizon_default", json=unsigned).status_code == 403
        assert post("/mobizon/unsigned", json=doc(eventId=30)).status_code == 403  # no secret: refused
        assert post("/mobizon/nobody", json=doc(eventId=31)).status_code == 404
        big = post("/mobizon/mobizon_default", content=b" " * (MAX_BODY_BYTES + 1))
        assert (big.status_code, big.json()["field"]) == (413, "body")
        form = doc(eventId=32, eventType="form-submission", data={"formId": 846})  # recorded, not counted
        assert post("/mobizon/mobizon_default", json=form).json()["status"] == "recorded"
    assert [e["event_id"] for e in recv.store.events()] == [26, 32]
    assert recv.flush(quiet_seconds=0) and sunk[0][0] == asset_uri("mobizon", "mobizon_default")
    assert sunk[0][1]["counts"] == {"DELIVRD": 1} and len(sunk) == 1
