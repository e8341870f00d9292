"""Mobizon's webhooks on the receiving side (reference/mobizon/_webhooks-05/06-*.md).

``sign = sha1("eventId|attempt|eventCreateTs|secretKey")`` as lowercase hex, the values joined
as PHP's ``.`` operator joins the decoded JSON values: integers in decimal, strings as they are.
The secret is the Mobizon connection's ``webhook_secret`` extra.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from airflow_sms_provider.events.payload import (
    DeliveryReport,
    PayloadError,
    WebhookEvent,
    connection,
    json_object,
)

NAME = "mobizon"
PATH = "/mobizon/{conn_id}"
SECRET_NAME = "webhook_secret"
SMS_DELIVERY_REPORT = "sms-delivery-report"
FINAL_STATUSES = frozenset({"DELIVRD", "UNDELIV", "REJECTD", "EXPIRED", "DELETED"})  # _other-smsStatus.md

_TS = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_EVENT_TYPE = re.compile(r"[a-z][a-z0-9-]{0,63}")
# Any status word is kept as data (a new final status must not make Mobizon retry ten times);
# only its shape is checked.
_STATUS = re.compile(r"[A-Z]{3,12}")
_SIGN = re.compile(r"[0-9a-fA-F]{40}")
_NUMBER = re.compile(r"\+?\d{1,20}")


# ---------------------------------------------------------------- signature


def mobizon_sign(event_id: int | str, attempt: int | str, event_create_ts: str, secret: str) -> str:
    """The ``sign`` Mobizon computes for one delivery attempt of one event."""
    text = f"{event_id}|{attempt}|{event_create_ts}|{secret}"
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def mobizon_sign_ok(event_id: int | str, attempt: int | str, event_create_ts: str, secret: str, sign: str) -> bool:
    """Whether ``sign`` is the signature of these values (constant-time, as ``hash_equals``)."""
    expected = mobizon_sign(event_id, attempt, event_create_ts, secret)
    return hmac.compare_digest(expected, sign.lower())


# ---------------------------------------------------------------- payload


def parse_body(body: bytes) -> WebhookEvent:
    """The webhook in ``body``, or :class:`PayloadError`."""
    doc = json_object(body, "not JSON (the webhook's data transfer format must be json)")
    sign = doc.get("sign")
    if sign is not None and (not isinstance(sign, str) or not _SIGN.fullmatch(sign)):
        raise PayloadError("sign", "not a 40-digit hex SHA1")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise PayloadError("data", "missing or not an object")
    return WebhookEvent(
        event_id=_id(doc, "eventId", "eventId"),
        event_type=_text(doc, "eventType", "eventType", _EVENT_TYPE),
        event_create_ts=_text(doc, "eventCreateTs", "eventCreateTs", _TS),
        webhook_id=_id(doc, "webhookId", "webhookId"),
        attempt=_id(doc, "attempt", "attempt"),
        sign=sign,
        data=data,
    )


def delivery_report(event: WebhookEvent) -> DeliveryReport:
    """The ``data`` of an ``sms-delivery-report`` event, or :class:`PayloadError`."""
    data = event.data
    return DeliveryReport(
        campaign_id=_id(data, "campaignId", "data.campaignId"),
        message_id=_id(data, "messageId", "data.messageId"),
        seg_num=_id(data, "segNum", "data.segNum"),
        status_update_ts=_text(data, "statusUpdateTs", "data.statusUpdateTs", _TS),
        status=_text(data, "status", "data.status", _STATUS),
        to=_text(data, "to", "data.to", _NUMBER),
    )


def read(body: bytes, secret: str, token: str | None = None) -> tuple[WebhookEvent, DeliveryReport | None]:
    """Check a webhook body against ``secret``: the event and, for a delivery report, its report.

    Raises :class:`PayloadError` (403 for a missing or wrong ``sign``). Form events have no report:
    they are recorded, not counted. ``token`` is unused (Mobizon signs its bodies; see events/bsg.py).
    """
    event = parse_body(body)
    report = delivery_report(event) if event.event_type == SMS_DELIVERY_REPORT else None
    if event.sign is None or not mobizon_sign_ok(
        event.event_id, event.attempt, event.event_create_ts, secret, event.sign
    ):
        raise PayloadError("sign", "missing or does not match the connection's webhook_secret", status=403)
    return event, report


def _id(doc: dict[str, Any], key: str, name: str) -> int:
    value = doc.get(key)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18 and value[0] != "0":
        # Mobizon's records carry numbers as strings elsewhere: accept both (no leading zero, so the
        # decimal the signature is computed over is the text that was sent).
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 10**18:
        raise PayloadError(name, "missing or not a positive integer")
    return value


def _text(doc: dict[str, Any], key: str, name: str, shape: re.Pattern[str]) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not shape.fullmatch(value):
        raise PayloadError(name, f"missing or not of the form {shape.pattern!r}")
    return value


# ---------------------------------------------------------------- the secret


def connection_secret(conn_id: str) -> str | None:
    """The Mobizon connection's ``webhook_secret`` (LookupError: no such Mobizon connection)."""
    conn = connection(conn_id)
    if conn.conn_type != NAME:
        raise LookupError(conn_id)
    secret = conn.extra_dejson.get("webhook_secret")
    if not isinstance(secret, str) or not secret:
        return None
    return secret
