"""One provider-neutral delivery record: the row every report writes, whatever the provider."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One message's outcome.

    ``status`` is the neutral word (``pending``/``running``/``delivered``/``undelivered``/``failed``);
    ``provider_status`` keeps the provider's own. ``recipient`` is the phone as the provider gives it, or its
    salted hash when the report is asked to hash. Timestamps are timezone-aware UTC; unknown values are None.
    """

    provider: str
    campaign_id: str
    message_id: str
    recipient: str
    status: str
    provider_status: str
    parts: int | None = None
    cost: Decimal | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    error_code: str | None = None


# The neutral message statuses a report writes (``DeliveryRecord.status``); a provider's word a hook does not
# know counts as pending, and the provider's own word stays in ``provider_status``.
PENDING, DELIVERED, UNDELIVERED, FAILED = "pending", "delivered", "undelivered", "failed"
MESSAGE_STATUSES: tuple[str, ...] = (PENDING, DELIVERED, UNDELIVERED, FAILED)

COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(DeliveryRecord))
"""The column order every sink writes, also the order of a CSV header."""
