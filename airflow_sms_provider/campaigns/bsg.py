"""BSG campaign work: an audience split into campaigns of at most 10,000 phones, created
``max_concurrent_creates`` at a time, each recorded as it exists; finding again what earlier
requests created (:func:`settle`), by reference_ids derived from the run and the phone
(``protocols.bsg.auto_reference_id``), so the order the audience is read in does not matter;
and the neutral interface's entry (``BsgHook.campaign_module``).

The operators in :mod:`airflow_sms_provider.operators.bsg` build the parameters below from
their own arguments and run this work; :func:`run_campaign` builds the same parameters for
the provider-neutral operator.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from airflow_sms_provider.campaigns.lease import Lease, fence
from airflow_sms_provider.campaigns.ledger import Digest, Ledger
from airflow_sms_provider.campaigns.reconcile import (
    Expected,
    audience_changed_error,
    bsg_phones,
    check_held_in_audience,
    verify_bsg_found,
)
from airflow_sms_provider.campaigns.run import TaskRuntime, Work, build_params, count, invalid_rows, neutral_summary
from airflow_sms_provider.concurrency import Throttle
from airflow_sms_provider.exceptions import (
    SmsAmbiguousError,
    SmsFatalError,
    SmsProviderError,
    SmsRetryableError,
    SmsValidationError,
)
from airflow_sms_provider.hooks.base import CampaignParams
from airflow_sms_provider.hooks.bsg import BsgHook
from airflow_sms_provider.progress import Checkpoint
from airflow_sms_provider.protocols import bsg as proto
from airflow_sms_provider.recipients import (
    DuplicateReport,
    Recipient,
    RejectReport,
    check_filled_length,
    chunked,
    fill_problem,
    iter_recipients,
    placeholders,
)
from airflow_sms_provider.transport import Request
from airflow_sms_provider.validation import (
    check_choice,
    check_window_once,
    check_window_policy,
    parse_when,
    rescheduled,
    sent_as_now,
    window_passed,
)

_OPTION_FIELDS = ("validity", "tariff_code", "start_at", "callback_url")
# Ours (BSG documents no limit): more creations at once than this is more likely a typo than a plan.
MAX_CONCURRENT_CREATES = 16
# A retry without durable state looks the audience's phones up by reference_id before creating
# anything, one GET each (BSG filters by one id only): at most this many.
RETRY_LOOKUPS = 1000


# ------------------------------------------------------------------ found again by reference_id


class Found:
    """Campaigns of this run found at BSG by reference_id during one try, and the phones they hold.

    Shared by the threads creating chunks: a phone held by a campaign found for one chunk
    is neither looked up nor sent again for another (an earlier try that read the audience
    in another order put phones of several of this try's chunks in one campaign). About 70
    bytes a phone held, paid only when something was found.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.campaigns: dict[int, dict[str, Any]] = {}
        self.phones_of: dict[int, frozenset[int]] = {}
        self.phones: set[int] = set()

    def holds(self, phone: int) -> bool:
        return phone in self.phones

    def add(self, campaign: Mapping[str, Any], phones: Iterable[int]) -> None:
        held = frozenset(phones)
        campaign_id = int(campaign["id"])
        record = {"id": campaign_id, "phones": len(held), "status": campaign.get("status"),
                  "calculated_price": campaign.get("calculated_price"), "currency": campaign.get("currency"),
                  "found": True}  # fmt: skip
        with self._lock:
            self.campaigns[campaign_id] = record
            self.phones_of[campaign_id] = held
            self.phones |= held

    def owner(self, phones: Sequence[int]) -> dict[str, Any] | None:
        """The found campaign holding exactly ``phones`` (a chunk created whole by an earlier request), or None."""
        wanted = frozenset(phones)
        for campaign_id, held in list(self.phones_of.items()):
            if held == wanted:
                return self.campaigns[campaign_id]
        return None

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.campaigns.values()]


def settle(
    hook: Any,
    items: Sequence[dict[str, Any]],
    found: Found,
    *,
    phone_of: Callable[[Mapping[str, Any]], int],
    expect: Callable[[int, Mapping[str, Any] | None], Expected | None],
    index: int,
    full: bool,
    log: Any,
    in_audience: Callable[[int], bool] = lambda phone: True,
) -> tuple[list[dict[str, Any]], bool]:
    """The items of a chunk that no campaign at BSG holds, after looking their reference_ids up.

    Returns them and whether a lookup found a campaign. Each item not held by a campaign
    found already is looked up by its reference_id (``filter[reference_id]``, one GET);
    a hit's campaign is read whole (every phone it holds, of any chunk), verified
    (:func:`verify_bsg_found`: every message this run's, same text and sender) and added
    to ``found``. ``full=False`` (the request may have left, e.g. no answer): stop at the
    first item not found when nothing was found before it (a request is created whole or
    not at all). ``full=True`` (BSG refused a repeated reference_id, without saying which):
    look up every item. ``expect(phone, item)``: what this task gives ``phone`` (``item``:
    the chunk's row for it, None for a phone outside this chunk). A campaign found by ids
    the user gave (not derived from this run) is adopted only when it holds exactly this
    chunk: nothing else says it is this run's. A found campaign holding a
    phone ``in_audience`` says the audience no longer has (a file rewritten between tries)
    stops the task without retry, naming it: the audience changed after something was sent.
    """
    by_phone = {phone_of(item): item for item in items}
    hit = False
    for phone, item in by_phone.items():
        if found.holds(phone):
            hit = True
            continue
        ref = item.get("reference_id")
        if ref is None:
            continue  # nothing to look it up by (the caller refuses chunks that have no reference_ids)
        message = hook.find_message(ref)
        if message is None:
            if not full and not hit:
                break
            continue
        if int(message.get("phone") or 0) != phone:
            raise SmsValidationError(
                f"reference_id {ref!r} already belongs to message {message.get('id')} of campaign "
                f"{message.get('campaign_id')} for another phone: reference_ids must be unique in the account",
                field="reference_id", value=ref,
            )
        campaign_id = int(message["campaign_id"])
        hit = True
        if campaign_id in found.phones_of:
            continue  # read already (the phone was held there: another thread added it meanwhile)
        messages = list(hook.iter_messages(campaign_id))
        phones = verify_bsg_found(campaign_id, messages, lambda p: expect(p, by_phone.get(p)), chunk=index)
        _check_whole_unless_derived(campaign_id, messages, by_phone, expect, index)
        # The one audience rule (campaigns/reconcile.py): a campaign of this run holding a phone the
        # audience no longer has (a file rewritten between tries) stops the task, naming it.
        check_held_in_audience({campaign_id: phones}, lambda p: p in by_phone or in_audience(p),
                               why=f"found by reference_id {ref!r}, created by an earlier try of this run")
        found.add(hook.get_campaign(campaign_id), phones)
        log.info("Chunk %d: reference_id %r is in BSG campaign %s of an earlier request (%d phone(s), verified): "
                 "not sending those phones again", index + 1, ref, campaign_id, len(phones))  # fmt: skip
    return [item for phone, item in by_phone.items() if not found.holds(phone)], hit


