"""Operators for BSG One-API campaigns: bulk, contact lists, personalised, stop, statistics.

Every operator validates its (rendered) input before the first request that creates
anything, and returns a small summary for XCom: ids, counts and a few examples, never
the audience.

An audience is read twice: first to check every row (so a bad row 90,000 fails the task
before campaign 1 is created), then to send it in campaigns of at most 10,000 phones.
Files and lists can be read twice; a one-shot iterator is kept in memory for that.

Crash safety: each message gets a ``reference_id`` (yours, or one derived from the task
run and the phone, the same in any order), the campaign ids are recorded in the task's
durable state as they are created, and a campaign whose creation went unanswered, or
whose ids BSG refuses as repeated (429), is looked up by its reference_ids, verified and
adopted instead of being created again (campaigns/bsg.py, ``settle``): only phones no
campaign holds are sent.

The campaigns of a split audience are created ``max_concurrent_creates`` at a time
(threads sharing the hook and its token); each is recorded under its chunk's position as
soon as its answer arrives, whatever the order, and a rate-limit answer makes every
worker pause and fewer requests run at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from decimal import Decimal, InvalidOperation
from typing import Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_sms_provider.campaigns.bsg import Found, settle
from airflow_sms_provider.campaigns.lease import Lease, fence
from airflow_sms_provider.campaigns.ledger import Digest, Ledger
from airflow_sms_provider.campaigns.reconcile import Expected, bsg_phones
from airflow_sms_provider.concurrency import Throttle
from airflow_sms_provider.exceptions import (
    SmsAmbiguousError,
    SmsConflictError,
    SmsFatalError,
    SmsProviderError,
    SmsRetryableError,
    SmsValidationError,
)
from airflow_sms_provider.hooks.bsg import BsgHook
from airflow_sms_provider.links import BsgCampaignLink, persist_campaign_link
from airflow_sms_provider.progress import Checkpoint
from airflow_sms_provider.protocols import bsg as proto
from airflow_sms_provider.recipients import (
    DuplicateReport,
    Recipient,
    RejectReport,
    check_filled_length,
    chunked,
    iter_recipients,
    sms_parts,
)
from airflow_sms_provider.templating import DataFieldsMixin
from airflow_sms_provider.transport import Request
from airflow_sms_provider.validation import (
    check_choice,
    check_values_used,
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


class _BsgOperator(DataFieldsMixin, BaseOperator):
    """Holds the connection id and makes hooks; subclasses do one step."""

    def __init__(self, *, bsg_conn_id: str = BsgHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bsg_conn_id = bsg_conn_id

    def hook(self) -> BsgHook:
        return BsgHook(self.bsg_conn_id)


class _CampaignOperator(_BsgOperator):
    """Settings every campaign kind shares (validity, tariff, schedule, callback)."""

    def __init__(
        self,
        *,
        validity: int | str | None = None,
        tariff_code: int | str | None = None,
        start_at: Any = None,
        transliterate: bool | None = None,
        callback_url: str | None = None,
        delivery_events: bool = False,
        start_at_lateness: float = proto.START_AT_LATENESS.total_seconds() / 60,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.validity, self.tariff_code, self.start_at = validity, tariff_code, start_at
        self.transliterate, self.callback_url = transliterate, callback_url
        self.delivery_events = delivery_events
        self.start_at_lateness = start_at_lateness

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
                report.add(recipient.row, recipient.raw, str(err))
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


def _run_key(context: Any, operator: BaseOperator) -> tuple[str, ...]:
    """What identifies this task run across its tries (not the try number)."""
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


class _AudienceCampaignOperator(_CampaignOperator):
    """Shared by the bulk and personalised operators: audience reading, splitting, crash-safe creation."""

    checkpoint_key = "bsg_campaigns"
    operator_extra_links = (BsgCampaignLink(),)
    _lease: Lease | None = None  # the running try's lease (campaigns/lease.py)
    _found: Found = Found()  # replaced by each try's own (_send_chunks)
    _prefix: str | None = None
    _try_number: int | None = None
    _reread: Callable[[], Iterable[dict[str, Any]]] | None = None
    _audience_phones: set[int] | None = None
    _audience_lock = threading.Lock()

    def __init__(
        self,
        *,
        recipients: Any,
        number_field: str = "recipient",
        reference_field: str = "reference_id",
        on_invalid: str = "fail",
        reject_report_path: str | None = None,
        split: bool = True,
        chunk_size: int = proto.MAX_PHONES_PER_CAMPAIGN,
        auto_reference_ids: bool = True,
        max_reported: int = 20,
        max_concurrent_creates: int | str = 4,
        on_window_passed: str = "fail",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.on_window_passed = on_window_passed
        self.recipients, self.number_field, self.reference_field = recipients, number_field, reference_field
        self.on_invalid, self.reject_report_path = on_invalid, reject_report_path
        self.split, self.chunk_size, self.auto_reference_ids = split, chunk_size, auto_reference_ids
        self.max_reported = max_reported
        self.max_concurrent_creates = max_concurrent_creates

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

    def execute(self, context: Any) -> dict[str, Any]:
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
        # A retry whose audience holds other phones than the earlier try's stops here, naming its campaigns.
        Ledger(ckpt).check_audience(audience.digest, sent=_CampaignBook(ckpt).describe(), provider=proto.PROVIDER)
        if started:
            options = self._window_policy(ckpt, options, policy, planned)
        hook = self.hook()
        # Fence overlapping tries: another live try's creations are waited for, then looked up
        # by reference_id; without reference_ids nothing can be looked up, so a busy lease is fatal.
        try:
            lease, waited = fence(context, self.checkpoint_key, hook, self.log, provider=proto.PROVIDER,
                                  lookup=self.auto_reference_ids)
        except Exception:
            hook.close()
            raise
        if waited:
            ckpt = Checkpoint(context, self.checkpoint_key)  # what the other try recorded meanwhile
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
        persist_campaign_link(context, self.bsg_conn_id, summary, self.log)
        return summary

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
        for index, record in sorted(book.created.items()):
            phones = bsg_phones(hook, int(record["id"]))
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
            phones = bsg_phones(hook, int(campaign["id"]))
            self._check_held(index, int(campaign["id"]), phones, book)
            book.done(index, len(phones), campaign)
            sent.update(phones)
        for campaign_id in sorted(set(book.adopted) - {int(r["id"]) for r in book.created.values()}):
            sent.update(bsg_phones(hook, campaign_id))  # verified when found; may span chunks
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
                return dict(hook.call(self.build(remaining, options))), len(remaining)
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


class BsgBulkCampaignOperator(_AudienceCampaignOperator):
    """Send one text to a list of phones (``sms/send``), 10,000 phones per campaign.

    :param recipients: phone numbers, or rows with a number column and an optional
        ``reference_id`` column: a list, any iterable, an upstream XCom, or a CSV/XLSX path.
    :param text: the message (≤ 765 GSM-7 or ≤ 335 UCS-2 characters).
    :param sender: sender name: 3-11 Latin letters/digits/symbols/spaces, or 3-15 digits.
    :param number_field: column/key holding the number (default ``recipient``; ``number``,
        ``phone`` and ``msisdn`` are recognised too).
    :param reference_field: column/key holding your reference_id (≤ 32 letters/digits, unique).
    :param on_invalid: ``fail`` (default) at the first bad row, or ``skip`` it and report it.
    :param reject_report_path: CSV of every rejected row (local or object storage path).
    :param split: send an audience of more than ``chunk_size`` phones as several campaigns
        (default); when False such an audience is an error.
    :param chunk_size: phones per campaign, 1 to 10,000.
    :param max_concurrent_creates: how many of a split audience's campaigns are created at
        once (default 4; 1: one after the other; templated; at most 16). Each chunk's campaign
        is recorded as soon as it exists; when BSG answers "too many requests" every creation
        pauses (for its Retry-After, if it sends one) and fewer run at once.
    :param auto_reference_ids: give rows without a reference_id one derived from the task run and
        the phone, so a retry finds what an earlier try created, in any order, instead of sending it
        twice (default True). A campaign
        whose rows have none cannot be found: if its creation goes unanswered the task fails without retry.
    :param validity: hours a message may wait for delivery, 1-72 (BSG's default 72).
    :param tariff_code: the account's tariff to bill, 0-9.
    :param start_at: when to send (datetime, pendulum or template string), up to 30 days ahead, read in
        the connection's ``timezone``. At most ``start_at_lateness`` minutes in the past means now.
    :param start_at_lateness: minutes start_at may lie in the past at the first check and still be
        sent (as "now"), default 15 (``{{ data_interval_end }}`` on a scheduled run). Further: refused.
        Checked before the first creation only; a retry resuming created chunks does not judge it again.
    :param on_window_passed: a retry resumes after ``start_at`` has passed with chunks still to create:
        ``fail`` (default; no retry, naming the created campaigns and what is left), ``send_now``
        (create the rest without start_at) or ``keep_offset`` (the rest starts as long after now as
        start_at was after the first check). Templated.
    :param transliterate: let BSG transliterate the text when needed.
    :param callback_url: delivery-report URL (≤ 100 characters).
    :param delivery_events: send BSG's status callbacks to the SMS events receiver (the connection's
        ``events_url`` and ``callback_token`` extras make the URL; docs/events.md); not with ``callback_url``.
    :param max_reported: how many rejected rows and campaigns are listed in the summary.
    :param bsg_conn_id: the ``bsg`` connection (default ``bsg_default``).

    Returns ``{"campaign_ids", "campaigns", "phones", "invalid", "calculated_price",
    "currency", "start_at", "reference_prefix"}``.
    """

    template_fields: Sequence[str] = (
        "recipients", "text", "sender", *_OPTION_FIELDS, "reject_report_path", "max_concurrent_creates",
        "bsg_conn_id", "on_window_passed",
    )  # fmt: skip
    checkpoint_key = "bsg_bulk"

    def __init__(self, *, text: str, sender: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text, self.sender = text, sender

    def check_settings(self) -> None:
        self._text = proto.check_message_text(self.text)
        self._sender = proto.check_sender(self.sender)

    def to_item(self, recipient: Recipient) -> dict[str, Any]:
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


def _text_problem(text: str) -> str | None:
    """What is wrong with a filled per-recipient text's length, or None (BSG's limits)."""
    encoding, length, _ = sms_parts(text)
    limit = proto.TEXT_LIMITS[encoding]
    return None if length <= limit else f"{length} {encoding} characters; BSG allows at most {limit}"


class BsgIndividualCampaignOperator(_AudienceCampaignOperator):
    """Send each recipient its own text (``sms/send-individual``), 10,000 per campaign.

    Each row's text is its ``text_field`` column when present, else ``text`` with
    ``{placeholders}`` filled from the row's other columns; the sender is the row's
    ``sender_field`` column or ``sender``.

    :param recipients: rows (dicts, a CSV/XLSX path, an XCom of rows) with a number column.
    :param text: template for rows without their own text, e.g. ``"Hi {name}, code {code}"``.
    :param sender: default sender for rows without one.
    :param text_field: column holding a ready text (default ``text``).
    :param sender_field: column holding a sender (default ``sender``).
    :param number_field: column/key holding the number (default ``recipient``; ``number``,
        ``phone`` and ``msisdn`` are recognised too).
    :param reference_field: column/key holding your reference_id (≤ 32 letters/digits, unique).
    :param on_invalid: ``fail`` (default) at the first bad row, or ``skip`` it and report it; rows
        whose text is too long, whose placeholders have no value or whose sender is invalid count
        as bad rows.
    :param reject_report_path: CSV of every rejected row (local or object storage path).
    :param split: send an audience of more than ``chunk_size`` rows as several campaigns (default).
    :param chunk_size: messages per campaign, 1 to 10,000.
    :param max_concurrent_creates: how many of a split audience's campaigns are created at
        once (default 4; 1: one after the other; templated; at most 16). Each chunk's campaign
        is recorded as soon as it exists; when BSG answers "too many requests" every creation
        pauses (for its Retry-After, if it sends one) and fewer run at once.
    :param auto_reference_ids: give rows without a reference_id one derived from the task run and
        the phone, so a retry finds what an earlier try created, in any order (default True). A campaign
        whose rows have none cannot be found: if its creation goes unanswered the task fails without retry.
    :param validity: hours a message may wait for delivery, 1-72 (BSG's default 72).
    :param tariff_code: the account's tariff to bill, 0-9.
    :param start_at: when to send (datetime, pendulum or template string), up to 30 days ahead, read in
        the connection's ``timezone``. At most ``start_at_lateness`` minutes in the past means now.
    :param start_at_lateness: minutes start_at may lie in the past at the first check and still be
        sent (as "now"), default 15 (``{{ data_interval_end }}`` on a scheduled run). Further: refused.
        Checked before the first creation only; a retry resuming created chunks does not judge it again.
    :param on_window_passed: a retry resumes after ``start_at`` has passed with chunks still to create:
        ``fail`` (default; no retry, naming the created campaigns and what is left), ``send_now``
        (create the rest without start_at) or ``keep_offset`` (the rest starts as long after now as
        start_at was after the first check). Templated.
    :param transliterate: let BSG transliterate the texts when needed.
    :param callback_url: delivery-report URL (≤ 100 characters).
    :param delivery_events: send BSG's status callbacks to the SMS events receiver (the connection's
        ``events_url`` and ``callback_token`` extras make the URL; docs/events.md); not with ``callback_url``.
    :param max_reported: how many rejected rows and campaigns are listed in the summary.
    :param bsg_conn_id: the ``bsg`` connection (default ``bsg_default``).

    Returns the same summary as :class:`BsgBulkCampaignOperator`.
    """

    template_fields: Sequence[str] = (
        "recipients", "text", "sender", *_OPTION_FIELDS, "reject_report_path", "max_concurrent_creates",
        "bsg_conn_id", "on_window_passed",
    )  # fmt: skip
    checkpoint_key = "bsg_individual"

    def __init__(
        self,
        *,
        text: str | None = None,
        sender: str | None = None,
        text_field: str = "text",
        sender_field: str = "sender",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.text, self.sender, self.text_field, self.sender_field = text, sender, text_field, sender_field

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
        values = set(recipient.params) - {self.reference_field, self.sender_field, self.text_field}
        check_values_used(self.text, values, None)
        try:
            filled = proto.fill_placeholders(self.text, recipient.params)
        except KeyError as missing:
            raise SmsValidationError(f"placeholder {{{missing.args[0]}}} has no value in the row",
                                     field="text", value=missing.args[0]) from None
        # The audience rule: a value that pushes the filled text past BSG's limit names itself and its length.
        check_filled_length(self.text, recipient.params, None, _text_problem)
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


class BsgGroupsCampaignOperator(_CampaignOperator):
    """Send one text to contact lists of the BSG contact book (``sms/send-groups``).

    :param groups: contact list ids (a list, "1,2", or one id; templated).
    :param text: the message; ``{12}`` placeholders (numeric custom-field ids) take the contacts'
        field values. Named ones (``{name}``) are refused: BSG would send them literally.
    :param sender: sender name.
    :param validity: hours a message may wait for delivery, 1-72 (BSG's default 72).
    :param tariff_code: the account's tariff to bill, 0-9.
    :param start_at: when to send (datetime, pendulum or template string), up to 30 days ahead, read in
        the connection's ``timezone``. At most ``start_at_lateness`` minutes in the past means now.
    :param start_at_lateness: minutes start_at may lie in the past at the first check and still be
        sent (as "now"), default 15 (``{{ data_interval_end }}`` on a scheduled run). Further: refused.
    :param transliterate: let BSG transliterate the text when needed.
    :param callback_url: delivery-report URL (≤ 100 characters).
    :param delivery_events: send BSG's status callbacks to the SMS events receiver (the connection's
        ``events_url`` and ``callback_token`` extras make the URL; docs/events.md); not with ``callback_url``.
    :param bsg_conn_id: the ``bsg`` connection (default ``bsg_default``).

    BSG refuses lists holding more than 10,000 contacts together (split them into several tasks).

    A campaign without reference_ids cannot be looked up, so a retry after an unanswered
    creation (recorded in the task's durable state) fails instead of sending again: check
    the account's campaigns, then clear the task. Without durable state (Airflow < 3.3) the
    unanswered try itself fails without retry, with the same advice.

    Returns ``{"campaign_ids": [id], "campaign_id", "groups", "status", "calculated_price", "currency"}``.
    """

    template_fields: Sequence[str] = ("groups", "text", "sender", *_OPTION_FIELDS, "bsg_conn_id")
    operator_extra_links = (BsgCampaignLink(),)

    def __init__(self, *, groups: Any, text: str, sender: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.groups, self.text, self.sender = groups, text, sender

    def execute(self, context: Any) -> dict[str, Any]:
        groups = proto.campaign_ids(self.groups, "groups")
        text = proto.check_group_placeholders(proto.check_message_text(self.text))
        sender = proto.check_sender(self.sender)
        ckpt = Checkpoint(context, "bsg_groups")
        options = self.campaign_options(ckpt, started=bool(ckpt.get("campaign") or ckpt.get("pending")))
        if ckpt.get("campaign"):
            self.log.info("Campaign %s was created by an earlier try", ckpt.get("campaign")["id"])
            persist_campaign_link(context, self.bsg_conn_id, ckpt.get("campaign")["id"], self.log)
            return self._summary(ckpt.get("campaign"), groups)
        if ckpt.get("pending"):
            raise SmsFatalError(
                "an earlier try sent the send-groups request and recorded no answer: the campaign may exist. "
                "Check the BSG account's campaigns, then clear this task to send again",
                provider=proto.PROVIDER,
            )
        hook = self.hook()
        try:
            ckpt.save(pending=True)
            request = proto.send_groups(groups, text, sender, **options, transliterate=self.transliterate)
            try:
                campaign = dict(hook.call(request))
            except Exception as err:
                refused = isinstance(err, (SmsFatalError, SmsRetryableError))
                if refused and not isinstance(err, proto.BsgDuplicateRequestError):
                    ckpt.save(pending=False)  # invalid, unauthorised, rate limited: nothing was created
                elif not ckpt.durable:
                    # No answer, an unreadable one, or "duplicate": it may exist, and without durable
                    # state a retry could not know and would send again. Stop now.
                    raise SmsFatalError(
                        f"{err}; the campaign may exist. Check the BSG account's campaigns for contact lists "
                        f"{groups}, then clear this task to send again",
                        provider=proto.PROVIDER,
                    ) from err
                raise  # with durable state the retry reads "pending" and stops with the same advice
        finally:
            hook.close()
        ckpt.save(campaign=campaign, pending=False)
        persist_campaign_link(context, self.bsg_conn_id, campaign.get("id"), self.log)
        self.log.info("Created BSG campaign %s for contact lists %s", campaign.get("id"), groups)
        return self._summary(campaign, groups)

    @staticmethod
    def _summary(campaign: Mapping[str, Any], groups: list[int]) -> dict[str, Any]:
        return {
            "campaign_ids": [int(campaign["id"])],
            "campaign_id": int(campaign["id"]),
            "groups": groups,
            "status": campaign.get("status"),
            "calculated_price": campaign.get("calculated_price"),
            "currency": campaign.get("currency"),
        }


class BsgStopCampaignOperator(_BsgOperator):
    """Stop campaigns (``PATCH /api/campaigns/{id}/stop``).

    :param campaign_ids: one id, several, or an upstream campaign operator's summary (templated).
    :param finished_ok: a campaign that already ended (done, stopped, spam) counts as success
        (default True, so a retry after a stop succeeds).
    :param bsg_conn_id: the ``bsg`` connection (default ``bsg_default``).

    BSG stops campaigns that are scheduled, sending, paused or in moderation. One still in
    ``creation`` makes the task fail with a retryable error (it will be stoppable shortly).

    Returns ``{"stopped": [ids], "already_final": {id: status}, "statuses": {id: status}}``.
    """

    template_fields: Sequence[str] = ("campaign_ids", "bsg_conn_id")
    operator_extra_links = (BsgCampaignLink(),)

    def __init__(self, *, campaign_ids: Any, finished_ok: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.campaign_ids, self.finished_ok = campaign_ids, finished_ok

    def execute(self, context: Any) -> dict[str, Any]:
        ids = proto.campaign_ids(self.campaign_ids)
        persist_campaign_link(context, self.bsg_conn_id, ids, self.log)
        result: dict[str, Any] = {"stopped": [], "already_final": {}, "statuses": {}}
        hook = self.hook()
        try:
            for campaign_id in ids:
                result["statuses"][str(campaign_id)] = self._stop(hook, campaign_id, result)
        finally:
            hook.close()
        return result

    def _stop(self, hook: BsgHook, campaign_id: int, result: dict[str, Any]) -> str:
        try:
            data = hook.stop_campaign(campaign_id)
        except SmsConflictError:
            status = str(hook.get_campaign(campaign_id).get("status"))
            if status in proto.FINAL_STATUSES and self.finished_ok:
                self.log.info("Campaign %s has already ended (%s)", campaign_id, status)
                result["already_final"][str(campaign_id)] = status
                return status
            if status == "creation":
                raise SmsProviderError(
                    f"campaign {campaign_id} is still in creation, which BSG cannot stop yet; retry shortly",
                    provider=proto.PROVIDER,
                ) from None
            raise
        self.log.info("Stopped campaign %s", campaign_id)
        result["stopped"].append(campaign_id)
        return str(data.get("status"))


class BsgCampaignStatsOperator(_BsgOperator):
    """Load campaigns' statistics (``GET /api/campaigns/{id}/detail``) and, optionally, message reports.

    :param campaign_ids: one id, several, or an upstream campaign operator's summary (templated).
    :param include_messages: also page through ``GET /api/messages`` per campaign and count the
        messages per status (per-recipient reports), with a few examples.
    :param max_reported: how many example messages go to XCom.
    :param bsg_conn_id: the ``bsg`` connection (default ``bsg_default``).

    Returns ``{"campaign_ids", "campaigns": {id: {status, statistics, total_phones, total_price,
    currency}}, "statistics" (summed), "total_phones", "total_price", "currency"}`` and, with
    ``include_messages``, ``"messages": {"counts": {status: n}, "total": n, "examples": [...]}``.
    """

    template_fields: Sequence[str] = ("campaign_ids", "bsg_conn_id")
    operator_extra_links = (BsgCampaignLink(),)

    def __init__(self, *, campaign_ids: Any, include_messages: bool = False, max_reported: int = 20,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.campaign_ids, self.include_messages, self.max_reported = campaign_ids, include_messages, max_reported

    def execute(self, context: Any) -> dict[str, Any]:
        ids = proto.campaign_ids(self.campaign_ids)
        persist_campaign_link(context, self.bsg_conn_id, ids, self.log)
        hook = self.hook()
        try:
            details = {campaign_id: hook.get_campaign_detail(campaign_id) for campaign_id in ids}
            messages = self._messages(hook, ids) if self.include_messages else None
        finally:
            hook.close()
        summary = _sum_details(details)
        summary["campaign_ids"] = ids
        if messages is not None:
            summary["messages"] = messages
        return summary

    def _messages(self, hook: BsgHook, ids: list[int]) -> dict[str, Any]:
        counts: dict[Any, int] = {}
        examples: list[dict[str, Any]] = []
        for campaign_id in ids:
            for row in hook.iter_messages(campaign_id):
                counts[row.get("status")] = counts.get(row.get("status"), 0) + 1
                if len(examples) < self.max_reported:
                    examples.append({k: row.get(k) for k in ("id", "campaign_id", "phone", "reference_id",
                                                              "status", "sent_at", "delivered_at")})
        return {"counts": counts, "total": sum(counts.values()), "examples": examples}


def _sum_details(details: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """Per-campaign detail plus the statistics, phones and price added up."""
    campaigns: dict[str, Any] = {}
    totals: dict[str, int] = {}
    price = Decimal(0)
    for campaign_id, detail in details.items():
        stats = dict(detail.get("statistics") or {})
        for key, value in stats.items():
            totals[key] = totals.get(key, 0) + int(value or 0)
        with contextlib.suppress(InvalidOperation):  # a price BSG did not fill in adds nothing
            price += Decimal(str(detail.get("total_price") or 0))
        campaigns[str(campaign_id)] = {
            "status": detail.get("status"),
            "statistics": stats,
            "total_phones": detail.get("total_phones"),
            "total_price": detail.get("total_price"),
            "currency": detail.get("currency"),
        }
    return {
        "campaigns": campaigns,
        "statistics": totals,
        "total_phones": sum(int(c["total_phones"] or 0) for c in campaigns.values()),
        "total_price": str(price),
        "currency": next((c["currency"] for c in campaigns.values() if c["currency"]), None),
    }
