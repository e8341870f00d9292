"""One provider-neutral delivery record: the row every report writes, whatever the provider."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, cast


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


def _record_builder() -> Callable[..., DeliveryRecord]:
    # A frozen dataclass's __init__ sets each field through object.__setattr__ (a name lookup per field):
    # half of a Mobizon record's CPU in a delivery report. This sets the slots through their descriptors
    # instead; same signature and defaults as DeliveryRecord(...), same object (equal, hashable, frozen).
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": DeliveryRecord}
    params, body = [], []
    for i, f in enumerate(fields(DeliveryRecord)):
        scope[f"_set{i}"] = getattr(DeliveryRecord, f.name).__set__
        params.append(f.name if f.default is MISSING else f"{f.name}={f.default!r}")
        body.append(f"    _set{i}(record, {f.name})\n")
    source = f"def new_record(*, {', '.join(params)}):\n    record = _new(_cls)\n{''.join(body)}    return record\n"
    exec(source, scope)  # the source is made of the dataclass's own field names
    return cast("Callable[..., DeliveryRecord]", scope["new_record"])


new_record = _record_builder()
"""``DeliveryRecord(...)`` (keywords only) for the once-per-message paths: about twice as fast."""