def _check_whole_unless_derived(
    campaign_id: int, messages: Sequence[Mapping[str, Any]], by_phone: Mapping[int, Mapping[str, Any]],
    expect: Callable[[int, Mapping[str, Any] | None], Expected | None], index: int,
) -> None:
    """A campaign holding reference_ids the user gave must hold exactly this chunk.

    Ids derived from the run and the phone prove a message is this run's, so a campaign of
    those may hold part of a chunk (an earlier try read the audience in another order). An
    id the user gave (an order id) proves nothing: a later task reusing it would otherwise
    adopt an earlier task's campaign for phones that never got this task's message.
    """
    derived = all((expect(int(m.get("phone") or 0), None) or (None,))[0] == m.get("reference_id") for m in messages)
    held = {int(m.get("phone") or 0) for m in messages}
    if derived or held == set(by_phone):
        return
    missing, extra = len(set(by_phone) - held), len(held - set(by_phone))
    raise SmsFatalError(
        f"chunk {index + 1} ({len(by_phone)} phones): BSG campaign {campaign_id} holds reference_ids of this chunk "
        f"that were given, not derived from this run, but {missing} of the chunk's {len(by_phone)} reference_ids "
        f"are not in it{f' and {extra} of its messages are not of this chunk' if extra else ''}: an earlier run or "
        "another task reusing them. Not adopting it (the phones missing from it would get nothing) and not sending "
        "again (BSG refuses the repeated ids); check that campaign, then give these rows new reference_ids",
        provider="bsg",
    )


# ------------------------------------------------------------------ parameters


@dataclasses.dataclass(kw_only=True)
class BsgAudienceParams:
    """What the bulk and personalised campaign operators share (rendered)."""

    recipients: Any
    number_field: str = "recipient"
    reference_field: str = "reference_id"
    on_invalid: str = "fail"
    reject_report_path: Any = None
    split: bool = True
    chunk_size: Any = proto.MAX_PHONES_PER_CAMPAIGN
    auto_reference_ids: bool = True
    max_reported: int = 20
    max_concurrent_creates: Any = 4
    on_window_passed: str = "fail"
    validity: Any = None
    tariff_code: Any = None
    start_at: Any = None
    transliterate: Any = None
    callback_url: Any = None
    delivery_events: bool = False
    start_at_lateness: Any = proto.START_AT_LATENESS.total_seconds() / 60
    bsg_conn_id: str = BsgHook.default_conn_name


@dataclasses.dataclass(kw_only=True)
class BsgBulkParams(BsgAudienceParams):
    """``BsgBulkCampaignOperator``'s parameters: one text and sender for every phone."""

    text: Any
    sender: Any


@dataclasses.dataclass(kw_only=True)
class BsgIndividualParams(BsgAudienceParams):
    """``BsgIndividualCampaignOperator``'s parameters: a text (template) and sender per row."""

    text: Any = None
    sender: Any = None
    text_field: str = "text"
    sender_field: str = "sender"


class CampaignSettings:
    """Settings every campaign kind shares (validity, tariff, schedule, callback), checked.

    Mixed into the work below and into ``BsgGroupsCampaignOperator``: anything with these
    attributes, a ``log`` and a ``hook()``.
    """

    validity: Any
    tariff_code: Any
    start_at: Any
    callback_url: Any
    delivery_events: bool
    start_at_lateness: Any
    log: Any

    if TYPE_CHECKING:

        def hook(self) -> BsgHook: ...

    def campaign_options(self, ckpt: Checkpoint | None = None, started: bool = False) -> dict[str, Any]:
        """The rendered settings, checked and in BSG's formats (start_at as ``yyyy-mm-dd hh:mm:ss``
        wall time in the connection's ``timezone``).

        ``start_at`` is checked before the first creation only: when ``started`` (durable state
        says an earlier try created or sent something) it is not judged again by a later clock.
        A start_at at most ``start_at_lateness`` minutes in the past at that check means "now".
        """
        tz, lateness = self.zone(), self.lateness()
        if ckpt is None:
            start_at = proto.format_start_at(self.start_at, tz=tz, lateness=lateness)
        else:
            when = check_window_once(ckpt, parse_when(self.start_at, "start_at"), "start_at", started=started,
                                     min_ahead=dt.timedelta(0), max_ahead=proto.START_AT_MAX_AHEAD,
                                     lateness=lateness)  # fmt: skip
            if when is None and self.start_at not in (None, ""):
                self.log.info("start_at=%s is at most %s late: sending now, without start_at", self.start_at, lateness)
            start_at = proto.write_start_at(when, tz)
        return {
            "validity": proto.check_validity(self.validity),
            "tariff_code": proto.check_tariff_code(self.tariff_code),
            "start_at": start_at,
            "callback_url": self._callback_url(),
        }

    def _callback_url(self) -> str | None:
        """``callback_url`` as given, or the SMS events receiver's (``delivery_events=True``)."""
        if not self.delivery_events:
            return proto.check_callback_url(self.callback_url)
        if self.callback_url:
            raise SmsValidationError("set callback_url or delivery_events=True, not both: delivery_events sends "
                                     "BSG's callbacks to the SMS events receiver", field="callback_url")  # fmt: skip
        return self.hook().events_callback_url()

    def zone(self) -> dt.tzinfo:
        """The zone the account reads start_at in: the connection's ``timezone`` extra."""
        return self.hook().settings.timezone

    def lateness(self) -> dt.timedelta:
        minutes = self.start_at_lateness
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes < 0:
            raise SmsValidationError(f"start_at_lateness={minutes!r} must be a number of minutes >= 0",
                                     field="start_at_lateness", value=minutes)  # fmt: skip
        return dt.timedelta(minutes=minutes)


# ------------------------------------------------------------------ audiences


