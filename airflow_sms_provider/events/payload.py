"""What every provider's webhook becomes, and how a refusal is said (no provider knowledge here).

A body is data from the network: a provider module parses it as JSON with :data:`MAX_BODY_BYTES`
as cap, checks it field by field and never renders or evaluates it. A refusal names the field so
the sender's log says what to fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_BODY_BYTES = 64 * 1024  # the documented payloads are < 2 KiB; a form event with many fields stays far below


class PayloadError(ValueError):
    """The body is not a webhook we accept; ``field`` names the culprit, ``status`` the HTTP answer."""

    def __init__(self, field: str, problem: str, status: int = 422) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.status = status


@dataclass(frozen=True)
class WebhookEvent:
    """One event as received: its id (the same on every retry), type, creation time, attempt, data."""

    event_id: int
    event_type: str
    event_create_ts: str
    webhook_id: int
    attempt: int
    sign: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class DeliveryReport:
    """The final status of one message, from an event's data.

    ``group`` is what its asset event is counted under: the campaign id where the payload has
    one (Mobizon), otherwise what the provider module chose (BSG: the sending run's reference
    prefix, events/bsg.py). ``seg_num`` None: the payload does not say.
    """

    campaign_id: int | None
    message_id: int
    seg_num: int | None
    status_update_ts: str
    status: str
    to: str
    group: str | None = None

    @property
    def group_key(self) -> str:
        return self.group if self.group is not None else str(self.campaign_id)


def json_object(body: bytes, not_json: str = "not JSON") -> dict[str, Any]:
    """``body`` as a JSON object, or :class:`PayloadError` (too large, not JSON, nested too deep, not an object)."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadError("body", f"larger than {MAX_BODY_BYTES} bytes", status=413)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise PayloadError("body", not_json, 400) from None
    if not isinstance(doc, dict):
        raise PayloadError("body", "not a JSON object", 400)
    return doc


def connection(conn_id: str) -> Any:
    """The Airflow connection ``conn_id`` (LookupError: none), its secrets masked; the caller checks its type.

    Airflow's own lookup (metadata DB, then secrets backends): the receiver runs in the API server.
    """
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    from airflow_sms_provider.connections import register_connection_secrets

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        raise LookupError(conn_id) from None
    # Every form of its secrets in the API server's masker and in this package's redaction: Airflow
    # masks only the raw value, and only of names it knows.
    register_connection_secrets(conn)
    return conn
