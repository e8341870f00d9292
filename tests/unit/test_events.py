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
        "first_status_ts": "2026-01-15 11:42:08", "last_status_ts": "2026-01-15 11:42:08", "update": False,
    }]  # fmt: skip
    assert store.report("mobizon/c", 245455096, emitted.append) is None  # nothing new: no second event
    store.close()
    reopened = EventStore(tmp_path / "events.sqlite3")  # durable: a restarted API server still knows
    assert not reopened.add("mobizon/c", retry, delivery_report(retry))
    assert [e["event_id"] for e in reopened.events("mobizon/c")] == [26, 27]


def test_a_late_report_makes_an_update_event_with_the_full_counts(tmp_path: Any) -> None:
    store = EventStore(tmp_path / "events.sqlite3")
    first = parse_body(json.dumps(doc()).encode())
    store.add("mobizon/c", first, delivery_report(first), now=1.0)
    emitted: list[dict[str, Any]] = []
    store.report("mobizon/c", 245455096, emitted.append)
    late = parse_body(
        json.dumps(doc(eventId=27, data={**doc()["data"], "messageId": 9, "status": "EXPIRED"})).encode()
    )
    assert store.add("mobizon/c", late, delivery_report(late), now=500.0)  # after the quiet period
    assert store.due(quiet_seconds=10, now=600.0) == [("mobizon/c", 245455096)]
    store.report("mobizon/c", 245455096, emitted.append)
    assert [e["update"] for e in emitted] == [False, True]
    # The follow-up carries the campaign's full counts (a consumer may replace, not add) and what is new.
    assert (emitted[1]["counts"], emitted[1]["new"], emitted[1]["messages"]) == ({"DELIVRD": 1, "EXPIRED": 1},
                                                                               {"EXPIRED": 1}, 2)  # fmt: skip
    assert [b["extra"]["update"] for b in store.batches()] == [False, True]