class _Audience:
    """Rows turned into wire items, validated in full before anything is sent.

    ``to_item`` checks one recipient and returns its item (or raises
    :class:`SmsValidationError`); rows it rejects follow ``on_invalid`` like bad numbers.
    """

    def __init__(
        self,
        source: Any,
        to_item: Callable[[Recipient], dict[str, Any]],
        *,
        number_field: str,
        on_invalid: str,
        reject_report_path: Any,
        max_reported: int,
    ) -> None:
        if source is None or source == [] or source == "":
            raise SmsValidationError("recipients is empty: the campaign has no audience", field="recipients",
                                     value=source)
        # A one-shot iterator cannot be read twice: keep it (the check pass needs it whole).
        self.source = list(source) if isinstance(source, Iterator) else source
        self.to_item, self.number_field, self.on_invalid = to_item, number_field, on_invalid
        self.report = RejectReport(cap=max_reported, path=reject_report_path or None)
        self.duplicates = DuplicateReport(cap=max_reported)

    def _items(self, report: RejectReport, duplicates: DuplicateReport | None = None) -> Iterator[dict[str, Any]]:
        seen_refs: set[str] = set()
        recipients = iter_recipients(
            self.source, number_field=self.number_field, on_invalid=self.on_invalid, report=report,
            min_digits=proto.PHONE_MIN_DIGITS, max_digits=proto.PHONE_MAX_DIGITS,
            duplicates=duplicates if duplicates is not None else DuplicateReport(cap=0),
        )  # fmt: skip
        for recipient in recipients:
            try:
                item = self.to_item(recipient)
                ref = item.get("reference_id")
                if ref is not None:
                    if ref in seen_refs:
                        raise SmsValidationError(f"reference_id {ref!r} is used by an earlier row",
                                                 field="reference_id", value=ref)
                    seen_refs.add(ref)
            except SmsValidationError as err:
                if self.on_invalid != "skip":
                    raise SmsValidationError(f"recipients row {recipient.row}: {err}", field=err.field,
                                             value=recipient.row) from None
                # The estimate's words for a row the text cannot be filled with (_Unfillable), so both agree.
                report.add(recipient.row, recipient.raw, getattr(err, "reason", None) or str(err))
                continue
            yield item

    def check(self, phone_of: Callable[[Mapping[str, Any]], int] | None = None) -> int:
        """Pass 1: validate every row (rejected ones go to the report); the number of valid rows.

        With ``phone_of``, also digests the valid phones (``self.digest``, in any order the same).
        """
        digest = self.digest = Digest()
        try:
            if phone_of is None:
                count = sum(1 for _ in self._items(self.report, self.duplicates))
            else:
                for item in self._items(self.report, self.duplicates):
                    digest.add(phone_of(item))
                count = digest.count
        finally:
            self.report.close()
        if count == 0:
            raise SmsValidationError(
                f"recipients: no valid row ({self.report.count} rejected)", field="recipients", value=0
            )
        return count

    def items(self) -> Iterator[dict[str, Any]]:
        """Pass 2: the same items again (rejected rows skipped silently: they are reported already)."""
        return self._items(RejectReport(cap=0))


def _run_key(context: Any, operator: Any) -> tuple[str, ...]:
    """What identifies this task run across its tries (not the try number); ``operator``: the work
    (its dag_id and task_id, used when the context has no task instance)."""
    ti = context.get("ti") if isinstance(context, Mapping) else None
    if ti is None:
        return (operator.dag_id or "", operator.task_id, "no-run")
    return (ti.dag_id, ti.task_id, str(ti.run_id), str(getattr(ti, "map_index", -1)))


def _unfindable(index: int, why: str) -> SmsFatalError:
    """The error for a chunk that may exist but cannot be looked up (its rows have no reference_id)."""
    return SmsFatalError(
        f"chunk {index + 1}: {why}; its rows carry no reference_id to look the campaign up by, so it may exist. "
        "Check the BSG account's campaigns, then clear this task to send again (auto_reference_ids=True lets "
        "a retry find it instead)",
        provider=proto.PROVIDER,
    )


