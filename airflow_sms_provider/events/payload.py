"""Validate a Mobizon webhook body (reference/mobizon/_webhooks-05-data-structure.md).

The body is data from the network: it is parsed as JSON with a size cap, checked field by
field, and never rendered or evaluated. A refusal names the field so the sender's log says
what to fix.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_BODY_BYTES = 64 * 1024  # the documented payloads are < 2 KiB; a form event with many fields stays far below
SMS_DELIVERY_REPORT = "sms-delivery-report"
FINAL_STATUSES = frozenset({"DELIVRD", "UNDELIV", "REJECTD", "EXPIRED", "DELETED"})  # _other-smsStatus.md

_TS = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_EVENT_TYPE = re.compile(r"[a-z][a-z0-9-]{0,63}")
# Any status word is kept as data (a new final status must not make Mobizon retry ten times);
# only its shape is checked.
_STATUS = re.compile(r"[A-Z]{3,12}")
_SIGN = re.compile(r"[0-9a-fA-F]{40}")
_NUMBER = re.compile(r"\+?\d{1,20}")


class PayloadError(ValueError):
    """The body is not a webhook we accept; ``field`` names the culprit, ``status`` the HTTP answer."""

    def __init__(self, field: str, problem: str, status: int = 422) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.status = status


@dataclass(frozen=True)
class WebhookEvent:
    """The top-level fields every Mobizon webhook carries; ``data`` as received."""

    event_id: int
    event_type: str
    event_create_ts: str
    webhook_id: int
    attempt: int
    sign: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class DeliveryReport:
    """``data`` of an ``sms-delivery-report`` event: the final status of one message."""

    campaign_id: int
    message_id: int
    seg_num: int
    status_update_ts: str
    status: str
    to: str


def parse_body(body: bytes) -> WebhookEvent:
    """The webhook in ``body``, or :class:`PayloadError`."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadError("body", f"larger than {MAX_BODY_BYTES} bytes", status=413)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise PayloadError("body", "not JSON (the webhook's data transfer format must be json)", 400) from None
    if not isinstance(doc, dict):
        raise PayloadError("body", "not a JSON object", 400)
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
