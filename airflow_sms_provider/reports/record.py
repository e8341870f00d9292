"""One provider-neutral delivery record: the row every report writes, whatever the provider."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
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


# The widest values every destination holds: Parquet's int32 parts, SQL's NUMERIC(18, 6) cost.
MAX_PARTS = 2**31 - 1
MAX_COST = Decimal(10) ** 12


def check_listed(record: DeliveryRecord, campaign_id: int | str) -> DeliveryRecord:
    """``record`` as listed for ``campaign_id``, or SmsProtocolError saying what the provider got wrong.

    A listing is the provider's word on which messages a campaign has: an item of another campaign, one
    without an id, or a number no destination can hold would otherwise be written (or collapse into one
    row) without a word. The error names the campaign, the message id and the field, never the phone.
    """
    from airflow_sms_provider.exceptions import SmsProtocolError

    asked = str(campaign_id)
    problem = None
    if record.campaign_id != asked:
        problem = f"is of campaign {record.campaign_id[:40]!r}"
    elif record.message_id in ("", "None"):
        problem = "has no message id"
    elif record.parts is not None and not 0 <= record.parts <= MAX_PARTS:
        problem = f"has parts={record.parts} (expected 0..{MAX_PARTS})"
    elif record.cost is not None and not (record.cost.is_finite() and abs(record.cost) < MAX_COST):
        problem = f"has cost={record.cost} (expected a finite amount below {MAX_COST:,})"
    elif not _encodable(record):
        problem = "has a text that is not valid Unicode (a lone surrogate: bytes that were not UTF-8)"
    if problem is not None:
        raise SmsProtocolError(
            f"{record.provider}: the listing of campaign {asked} holds a message ({record.message_id[:40]!r}) that "
            f"{problem}; nothing of this export was written"
        )
    return record


def _encodable(record: DeliveryRecord) -> bool:
    """Every text of ``record`` can be written as UTF-8 (JSON's ``\\udc80`` escape gives a str that cannot)."""
    texts = (record.campaign_id, record.message_id, record.recipient, record.status, record.provider_status,
             record.error_code or "")  # fmt: skip
    if "".join(texts).isascii():  # the usual case, cheap
        return True
    try:
        "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_CAMPAIGN, _MESSAGE, _PARTS, _COST = (attrgetter(name) for name in ("campaign_id", "message_id", "parts", "cost"))
_TEXTS = tuple(attrgetter(name) for name in ("recipient", "status", "provider_status"))
_ERROR = attrgetter("error_code")


def check_page(records: list[DeliveryRecord], campaign_id: int | str) -> list[DeliveryRecord]:
    """:func:`check_listed` of every record of a page (``records``, returned as they are).

    The page is checked a column at a time with C-level operations (a count, ``in``, a set of the few
    distinct part counts and costs, one ``isascii`` of all its texts); a page that does not pass them all
    is checked record by record, so the error is :func:`check_listed`'s for the first bad record (or none:
    a page of valid non-ASCII texts, say). Never accepts a page the per-record check refuses.
    """
    asked = str(campaign_id)
    try:
        campaigns = list(map(_CAMPAIGN, records))
        messages = list(map(_MESSAGE, records))
        fine = (
            campaigns.count(asked) == len(records)
            and "" not in messages
            and "None" not in messages
            # The same conditions as check_listed's, on each distinct value once (a page has a few).
            and all(0 <= parts <= MAX_PARTS for parts in set(map(_PARTS, records)) - {None})
            and all(cost.is_finite() and abs(cost) < MAX_COST for cost in set(map(_COST, records)) - {None})
            and "".join(campaigns).isascii()
            and "".join(messages).isascii()
            and all("".join(map(get, records)).isascii() for get in _TEXTS)
            and "".join(filter(None, map(_ERROR, records))).isascii()
        )
    except Exception:  # an odd value (unhashable, not a str): the per-record check says what is wrong
        fine = False
    if not fine:
        for record in records:
            check_listed(record, asked)
    return records


def check_count(provider: str, campaign_id: int | str, listed: int, totals: Sequence[int], *, exact: bool) -> None:
    """SmsProtocolError unless the pages of one campaign's listing add up to the total they announced.

    ``totals``: each page's announced total, first page first. ``exact`` (a full listing, where no message
    enters or leaves): every page announces the first page's total and exactly that many items came. A
    filtered listing ("changed since") may grow while it is read, never shrink: at least the first total.
    """
    from airflow_sms_provider.exceptions import SmsProtocolError

    if not totals:
        return
    first = totals[0]
    changed = sorted({t for t in totals if t != first})
    if exact and changed:
        problem = f"its total changed from {first} to {', '.join(map(str, changed))} during the listing"
    elif (listed != first) if exact else (listed < first):
        problem = f"{first} message(s) were announced and {listed} listed (a page answered twice, cut or skipped)"
    else:
        return
    raise SmsProtocolError(
        f"{provider}: the listing of campaign {campaign_id} is inconsistent: {problem}; nothing of this export "
        "was written (a retry reads the campaign again)"
    )