def test_a_store_file_from_before_groups_is_migrated(tmp_path: Any) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE sms_events (source TEXT NOT NULL, event_id INTEGER NOT NULL, event_type TEXT NOT NULL,
            campaign_id INTEGER, message_id INTEGER, status TEXT, seg_num INTEGER, status_update_ts TEXT,
            event_create_ts TEXT NOT NULL, attempt INTEGER NOT NULL, received_at REAL NOT NULL, data TEXT NOT NULL,
            batch INTEGER, PRIMARY KEY (source, event_id));
        CREATE TABLE sms_batches (id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL,
            campaign_id INTEGER NOT NULL, created_at REAL NOT NULL, extra TEXT NOT NULL);
        INSERT INTO sms_events VALUES ('mobizon/c', 26, 'sms-delivery-report', 7, 1, 'DELIVRD', 1,
            '2026-01-15 11:42:08', '2026-01-15 11:42:28', 1, 1.0, '{}', NULL);
    """)  # fmt: skip
    old.commit()
    old.close()
    store = EventStore(path)
    assert store.pending() == 1 and store.due(0) == [("mobizon/c", 7)]
    assert store.report("mobizon/c", 7, lambda extra: None)["counts"] == {"DELIVRD": 1}  # type: ignore[index]


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


# ---------------------------------------------------------------- BSG callback_url

TOKEN = "T" * 16 + "0123456789abcdef"  # 32 characters, the minimum
RUN = "0f1e2d3c4b5a6978"  # an auto reference's run prefix (protocols/bsg.py auto_reference_id)


def bsg_doc(**over: Any) -> dict[str, Any]:
    """The RcsStatusCallback example of bsg/openapi.yaml (the one callback payload it documents)."""
    body: dict[str, Any] = {
        "error": 0, "errorDescription": "No errors", "id": "3272625618", "msisdn": "380661231231",
        "reference": "f2d37bf77f6242daa83f23b0cc84b627", "time_in": "2025-04-14 10:56:09",
        "time_sent": "2025-04-14 10:56:10", "time_dr": "2025-04-14 10:56:13", "status": "delivered",
        "price": "0.10", "currency": "EUR",
    }  # fmt: skip
    body.update(over)
    return body


def test_bsg_documented_example_parses_and_groups_by_the_run_prefix() -> None:
    from airflow_sms_provider.events import bsg

    event, report = bsg.read(json.dumps(bsg_doc()).encode(), TOKEN, TOKEN)
    assert report is not None
    assert (report.message_id, report.status, report.to, report.status_update_ts, report.group) == (
        3272625618, "delivered", "380661231231", "2025-04-14 10:56:13", "f2d37bf77f6242da")  # fmt: skip
    assert event.event_id == bsg.event_id(3272625618, "delivered") and event.data["price"] == "0.10"
    # A status that is not final is recorded but not counted; a reference that is not ours: ungrouped.
    assert bsg.read(json.dumps(bsg_doc(status="sent")).encode(), TOKEN, TOKEN)[1] is None
    _, other = bsg.read(json.dumps(bsg_doc(reference="order42", id=5)).encode(), TOKEN, TOKEN)
    assert other is not None and other.group == bsg.UNGROUPED


@pytest.mark.parametrize(
    ("token", "body", "field", "status"),
    [
        (TOKEN[:-1] + "x", bsg_doc(), "token", 403),
        (None, bsg_doc(), "token", 403),
        (TOKEN[:-1] + "x", {"id": "<script>"}, "token", 403),  # the token first: no hint about the body
        (TOKEN, bsg_doc(id=None), "id", 422),
        (TOKEN, bsg_doc(status="Delivered!"), "status", 422),
        (TOKEN, bsg_doc(msisdn="+1 (555)"), "msisdn", 422),
        (TOKEN, bsg_doc(time_dr="2025-04-14T10:56:13Z"), "time_dr", 422),
        (TOKEN, bsg_doc(reference="x" * 33), "reference", 422),
        (TOKEN, bsg_doc(error="0"), "error", 422),
    ],
)
def test_bsg_callback_refusals_name_the_field(token: str | None, body: dict[str, Any], field: str, status: int) -> None:
    from airflow_sms_provider.events import bsg

    with pytest.raises(PayloadError) as caught:
        bsg.read(json.dumps(body).encode(), TOKEN, token)
    assert (caught.value.field, caught.value.status) == (field, status)
    assert TOKEN not in str(caught.value)


def test_bsg_token_and_callback_url_rules() -> None:
    from airflow_sms_provider.exceptions import SmsValidationError
    from airflow_sms_provider.protocols.bsg import check_callback_token, events_callback_url

    assert check_callback_token(TOKEN) == TOKEN
    for bad in (TOKEN[:-1], TOKEN[:-1] + "/", TOKEN + "%", 12345678901234567890123456789012345):
        with pytest.raises(SmsValidationError, match="at least 32 characters") as caught:
            check_callback_token(bad, "bsg_default")
        assert str(bad) not in str(caught.value)
    assert events_callback_url("https://af.example.com/sms-events/", "bsg_default", TOKEN) == (
        f"https://af.example.com/sms-events/bsg/bsg_default/{TOKEN}")  # fmt: skip
    base = "https://airflow.internal.example.com/sms-events"
    assert len(events_callback_url(base, "bsg_production", TOKEN)) == 99  # 67 + 32: fits
    with pytest.raises(SmsValidationError, match=r"is 101 characters \(69 \+ a 32-character token\)") as caught:
        events_callback_url(base, "bsg_production_2", TOKEN)
    assert TOKEN not in str(caught.value) and caught.value.field == "callback_url"
    with pytest.raises(SmsValidationError, match="events_url"):
        events_callback_url("airflow.example.com", "bsg_default", TOKEN)


def test_receiver_counts_bsg_callbacks_per_run_once_per_message(tmp_path: Any) -> None:
    sunk: list[tuple[str, dict[str, Any]]] = []

    def secret_for(provider: str, conn_id: str) -> str | None:
        if (provider, conn_id) == ("bsg", "bsg_default"):
            return TOKEN
        if (provider, conn_id) == ("bsg", "no_token"):
            return None
        raise LookupError(conn_id)

    recv = Receiver(EventStore(tmp_path / "e.sqlite3"), lambda u, e: sunk.append((u, e)), secret_for=secret_for)
    path = f"/bsg/bsg_default/{TOKEN}"
    ref = RUN + "0000000000000001"
    with TestClient(recv.app()) as client:
        post = client.post
        assert post(path, json=bsg_doc(id=1, reference=ref, status="sent")).json()["status"] == "recorded"
        assert post(path, json=bsg_doc(id=1, reference=ref)).json()["status"] == "recorded"
        assert post(path, json=bsg_doc(id=1, reference=ref)).json()["status"] == "duplicate"  # at least once
        assert post(path, json=bsg_doc(id=2, reference=RUN + "0000000000000002", status="undelivered",
                                       time_dr=None)).json()["status"] == "recorded"  # fmt: skip
        # delivered, then read (Viber-style): one message, counted once under its newest status
        assert post(path, json=bsg_doc(id=1, reference=ref, status="read",
                                       time_dr="2025-04-14 10:57:00")).status_code == 200  # fmt: skip
        wrong = post(f"/bsg/bsg_default/{'x' * 32}", json=bsg_doc())
        assert (wrong.status_code, wrong.json()["field"]) == (403, "token")
        assert post("/bsg/bsg_default", json=bsg_doc()).status_code == 404  # no token: no route
        no_token = post(f"/bsg/no_token/{TOKEN}", json=bsg_doc())
        assert (no_token.status_code, no_token.json()["field"]) == (403, "callback_token")
        assert post(f"/bsg/nobody/{TOKEN}", json=bsg_doc()).status_code == 404
    assert recv.flush(quiet_seconds=0)
    ((uri, extra),) = sunk
    assert uri == "sms://bsg/bsg_default"
    assert extra == {
        "provider": "bsg", "source": "bsg/bsg_default", "campaign_ids": [], "group": RUN,
        "counts": {"read": 1, "undelivered": 1}, "messages": 2, "segments": None,
        "first_status_ts": "2025-04-14 10:56:10", "last_status_ts": "2025-04-14 10:57:00", "update": False,
    }  # fmt: skip


def test_the_token_is_masked_in_the_path_an_access_log_reads(tmp_path: Any) -> None:
    recv = Receiver(EventStore(tmp_path / "e.sqlite3"), lambda u, e: None, secret_for=lambda p, c: TOKEN)
    inner = recv.app()
    logged: list[str] = []

    async def access_log(scope: Any, receive: Any, send: Any) -> None:  # as Airflow's HttpAccessLogMiddleware
        await inner(scope, receive, send)
        logged.append(scope["path"] + " " + scope["raw_path"].decode())

    with TestClient(access_log) as client:
        assert client.post(f"/bsg/bsg_default/{TOKEN}", json=bsg_doc()).status_code == 200
        assert client.post(f"/bsg/bsg_default/{'y' * 32}", json=bsg_doc()).status_code == 403
    assert logged == ["/bsg/bsg_default/*** /bsg/bsg_default/***"] * 2
