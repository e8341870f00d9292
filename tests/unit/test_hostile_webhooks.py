"""Issue 12 for the webhook receiver: a body is data from the network, never rendered, never echoed.

Each refusal (4xx) and each log line is checked for the hostile value, the ``sign`` sent and every form
of the webhook secret; accepted hostile values are stored byte for byte through parametrized SQL;
the asset event's extra holds counts, never a phone number or a secret.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from airflow_sms_provider.events.mobizon import mobizon_sign
from airflow_sms_provider.events.payload import MAX_BODY_BYTES
from airflow_sms_provider.events.receiver import Receiver
from airflow_sms_provider.events.store import EventStore
from tests.secret_forms import leaks

SECRET = "Whk+Secret/Sign=1%2F&zz0123"
PHONE = "77011112201"
HOSTILE = ["{{ conn.mobizon_default.password }}", "{{ 7 * 7 }}", "'); DROP TABLE sms_events; --",
           "\x1b[2J\x1b[31mREBOOT\x1b[0m", "\u202eevil", "%(asctime)s %s"]


def signed(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventId": 26, "eventType": "sms-delivery-report", "eventCreateTs": "2026-01-15 11:42:28",
        "webhookId": 1, "attempt": 1,
        "data": {"campaignId": 245455096, "messageId": 169275418, "segNum": 1,
                 "statusUpdateTs": "2026-01-15 11:42:08", "status": "DELIVRD", "to": PHONE},
    }  # fmt: skip
    body.update(over)
    body.setdefault("sign", mobizon_sign(body["eventId"], body["attempt"], body["eventCreateTs"], SECRET))
    return body


@pytest.fixture
def receiver(tmp_path: Path) -> tuple[Receiver, list[dict[str, Any]]]:
    sunk: list[dict[str, Any]] = []
    store = EventStore(tmp_path / "events.sqlite3")
    return Receiver(store, lambda uri, extra: sunk.append(extra), secret_for=lambda p, c: SECRET), sunk


def _nested(depth: int) -> bytes:
    return b'{"data": ' + b"[" * depth + b"]" * depth + b"}"


REFUSED: list[tuple[str, bytes, int]] = [
    ("not utf-8", b'{"eventId": "\xff\xfe\xc3\x28", "data": {}}', 400),
    ("deeply nested", _nested(30_000), 400),
    ("huge", b'{"pad": "' + b"x" * MAX_BODY_BYTES + b'"}', 413),
    *[(f"eventId {value!r}", json.dumps(signed(eventId=value)).encode(), 422) for value in HOSTILE],
    *[(f"eventType {value!r}", json.dumps(signed(eventType=value)).encode(), 422) for value in HOSTILE],
    *[(f"status {value!r}", json.dumps(signed(data={**signed()["data"], "status": value})).encode(), 422)
      for value in HOSTILE[:2]],
    ("wrong sign", json.dumps(signed(sign="a" * 40)).encode(), 403),
    ("sign of another event", json.dumps(signed(eventId=27, sign=signed()["sign"])).encode(), 403),
]


@pytest.mark.parametrize(("name", "body", "status"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_hostile_body_is_refused_without_echoing_it(
    name: str, body: bytes, status: int, receiver: tuple[Receiver, list[dict[str, Any]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    recv, _ = receiver
    caplog.set_level(logging.DEBUG)
    with TestClient(recv.app()) as client:
        answer = client.post("/mobizon/mobizon_default", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    said = answer.text + "\n" + "\n".join(r.getMessage() for r in caplog.records)
    assert set(answer.json()) == {"error", "field"}
    for value in [*HOSTILE, "a" * 40, signed()["sign"]]:
        assert value not in said, value
    assert not leaks(said, [SECRET])
    assert recv.store.events() == []


def test_hostile_data_of_an_accepted_event_is_stored_byte_for_byte_and_never_rendered(
    receiver: tuple[Receiver, list[dict[str, Any]]], caplog: pytest.LogCaptureFixture,
) -> None:
    """A form event's data is free text: stored as JSON through parametrized SQL; the table survives."""
    recv, _ = receiver
    caplog.set_level(logging.DEBUG)
    data = {"formId": 846, **{f"field{i}": value for i, value in enumerate(HOSTILE)}, "phone": PHONE}
    with TestClient(recv.app()) as client:
        answer = client.post("/mobizon/mobizon_default",
                             json=signed(eventId=40, eventType="form-submission", data=data))
    assert answer.json() == {"status": "recorded", "eventId": 40}
    (event,) = recv.store.events()
    assert json.loads(event["data"]) == data  # byte for byte: nothing rendered, nothing dropped
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not [value for value in [*HOSTILE, PHONE] if value in logged]
    assert not leaks(logged, [SECRET])


def test_the_asset_event_extra_holds_counts_not_phones_or_secrets(
    receiver: tuple[Receiver, list[dict[str, Any]]], caplog: pytest.LogCaptureFixture,
) -> None:
    recv, sunk = receiver
    caplog.set_level(logging.DEBUG)
    with TestClient(recv.app()) as client:
        for event_id, phone in ((50, PHONE), (51, "380737893456")):
            body = signed(eventId=event_id, data={**signed()["data"], "messageId": event_id, "to": phone})
            assert client.post("/mobizon/mobizon_default", json=body).status_code == 200
    recv.flush(quiet_seconds=0)
    (extra,) = sunk
    assert extra["counts"] == {"DELIVRD": 2}
    said = json.dumps(extra) + "\n".join(r.getMessage() for r in caplog.records)
    assert PHONE not in said and "380737893456" not in said
    assert not leaks(said, [SECRET])
