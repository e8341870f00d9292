"""BSG One-API's ``callback_url`` on the receiving side (reference/bsg/openapi.yaml).

What the spec documents: the SMS campaign requests (``sms/send``, ``sms/send-groups``,
``sms/send-individual``) and the single-message requests accept ``callback_url`` ("Link to get
the delivery status of messages", at most 100 characters); the one callback *payload* it
documents is ``RcsStatusCallback`` (``{error, errorDescription, id, msisdn, reference, time_in,
time_sent, time_dr, status, price, currency}``, POSTed as JSON "on message status is changed",
answered with 200). It documents no signature, no event id, no retries and no separate SMS
payload. How we cope:

* authentication: a secret token in the path, ``/bsg/<conn_id>/<token>``, compared in constant
  time with the connection's ``callback_token`` extra (protocols/bsg.py ``check_callback_token``);
* deduplication: (message ``id``, ``status``) is the event's identity (a status change is what
  is reported; the same pair twice is a repeat);
* counting: only final statuses (the hook's message vocabulary) count, each message once under
  its newest one; other statuses are recorded, not counted;
* grouping: the payload has no campaign id. Our BSG operators give each message a reference id
  whose first 16 characters identify the sending task run (protocols/bsg.py
  ``auto_reference_id``); the run is the campaign group. Other references count under
  :data:`UNGROUPED`.
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
from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.protocols.bsg import check_callback_token

NAME = "bsg"
PATH = "/bsg/{conn_id}/{token}"
SECRET_NAME = "callback_token"
EVENT_TYPE = "bsg-status-callback"
UNGROUPED = "ungrouped"
# MessageStatus values after which nothing changes for the recipient (hooks/bsg.py's vocabulary:
# "unknown" is "no report yet"). Any other status word is recorded and not counted.
FINAL_STATUSES = frozenset({"delivered", "read", "expired", "undelivered", "failed", "not_viber_user",
                            "not_service_user"})  # fmt: skip

_TS = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_STATUS = re.compile(r"[a-z][a-z_]{1,31}")
_MSISDN = re.compile(r"\+?\d{9,15}")
_REFERENCE = re.compile(r"[A-Za-z0-9]{1,32}")
_AUTO_REFERENCE = re.compile(r"([0-9a-f]{16})[0-9a-f]{16}")


def token_ok(expected: str, given: str) -> bool:
    """Whether the path's token is the connection's (constant time)."""
    return hmac.compare_digest(expected.encode(), given.encode())


def read(body: bytes, secret: str, token: str | None = None) -> tuple[WebhookEvent, DeliveryReport | None]:
    """Check a callback: the path's ``token`` against ``secret``, then the body.

    The token is checked first, so a caller without it learns nothing about the payload rules.
    Raises :class:`PayloadError` (403 for a wrong token).
    """
    if token is None or not token_ok(secret, token):
        raise PayloadError("token", "does not match the connection's callback_token", status=403)
    doc = json_object(body)
    message_id = _id(doc.get("id"))
    status = _text(doc, "status", _STATUS)
    msisdn = _text(doc, "msisdn", _MSISDN, coerce_int=True)
    times = {key: _optional(doc, key, _TS) for key in ("time_in", "time_sent", "time_dr")}
    reference = _optional(doc, "reference", _REFERENCE)
    error = doc.get("error")
    if error is not None and (isinstance(error, bool) or not isinstance(error, int)):
        raise PayloadError("error", "not an integer")
    when = times["time_dr"] or times["time_sent"] or times["time_in"] or ""
    event = WebhookEvent(
        event_id=event_id(message_id, status),
        event_type=EVENT_TYPE,
        event_create_ts=when,
        webhook_id=0,  # BSG has no webhook object: the URL is the request's
        attempt=0,  # BSG numbers no attempts
        sign=None,
        data=doc,
    )
    if status not in FINAL_STATUSES:
        return event, None
    match = _AUTO_REFERENCE.fullmatch(reference or "")
    report = DeliveryReport(
        campaign_id=None, message_id=message_id, seg_num=None, status_update_ts=when, status=status,
        to=msisdn, group=match.group(1) if match else UNGROUPED,
    )  # fmt: skip
    return event, report


def event_id(message_id: int, status: str) -> int:
    """A stable 62-bit id for (message, status): BSG's callback has no event id of its own."""
    digest = hashlib.blake2b(f"{message_id}|{status}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 2) or 1


def _id(value: Any) -> int:
    # The schema says integer; its own example sends "3272625618": accept both.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 10**18:
        raise PayloadError("id", "missing or not a positive integer")
    return value


def _text(doc: dict[str, Any], key: str, shape: re.Pattern[str], coerce_int: bool = False) -> str:
    value = doc.get(key)
    if coerce_int and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not shape.fullmatch(value):
        raise PayloadError(key, f"missing or not of the form {shape.pattern!r}")
    return value


def _optional(doc: dict[str, Any], key: str, shape: re.Pattern[str]) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not shape.fullmatch(value):
        raise PayloadError(key, f"not of the form {shape.pattern!r}")
    return value


def connection_secret(conn_id: str) -> str | None:
    """The BSG connection's ``callback_token`` (None: none, or too short; LookupError: no such BSG connection)."""
    conn = connection(conn_id)
    if conn.conn_type != NAME:
        raise LookupError(conn_id)
    token = conn.extra_dejson.get(SECRET_NAME)
    if not isinstance(token, str) or not token:
        return None
    # connection() registered the token's every form (its name holds "token"); the access log's
    # path is masked by the receiver itself (receiver._mask_path).
    try:
        return check_callback_token(token, conn_id)
    except SmsValidationError:
        return None  # too short to be a credential: refused as if none were set