class _CampaignBook:
    """The campaigns of a split audience, kept in the task's durable state by chunk position.

    ``campaigns``: one record per created chunk (``chunk``, ``id``, ``phones``, ``status``,
    price), in chunk order whatever order they were created in; ``pending``: the chunks
    whose request may have left without its answer being recorded (a retry looks those up
    by reference_id before creating them). Written by the operator's own thread only.
    """

    def __init__(self, ckpt: Checkpoint) -> None:
        self.ckpt = ckpt
        # Records written before concurrency have no "chunk": they were created in order.
        self.created = {int(r.get("chunk", i)): {**r, "chunk": int(r.get("chunk", i))}
                        for i, r in enumerate(ckpt.get("campaigns") or [])}  # fmt: skip
        pending = ckpt.get("pending")
        # Before concurrency "pending" was one chunk (or None).
        earlier = pending if isinstance(pending, list) else [] if pending is None else [pending]
        self.earlier_pending = {int(i) for i in earlier} - set(self.created)
        self.pending = set(self.earlier_pending)
        # What each chunk that left holds (count, digest of its phones, first reference_id),
        # by chunk position: how a retry tells a reordered or changed audience from the same one.
        self.contents: dict[int, dict[str, Any]] = {int(k): v for k, v in (ckpt.get("contents") or {}).items()}
        # Campaigns found at BSG by reference_id (an earlier request's, verified), by id: they may
        # hold phones of several chunks, so a retry reconciles by content instead of by position.
        self.adopted: dict[int, dict[str, Any]] = {int(r["id"]): dict(r) for r in ckpt.get("adopted") or []}

    def begin(self, index: int, content: dict[str, Any] | None = None) -> bool:
        """Mark chunk ``index`` pending before its request leaves; True if an earlier try may have sent it."""
        self.pending.add(index)
        if content is not None and index not in self.earlier_pending:
            self.contents[index] = content
        self._save()
        return index in self.earlier_pending

    def forget(self, index: int) -> None:
        """An earlier try's pending chunk that BSG does not hold: its phones are sent again in other chunks."""
        self.pending.discard(index)
        self.earlier_pending.discard(index)
        self.contents.pop(index, None)
        self._save()

    def describe(self) -> str | None:
        """What earlier tries created, for an error message; None if nothing."""
        parts = []
        records = self.records()
        if records:
            ids = ", ".join(str(r["id"]) for r in records[:10])
            phones = sum(int(r.get("phones") or 0) for r in records)
            parts.append(f"BSG campaign(s) {ids}{' …' if len(records) > 10 else ''} hold {phones:,} of its phones")
        if self.earlier_pending:
            chunks = ", ".join(str(i + 1) for i in sorted(self.earlier_pending))
            parts.append(f"chunk(s) {chunks} may have been created")
        return " and ".join(parts) or None

    def done(self, index: int, phones: int, campaign: Mapping[str, Any]) -> None:
        self.created[index] = {"chunk": index, "id": int(campaign["id"]), "phones": phones,
                               "status": campaign.get("status"), "calculated_price": campaign.get("calculated_price"),
                               "currency": campaign.get("currency")}  # fmt: skip
        self.pending.discard(index)
        self._save()

    def adopt(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Campaigns found again by reference_id (verified): recorded so a retry reads them back."""
        new = {int(r["id"]): dict(r) for r in records if int(r["id"]) not in self.adopted}
        if new:
            self.adopted.update(new)
            self._save()

    def covered(self, index: int) -> None:
        """Every phone of chunk ``index`` is in adopted campaigns: nothing of it is in flight."""
        self.pending.discard(index)
        self.earlier_pending.discard(index)
        self._save()

    def refused(self, index: int) -> None:
        """BSG refused chunk ``index`` outright (nothing created): a retry may create it, no lookup needed."""
        if index not in self.earlier_pending:  # an earlier try's request may still have gone through
            self.pending.discard(index)
            self._save()

    def records(self) -> list[dict[str, Any]]:
        """Every campaign holding the task's phones: the chunks' own, then those found again (once each)."""
        own = [self.created[i] for i in sorted(self.created)]
        ids = {int(r["id"]) for r in own}
        return own + [r for i, r in sorted(self.adopted.items()) if i not in ids]

    def _save(self) -> None:
        self.ckpt.save(campaigns=[self.created[i] for i in sorted(self.created)], pending=sorted(self.pending),
                       contents={str(k): v for k, v in sorted(self.contents.items())},
                       adopted=[self.adopted[i] for i in sorted(self.adopted)])  # fmt: skip


# ------------------------------------------------------------------ the audience campaigns


class BsgAudienceWork(CampaignSettings, Work):
    """The bulk and personalised campaigns' work: audience reading, splitting, crash-safe creation."""

    checkpoint_key = "bsg_campaigns"
    _lease: Lease | None = None  # the running try's lease (campaigns/lease.py)
    _found: Found = Found()  # replaced by each try's own (_send_chunks)
    _prefix: str | None = None
    _try_number: int | None = None
    _reread: Callable[[], Iterable[dict[str, Any]]] | None = None
    _audience_phones: set[int] | None = None
    _audience_lock = threading.Lock()

    params: BsgAudienceParams

    def hook(self) -> BsgHook:
        return BsgHook(self.bsg_conn_id)

    # ------------------------------------------------------------ subclass hooks

    def to_item(self, recipient: Recipient) -> dict[str, Any]:
        raise NotImplementedError

    def build(self, items: Sequence[Mapping[str, Any]], options: Mapping[str, Any]) -> Request:
        raise NotImplementedError

    def phone_of(self, item: Mapping[str, Any]) -> int:
        raise NotImplementedError

    def check_settings(self) -> None:
        """Validate the operator-level settings (text, sender...) before reading rows."""

    # ------------------------------------------------------------ shared steps

    def _reference(self, recipient: Recipient) -> str | None:
        value = recipient.params.get(self.reference_field)
        return proto.check_reference_id(value, self.reference_field) if value not in (None, "") else None

    def _check_concurrency(self) -> int:
        """The rendered ``max_concurrent_creates`` as a whole number from 1 to 16."""
        value = self.max_concurrent_creates
        try:
            bound = int(str(value).strip()) if not isinstance(value, (bool, float)) else 0
        except ValueError:
            bound = 0
        if not 1 <= bound <= MAX_CONCURRENT_CREATES:
            raise SmsValidationError(
                f"max_concurrent_creates={value!r} must be a whole number from 1 (one campaign after the "
                f"other) to {MAX_CONCURRENT_CREATES}",
                field="max_concurrent_creates", value=value,
            )
        return bound

    def _check_chunking(self, count: int) -> int:
        """How many campaigns ``count`` phones make; an error when splitting is off and needed."""
        if not isinstance(self.chunk_size, int) or not 1 <= self.chunk_size <= proto.MAX_PHONES_PER_CAMPAIGN:
            raise SmsValidationError(
                f"chunk_size={self.chunk_size!r} must be 1 to {proto.MAX_PHONES_PER_CAMPAIGN}",
                field="chunk_size", value=self.chunk_size,
            )
        campaigns = -(-count // self.chunk_size)
        if campaigns > 1 and not self.split:
            raise SmsValidationError(
                f"recipients: {count} valid phones need {campaigns} campaigns (BSG takes at most "
                f"{self.chunk_size} per campaign here) and split=False; set split=True to send them as "
                "several campaigns, or reduce the audience",
                field="recipients", value=count,
            )
        return campaigns

    def run(self) -> dict[str, Any]:
        """The summary: every campaign holding the audience's phones, counts, price, start_at."""
        context = self.runtime.context
        check_choice(self.on_invalid, ("fail", "skip"), "on_invalid")
        policy = check_window_policy(self.on_window_passed)
        self.check_settings()
        bound = self._check_concurrency()
        ckpt = Checkpoint(context, self.checkpoint_key)
        ti = context.get("ti") if isinstance(context, Mapping) else None
        self._try_number = getattr(ti, "try_number", None)
        started = bool(ckpt.get("campaigns") or ckpt.get("pending"))  # an earlier try created or sent chunks
        options = self.campaign_options(ckpt, started)
        audience = _Audience(
            self.recipients, self.to_item, number_field=self.number_field, on_invalid=self.on_invalid,
            reject_report_path=self.reject_report_path, max_reported=self.max_reported,
        )  # fmt: skip
        count = audience.check(self.phone_of)
        planned = self._check_chunking(count)
        self.log.info("%d valid recipients (%d rejected): %d campaign(s)", count, audience.report.count, planned)
        audience.duplicates.log_line(self.log)
        prefix = proto.reference_prefix(*_run_key(context, self)) if self.auto_reference_ids else None
        hook = self.hook()
        lease: Lease | None = None
        try:
            # A retry whose audience holds other phones than the earlier try's stops here, naming its campaigns.
            self._check_audience(hook, ckpt, audience.digest, audience.items)
            if started:
                options = self._window_policy(ckpt, options, policy, planned)
            # Fence overlapping tries: another live try's creations are waited for, then looked up
            # by reference_id; without reference_ids nothing can be looked up, so a busy lease is fatal.
            lease, waited = fence(context, self.checkpoint_key, hook, self.log, provider=proto.PROVIDER,
                                  lookup=self.auto_reference_ids)
            if waited:
                ckpt = Checkpoint(context, self.checkpoint_key)  # what the other try recorded meanwhile
                # ... with the audience it read: checked again, the check above saw the state before the wait.
                self._check_audience(hook, ckpt, audience.digest, audience.items)
        except Exception:
            if lease is not None:
                lease.release()
            hook.close()
            raise
        self._lease = lease
        try:
            campaigns = self._send_all(hook, audience.items(), options, prefix, ckpt, min(bound, planned),
                                       reread=audience.items)
        finally:
            lease.release()
            self._lease = None
            hook.close()
        summary = self._summary(campaigns, count, audience.report, prefix, options)
        summary["audience_duplicates"] = audience.duplicates.summary()
        # A split audience links its first campaign (the summary lists them all).
        self.runtime.persist_link(self.bsg_conn_id, summary)
        return summary

    def _check_audience(self, hook: BsgHook, ckpt: Checkpoint, digest: Digest,
                        reread: Callable[[], Iterable[dict[str, Any]]]) -> None:
        """Compare the audience read now with the one recorded; a change after anything left stops the task.

        The stop names what exists at BSG, read back rather than recorded: every campaign
        earlier tries created or found (id, phones held, how many the audience no longer
        has, masked examples), and the campaign of any chunk left pending (looked up by its
        first reference_id). A pending chunk BSG does not hold is forgotten, and when nothing
        exists the new audience is simply this task's audience. When BSG cannot be read the
        stop names what the record says.
        """
        ledger, book = Ledger(ckpt), _CampaignBook(ckpt)
        sent, before = book.describe(), ledger.audience
        if before is None or before == digest or not sent:
            ledger.check_audience(digest, sent=sent, provider=proto.PROVIDER)  # records it
            return
        why = f"an earlier try read {before.describe()}, this one {digest.describe()}"
        try:
            held, unsure = self._held_by_earlier(hook, book)
        except Exception as err:  # the record's own description, and why it says no more
            try:
                ledger.check_audience(digest, sent=sent, provider=proto.PROVIDER)
            except SmsFatalError as fatal:
                fatal.args = (f"{fatal.args[0]} (BSG could not be read back to name the phones: "
                              f"{type(err).__name__}: {str(err)[:200]})", *fatal.args[1:])  # fmt: skip
                raise fatal from err
            raise
        if not held and not unsure:
            for index in sorted(book.earlier_pending):
                book.forget(index)  # never created: nothing of the earlier audience is at BSG
            ledger.check_audience(digest, sent=None, provider=proto.PROVIDER)
            return
        phones = {self.phone_of(item) for item in reread()}
        raise audience_changed_error(held, phones.__contains__, why=why, unsure=unsure)

    def _held_by_earlier(self, hook: BsgHook, book: _CampaignBook) -> tuple[dict[int, list[int]], str | None]:
        """What BSG holds of earlier tries (campaign id -> phones) and what may exist besides, or None."""
        held = {int(r["id"]): bsg_phones(hook, int(r["id"])) for r in book.records()}
        unsure = []
        for index in sorted(book.earlier_pending):
            probe = (book.contents.get(index) or {}).get("probe")
            if not probe:
                unsure.append(f"chunk {index + 1} may have been created (no reference_id to look it up by)")
                continue
            message = hook.find_message(probe)
            if message is not None:  # created whole or not at all: its campaign holds the chunk
                campaign_id = int(message["campaign_id"])
                held.setdefault(campaign_id, bsg_phones(hook, campaign_id))
        return held, "; ".join(unsure) or None

    def _window_policy(self, ckpt: Checkpoint, options: dict[str, Any], policy: str, planned: int
                       ) -> dict[str, Any]:
        """Resuming after start_at has passed with chunks still to create: ``on_window_passed``."""
        when = parse_when(self.start_at, "start_at")
        created = ckpt.get("campaigns") or []
        if sent_as_now(ckpt) or not window_passed(when) or len(created) >= planned:
            return options
        assert when is not None
        if policy == "fail":
            ids = [c.get("id") for c in created]
            phones = sum(int(c.get("phones") or 0) for c in created)
            raise SmsFatalError(
                f"start_at={when.isoformat()} has passed while this task was sending: BSG campaign(s) {ids} "
                f"({phones} phones) were created by an earlier try and are scheduled, but "
                f"{planned - len(created)} chunk(s) of the audience are not created. on_window_passed='fail': "
                "not sending them late. Set on_window_passed='send_now' (or 'keep_offset') and clear this task to "
                "send the rest; the created campaigns are found again, not repeated",
                provider=proto.PROVIDER,
            )
        moved = rescheduled(ckpt, when, policy)
        self.log.warning("start_at=%s has passed with %d chunk(s) still to create: on_window_passed=%r, "
                         "creating them with start_at=%s", when.isoformat(), planned - len(created), policy,
                         moved.isoformat() if moved else "now")
        return {**options, "start_at": proto.write_start_at(moved, self.zone())}

    def _send_all(
        self, hook: BsgHook, items: Iterable[dict[str, Any]], options: Mapping[str, Any], prefix: str | None,
        ckpt: Checkpoint, bound: int = 1, reread: Callable[[], Iterable[dict[str, Any]]] | None = None,
    ) -> list[dict[str, Any]]:
        """One campaign per chunk, up to ``bound`` created at once; chunks an earlier try made are not made again.

        A retry skips an earlier try's chunks by position only when this read's chunk at that
        position holds the same phones (``reread`` reads the audience for that check).
        Otherwise it asks BSG which phones the earlier campaigns hold and sends the others in
        new chunks (new positions, so new reference_ids).
        """
        book = _CampaignBook(ckpt)
        try:
            return self._send_chunks(hook, book, items, options, prefix, bound, reread)
        except SmsFatalError as err:
            # No retry follows: the message must say what is at BSG already (a revoked key half-way).
            with contextlib.suppress(Exception):  # best effort: the error below must still be raised
                book.adopt(self._found.records())
            made = book.describe()
            if made and made not in str(err):
                err.args = (f"{err.args[0] if err.args else err}. Already at BSG: {made}", *err.args[1:])
            if not ckpt.durable and self._try_number != 1 and prefix is not None:
                # Nothing shared between tries (Airflow < 3.3): campaigns of earlier tries that this
                # one never looked up may exist; say how to find them.
                err.args = (f"{err.args[0] if err.args else err}. Without durable task state this try cannot tell "
                            "what earlier tries sent: campaigns of this run may exist at BSG (their messages' "
                            f"reference_ids start with {prefix!r})", *err.args[1:])  # fmt: skip
            raise

    def _send_chunks(
        self, hook: BsgHook, book: _CampaignBook, items: Iterable[dict[str, Any]], options: Mapping[str, Any],
        prefix: str | None, bound: int, reread: Callable[[], Iterable[dict[str, Any]]] | None,
    ) -> list[dict[str, Any]]:
        """The body of :meth:`_send_all`."""
        self._refused: set[int] = set()  # chunks BSG refused outright; added to by worker threads
        self._found, self._prefix = Found(), prefix  # campaigns found again by reference_id in this try
        self._reread, self._audience_phones, self._audience_lock = reread, None, threading.Lock()
        if book.created:
            self.log.info("Resuming: %d campaign(s) were created by an earlier try", len(book.created))
        sent: set[int] | None = None
        first = 0
        if (book.created or book.earlier_pending or book.adopted) and reread is not None and (
            book.adopted or not self._same_chunks(reread(), book)
        ):
            sent, first = self._reconcile(hook, book)
        if not book.ckpt.durable and (self._try_number or 1) > 1 and prefix is not None and reread is not None:
            self._look_up_earlier(hook, reread, prefix)
        jobs = self._chunks(items, prefix, book, sent, first)
        if bound <= 1:
            for index, chunk in jobs:  # one after the other, in this thread: the behaviour before concurrency
                maybe_sent = book.begin(index, self._content(chunk))
                try:
                    campaign = self._create_once(hook, index, chunk, options, maybe_sent)
                except Exception:
                    if index in self._refused:
                        book.refused(index)
                    raise
                self._created(book, index, chunk, campaign)
        else:
            self._create_concurrently(hook, jobs, options, book, bound)
        return book.records()

    def _look_up_earlier(self, hook: BsgHook, reread: Callable[[], Iterable[dict[str, Any]]], prefix: str) -> None:
        """A retry without durable state: find earlier tries' campaigns before creating anything.

        BSG's message listing filters by one reference_id only (no prefix, no list), so the
        audience's phones are looked up one GET each by the id derived from the run and the
        phone, skipping phones held by a campaign found already: a campaign found costs one
        lookup and a read of its messages, a phone never sent one lookup. Found campaigns
        are verified and checked against the audience read now (a phone it holds that the
        audience no longer has stops the task before anything is created) and their phones
        are not sent again. At most :data:`RETRY_LOOKUPS` lookups: past that, BSG's refusal
        of a repeated reference_id still keeps every phone from going out twice, but a
        removed phone may be noticed only after other chunks were created.
        """
        lookups = 0
        for item in reread():
            phone = self.phone_of(item)
            if self._found.holds(phone):
                continue
            if lookups >= RETRY_LOOKUPS:
                self.log.info("Retry without durable state: %d reference_id lookups made (the bound); the other "
                              "phones are settled if BSG refuses their ids", lookups)  # fmt: skip
                return
            lookups += 1
            item.setdefault("reference_id", proto.auto_reference_id(prefix, phone))
            self._settle(hook, 0, [item], full=True)
        found = self._found.records()
        self.log.info("Retry without durable state: %d reference_id lookup(s) found %d campaign(s) of earlier tries "
                      "holding %d phone(s)", lookups, len(found), sum(r["phones"] for r in found))  # fmt: skip

    def _same_chunks(self, items: Iterable[dict[str, Any]], book: _CampaignBook) -> bool:
        """Whether this read's chunks at the positions earlier tries sent hold the phones they recorded."""
        wanted = set(book.created) | book.earlier_pending
        for index, chunk in enumerate(chunked(items, self.chunk_size)):
            if index in wanted:
                recorded = Digest.load(book.contents.get(index))
                if recorded is None and index in book.created:
                    continue  # recorded before content tracking: trusted by position, as it was written
                if recorded is None or recorded != Digest.of(self.phone_of(item) for item in chunk):
                    self.log.warning("Chunk %d of this read is not the chunk %d an earlier try sent: the audience "
                                     "came back in another order", index + 1, index + 1)  # fmt: skip
                    return False
                wanted.discard(index)
                if not wanted:
                    return True
        return not wanted

    def _reconcile(self, hook: BsgHook, book: _CampaignBook) -> tuple[set[int], int]:
        """The phones BSG holds in the campaigns earlier tries made, and the first chunk position still unused.

        Each recorded campaign's messages are read back and must be the phones recorded for
        it; an earlier try's unanswered chunk is looked up by its first reference_id. About
        70 bytes of memory a phone (a ``set`` of ints), paid only on such a resume.
        """
        sent: set[int] = set()
        held: dict[int, list[int]] = {}  # campaign id -> the phones BSG says it holds
        for index, record in sorted(book.created.items()):
            phones = held[int(record["id"])] = bsg_phones(hook, int(record["id"]))
            self._check_held(index, int(record["id"]), phones, book)
            sent.update(phones)
        for index in sorted(book.earlier_pending):
            probe = (book.contents.get(index) or {}).get("probe")
            if not probe:
                raise _unfindable(index, "an earlier try sent it and recorded no answer")
            message = hook.find_message(probe)
            if message is None:
                self.log.info("Chunk %d of an earlier try is not at BSG (%r not found): its phones go again",
                              index + 1, probe)  # fmt: skip
                book.forget(index)
                continue
            campaign = hook.get_campaign(int(message["campaign_id"]))
            phones = held[int(campaign["id"])] = bsg_phones(hook, int(campaign["id"]))
            self._check_held(index, int(campaign["id"]), phones, book)
            book.done(index, len(phones), campaign)
            sent.update(phones)
        for campaign_id in sorted(set(book.adopted) - set(held)):
            sent.update(held.setdefault(campaign_id, bsg_phones(hook, campaign_id)))  # verified when found
        # The record says what each campaign held for the audience of its try; the audience read
        # now decides (the same rule as for campaigns found by reference_id, campaigns/reconcile.py).
        check_held_in_audience(held, self._in_audience, why="read back from BSG by campaign id")
        first = max([*book.created, *book.pending, *book.contents, -1]) + 1
        self.log.info("Resuming by content: BSG holds %d phone(s) in %d campaign(s) of earlier tries; sending the "
                      "audience's other phones from chunk %d on", len(sent), len(book.created), first + 1)
        return sent, first

    def _check_held(self, index: int, campaign_id: int, phones: list[int], book: _CampaignBook) -> None:
        recorded = Digest.load(book.contents.get(index))
        if recorded is None or recorded == Digest.of(phones):
            return
        if len(phones) < recorded.count:
            # Fewer than sent: BSG may keep no message for a phone it refused. The phones it does
            # not hold are sent again in a new chunk (a refused phone is refused again).
            self.log.warning("BSG campaign %s (chunk %d) holds %d of the %d phones recorded for it", campaign_id,
                             index + 1, len(phones), recorded.count)  # fmt: skip
            return
        raise SmsFatalError(
            f"BSG campaign {campaign_id} (chunk {index + 1} of an earlier try) holds {len(phones):,} phones, not "
            f"the {recorded.count:,} recorded for it: not resuming (it could send some phones twice). "
            f"Earlier campaigns: {book.describe()}; check them, then clear this task's state",
            provider=proto.PROVIDER,
        )

    def _chunks(
        self, items: Iterable[dict[str, Any]], prefix: str | None, book: _CampaignBook,
        sent: set[int] | None = None, first: int = 0,
    ) -> Iterator[tuple[int, list[dict[str, Any]]]]:  # fmt: skip
        """The chunks still to create, built one at a time (with their reference_ids) as they are asked for.

        With ``sent`` (a resume by content): the phones not in it, in chunks numbered from ``first``.
        """
        if sent is not None:
            items = (item for item in items if self.phone_of(item) not in sent)
        for index, chunk in enumerate(chunked(items, self.chunk_size), start=first):
            if sent is None and index in book.created:
                continue
            if self._lease is not None:
                self._lease.renew()  # this try is alive: its next creation may take a request's time
            if prefix is not None:
                for item in chunk:
                    item.setdefault("reference_id", proto.auto_reference_id(prefix, self.phone_of(item)))
            yield index, chunk

    def _created(self, book: _CampaignBook, index: int, chunk: list[dict[str, Any]],
                 made: tuple[Mapping[str, Any] | None, int]) -> None:
        """Record what chunk ``index`` became: its campaign (of ``phones`` phones), and any found again."""
        campaign, phones = made
        found = self._found.records()
        if found:
            book.adopt(found)
        if campaign is None:
            book.covered(index)  # every phone of it is held by campaigns found again
            self.log.info("Chunk %d (%d phones): every phone is in a campaign of an earlier request, none created",
                          index + 1, len(chunk))  # fmt: skip
            return
        book.done(index, phones, campaign)  # recorded before anything else: a retry skips this chunk
        self.log.info("Created BSG campaign %s (chunk %d of the audience, %d phones)",
                      campaign["id"], index + 1, phones)  # fmt: skip

    def _create_concurrently(
        self, hook: BsgHook, jobs: Iterator[tuple[int, list[dict[str, Any]]]], options: Mapping[str, Any],
        book: _CampaignBook, bound: int,
    ) -> None:
        """Create the chunks' campaigns with at most ``bound`` in flight (and in memory).

        Only this thread reads the audience and writes the durable state: a chunk is marked
        pending before it is handed to a worker and recorded when its answer comes back, in
        whatever order. After a chunk fails no new one starts, but those in flight finish and
        are recorded; then the first error is raised (a retry creates only what is missing).
        """
        throttle = Throttle(bound)
        hook.get_conn()  # client, session and token made once, before the workers share them
        hook.retry_sleep = throttle.pause
        running: dict[Future[tuple[dict[str, Any] | None, int]], tuple[int, list[dict[str, Any]]]] = {}
        errors: list[BaseException] = []

        def work(index: int, chunk: list[dict[str, Any]], maybe_sent: bool) -> tuple[dict[str, Any] | None, int]:
            with throttle.slot():
                return self._create_once(hook, index, chunk, options, maybe_sent)

        def collect(finished: Iterable[Future[tuple[dict[str, Any] | None, int]]]) -> None:
            for future in finished:
                index, chunk = running.pop(future)
                error = future.exception()
                if error is None:
                    self._created(book, index, chunk, future.result())
                else:
                    self.log.error("Chunk %d (%d phones) failed: %s", index + 1, len(chunk), error)
                    if index in self._refused:
                        book.refused(index)
                    errors.append(error)

        pool = ThreadPoolExecutor(max_workers=bound, thread_name_prefix="bsg-create")
        try:
            for index, chunk in jobs:
                maybe_sent = book.begin(index, self._content(chunk))  # durable before the request can leave
                running[pool.submit(work, index, chunk, maybe_sent)] = (index, chunk)
                del chunk  # held by ``running`` only: at most ``bound`` chunks in memory
                collect([f for f in running if f.done()])
                if len(running) >= bound:
                    collect(wait(running, return_when=FIRST_COMPLETED).done)
                if errors:
                    break
            while running:
                collect(wait(running, return_when=FIRST_COMPLETED).done)
        except BaseException:
            throttle.close()  # the task is ending: chunks still waiting for a slot are not sent
            pool.shutdown(wait=True)
            with contextlib.suppress(Exception):  # best effort; pending marks make a retry look them up
                collect([f for f in list(running) if f.done() and not f.cancelled()])
            raise
        finally:
            pool.shutdown(wait=True)
            hook.retry_sleep = time.sleep
        if throttle.cuts:
            self.log.info("BSG asked to slow down %d time(s); %d creation(s) ran at once at most",
                          throttle.cuts, throttle.peak)  # fmt: skip
        if errors:
            raise errors[0]

    def _create_once(
        self, hook: BsgHook, index: int, chunk: list[dict[str, Any]], options: Mapping[str, Any], maybe_sent: bool
    ) -> tuple[dict[str, Any] | None, int]:
        """Create the campaign of one chunk's phones that no campaign at BSG holds yet.

        Returns it (None when every phone is held already) and how many phones it holds.
        ``maybe_sent``: an earlier try sent this chunk and recorded no answer. The caller has
        marked the chunk pending in the durable state before calling. What exists is found by
        reference_id and verified before it is adopted (campaigns/bsg.py, :func:`settle`).
        """
        probe = chunk[0].get("reference_id")
        if maybe_sent and not probe:
            raise _unfindable(index, "an earlier try sent it and recorded no answer")
        remaining = [item for item in chunk if not self._found.holds(self.phone_of(item))]
        if maybe_sent and remaining:
            remaining = self._settle(hook, index, remaining, full=False)[0]
        # Twice at most: a refusal of repeated reference_ids is followed by a lookup of every
        # phone, so a second refusal means BSG holds ids it does not show yet.
        for attempt in range(2):
            if not remaining:
                owner = self._found.owner([self.phone_of(item) for item in chunk])
                return owner, len(chunk) if owner is not None else 0  # found whole: the chunk's own campaign
            try:
                return hook.call(self.build(remaining, options), proto.parse_object), len(remaining)
            except (SmsAmbiguousError, proto.BsgDuplicateRequestError) as err:
                if not remaining[0].get("reference_id"):
                    # Nothing to look it up by: a retry would send the chunk again (durable state or not).
                    raise _unfindable(index, str(err)) from err
                duplicate = isinstance(err, proto.BsgDuplicateRequestError)
                left, hit = self._settle(hook, index, remaining, full=duplicate)
                if not hit or (duplicate and attempt and len(left) == len(remaining)):
                    if duplicate:
                        # BSG says it has these ids but none is visible yet: a later try will find them.
                        raise SmsProviderError(
                            f"{err}; none of the chunk's {len(remaining)} reference_id(s) is visible yet "
                            f"(first {remaining[0]['reference_id']!r}), retry later",
                            provider=proto.PROVIDER, code=err.code,
                        ) from err
                    raise
                self.log.warning("%s; %d of the chunk's %d phone(s) are in campaigns already, sending the other %d",
                                 err, len(chunk) - len(left), len(chunk), len(left))  # fmt: skip
                remaining = left
            except (SmsRetryableError, SmsFatalError):
                # A definite refusal (rate limit after every retry, 422, credentials, a connection
                # that never left): nothing was created, so the chunk is not left pending.
                self._refused.add(index)
                raise
        raise SmsProviderError(
            f"chunk {index + 1}: BSG refused {len(remaining)} phone(s) as repeated reference_ids that no lookup "
            "finds yet; retry later", provider=proto.PROVIDER,
        )

    def _settle(self, hook: BsgHook, index: int, items: Sequence[dict[str, Any]], *, full: bool
                ) -> tuple[list[dict[str, Any]], bool]:
        return settle(hook, items, self._found, phone_of=self.phone_of, expect=self._expect, index=index, full=full,
                      log=self.log, in_audience=self._in_audience)  # fmt: skip

    def _in_audience(self, phone: int) -> bool:
        """Whether this try's audience holds ``phone``: a set of its phones built on first use (only
        when a campaign found again holds phones outside the chunk at hand; ~70 bytes a phone)."""
        if self._reread is None:
            return True
        with self._audience_lock:
            if self._audience_phones is None:
                self._audience_phones = {self.phone_of(item) for item in self._reread()}
        return phone in self._audience_phones

    def _expect(self, phone: int, item: Mapping[str, Any] | None) -> Expected | None:
        """What this task gives ``phone``: (reference_id, text, sender); None: no phone of this task's."""
        if item is not None:
            _, text, sender = self.expected_of(item)
            return item.get("reference_id"), text, sender
        if self._prefix is None:
            return None  # without auto ids a phone outside the chunk cannot be told ours
        _, text, sender = self.expected_outside(phone)
        return proto.auto_reference_id(self._prefix, phone), text, sender

    def expected_outside(self, phone: int) -> tuple[int, str | None, str | None]:
        """(phone, text, sender) of a message this task sends ``phone`` when its row is not at hand."""
        return phone, None, None

    def _content(self, chunk: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """What a chunk holds, for the durable record: count, digest of its phones, first reference_id."""
        return {**Digest.of(self.phone_of(item) for item in chunk).dump(), "probe": chunk[0].get("reference_id")}

    def expected_of(self, item: Mapping[str, Any]) -> tuple[int, str | None, str | None]:
        """(phone, text, sender) a message made from ``item`` holds; None: not compared."""
        return self.phone_of(item), None, None

    def _summary(
        self, campaigns: list[dict[str, Any]], count: int, report: RejectReport, prefix: str | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        prices = [c["calculated_price"] for c in campaigns if isinstance(c.get("calculated_price"), (int, float))]
        return {
            "campaign_ids": [c["id"] for c in campaigns],
            "campaigns": campaigns[: self.max_reported],
            "phones": count,
            "invalid": report.summary(),
            "calculated_price": round(sum(prices), 6) if prices else None,
            "currency": next((c["currency"] for c in campaigns if c.get("currency")), None),
            "start_at": options.get("start_at"),
            "reference_prefix": prefix,
        }


class BsgBulkWork(BsgAudienceWork):
    """One text to every phone (``sms/send-bulk``)."""

    params: BsgBulkParams
    checkpoint_key = "bsg_bulk"

    def check_settings(self) -> None:
        self._text = proto.check_message_text(self.text)
        self._sender = proto.check_sender(self.sender)

    def to_item(self, recipient: Recipient) -> dict[str, Any]:
        if recipient.params:  # values the one text cannot hold are refused, as every provider does
            problem = fill_problem(self._text, recipient.params, own_columns=(self.reference_field,))
            if problem is not None:
                raise _Unfillable(problem, reason=problem, field="text", value=recipient.row)
        item: dict[str, Any] = {"number": int(recipient.number)}
        ref = self._reference(recipient)
        if ref is not None:
            item["reference_id"] = ref
        return item

    def phone_of(self, item: Mapping[str, Any]) -> int:
        return int(item["number"])

    def expected_of(self, item: Mapping[str, Any]) -> tuple[int, str | None, str | None]:
        # A transliterated text is BSG's rewrite of ours: not compared.
        return int(item["number"]), None if self.transliterate else self._text, self._sender

    def expected_outside(self, phone: int) -> tuple[int, str | None, str | None]:
        return self.expected_of({"number": phone})

    def build(self, items: Sequence[Mapping[str, Any]], options: Mapping[str, Any]) -> Request:
        return proto.send_bulk(items, self._text, self._sender, **options, transliterate=self.transliterate)


_text_problem = proto.filled_text_problem  # the rule lives with BSG's other limits


class _Unfillable(SmsValidationError):
    """A row whose values cannot fill the text; ``reason`` is the estimate's word for it (the skip report's)."""

    def __init__(self, message: str, *, reason: str | None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reason = reason or message


class BsgIndividualWork(BsgAudienceWork):
    """Each phone its own text (``sms/send-individual``)."""

    params: BsgIndividualParams
    checkpoint_key = "bsg_individual"

    def check_settings(self) -> None:
        if self.text not in (None, "") and (not isinstance(self.text, str) or not self.text.strip()):
            raise SmsValidationError("text must be a non-empty template", field="text", value=self.text)
        if self.sender not in (None, ""):
            proto.check_sender(self.sender)

    def _text_for(self, recipient: Recipient) -> str:
        own = recipient.params.get(self.text_field)
        if own:
            return own
        if not self.text:
            raise SmsValidationError(
                f"no text: the row has no {self.text_field!r} column and the operator no text template",
                field="text",
            )
        # The estimate's per-row rule (values without a placeholder, no value, an empty filled text,
        # past BSG's limit): under on_invalid="skip" the row is reported with the estimate's words,
        # under "fail" with these.
        problem = fill_problem(self.text, recipient.params, _text_problem,
                               own_columns=(self.reference_field, self.sender_field, self.text_field))
        if problem is not None and not placeholders(self.text):
            raise _Unfillable(problem, reason=problem, field="text", value=recipient.row)
        try:
            filled = proto.fill_placeholders(self.text, recipient.params)
        except KeyError as missing:
            raise _Unfillable(f"placeholder {{{missing.args[0]}}} has no value in the row", reason=problem,
                              field="text", value=missing.args[0]) from None
        if problem is not None:
            try:  # a value that pushes the filled text past BSG's limit names itself and its length
                check_filled_length(self.text, recipient.params, None, _text_problem)
                proto.check_message_text(filled)
            except SmsValidationError as err:
                raise _Unfillable(str(err), reason=problem, field=err.field, value=err.value) from None
        return filled

    def to_item(self, recipient: Recipient) -> dict[str, Any]:
        item: dict[str, Any] = {
            "phone": int(recipient.number),
            "text": proto.check_message_text(self._text_for(recipient)),
            "sender": proto.check_sender(recipient.params.get(self.sender_field) or self.sender),
        }
        ref = self._reference(recipient)
        if ref is not None:
            item["reference_id"] = ref
        return item

    def phone_of(self, item: Mapping[str, Any]) -> int:
        return int(item["phone"])

    def expected_of(self, item: Mapping[str, Any]) -> tuple[int, str | None, str | None]:
        return int(item["phone"]), None if self.transliterate else item["text"], item["sender"]

    def build(self, items: Sequence[Mapping[str, Any]], options: Mapping[str, Any]) -> Request:
        if self.transliterate is not None:
            items = [{**item, "transliterate": self.transliterate} for item in items]
        return proto.send_individual(items, **options)


# ------------------------------------------------------------------ the neutral interface


def run_campaign(hook: Any, params: CampaignParams, context: Any, log: Any) -> dict[str, Any]:
    """A bulk campaign, or an individual one when the text has ``{placeholders}`` (split in chunks)."""
    if params.name:
        log.info("BSG campaigns have no name: name=%r is not sent", params.name)
    personalised = isinstance(params.text, str) and bool(placeholders(params.text))
    work, params_class, operator = (
        (BsgIndividualWork, BsgIndividualParams, "BsgIndividualCampaignOperator") if personalised
        else (BsgBulkWork, BsgBulkParams, "BsgBulkCampaignOperator")
    )  # fmt: skip
    args = {"bsg_conn_id": params.conn_id, "text": params.text, "recipients": params.recipients,
            "sender": params.sender, "start_at": params.send_at, "on_invalid": params.on_invalid,
            "reject_report_path": params.reject_report_path}
    work_params = build_params(params_class, operator, params.task_id, {**args, **params.options})
    log.info("Sending through %s (connection %r)", operator, params.conn_id)
    details = work(work_params, TaskRuntime(context, log, params.task_id)).run()
    return summarize(hook, params.conn_id, details)


def summarize(hook: Any, conn_id: str, details: dict[str, Any]) -> dict[str, Any]:
    ids = [int(i) for i in details["campaign_ids"]]
    words = {int(c["id"]): c.get("status") for c in details.get("campaigns") or []}
    return neutral_summary(hook, conn_id, ids, count(details.get("phones")), invalid_rows(details), words, details)
