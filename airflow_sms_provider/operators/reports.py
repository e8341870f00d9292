"""SmsDeliveryReportOperator: every message of some campaigns, streamed into a file or a SQL table.

Provider-neutral: the connection's type picks the hook (:mod:`airflow_sms_provider.providers`), whose
:meth:`~airflow_sms_provider.hooks.base.SmsHook.iter_delivery_records` reads the messages page by page;
a :class:`~airflow_sms_provider.reports.sink.ReportSink` takes them in batches. Nothing holds the whole
report: memory is one batch plus the pages in flight. See docs/delivery-reports.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import inspect
import itertools
import sys
import threading
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from operator import attrgetter
from typing import Any

from airflow.providers.common.compat.sdk import BaseHook, BaseOperator

from airflow_sms_provider.concurrency import prefetch
from airflow_sms_provider.exceptions import SmsNotFoundError, SmsProtocolError, SmsValidationError
from airflow_sms_provider.hooks.base import DEFAULT_REPORT_CONCURRENCY
from airflow_sms_provider.progress import Checkpoint, ProgressLog
from airflow_sms_provider.providers import provider_for
from airflow_sms_provider.recipients import regroup
from airflow_sms_provider.redaction import register_secret
from airflow_sms_provider.reports.record import MESSAGE_STATUSES, DeliveryRecord
from airflow_sms_provider.reports.sink import ReportSink
from airflow_sms_provider.templating import DataFieldsMixin
from airflow_sms_provider.validation import check_range, id_list

# Page reads in flight at most (each provider's keep-alive limits make more pointless).
MAX_CONCURRENCY = 16
# Rows handed to the destination at once: a few thousand keeps memory flat and inserts efficient.
DEFAULT_BATCH_SIZE = 5000
# An incremental export reads from this long before the watermark: a status that changed while the
# previous export read its pages, or a provider clock a little behind ours, is not missed.
DEFAULT_WATERMARK_OVERLAP = dt.timedelta(minutes=10)
# Batches read ahead of the destination (memory: this many batches plus the pages in flight).
WRITE_BEHIND = 4
# Message ids remembered to drop a repeat: a page read after others moved (Mobizon's "since" filter
# admits messages while the export runs) repeats the rows it shifted across a page boundary.
RECENT_IDS = 10_000
# The name holds "secret": Airflow's UI and REST API mask an extra by its name, and "report_salt"
# (the first name) was shown to anyone who may read connections.
SALT_EXTRA = "report_salt_secret"
OLD_SALT_EXTRA = "report_salt"
# The salt must be long enough to be a secret (redaction masks nothing shorter than 6 characters).
MIN_SALT_LENGTH = 16
CHECKPOINT_KEY = "delivery_report"


# The garbage collector's first threshold while an export runs (Python's default: 700). Records live for a
# few batches, so a collection every 700 new objects walked the same batches again and again: about 1 ms
# of CPU per 1,000 records. The records hold no cycles; what a cycle elsewhere holds waits a little longer.
GC_THRESHOLD = 10_000
# The GIL's switch interval while an export runs (Python's default: 5 ms). A page reader whose answer has
# arrived waits for the GIL until the thread building or writing records gives it up, at worst a whole
# interval; eight readers waiting 5 ms each left the provider idle between pages (CSV export: 0.83x the
# status endpoint's keep-alive limit at 5 ms, 0.97x at 0.5 ms; docs/benchmarks.md, row 8).
SWITCH_INTERVAL = 0.0005


_settings_lock = threading.Lock()
_settings_state: dict[str, Any] = {"exports": 0, "before": None, "switch": None}


@contextlib.contextmanager
def export_settings(threshold: int = GC_THRESHOLD, switch_interval: float = SWITCH_INTERVAL) -> Iterator[None]:
    """Raise the collector's first threshold to at least ``threshold`` and cut the GIL's switch interval to
    at most ``switch_interval`` for the block, then put both back.

    The settings are the process's: exports overlapping in threads share them, and the last one to end puts
    back what was there before the first began.
    """
    with _settings_lock:
        if _settings_state["exports"] == 0:
            _settings_state["before"] = before = gc.get_threshold()
            gc.set_threshold(max(before[0], threshold), *before[1:])
            _settings_state["switch"] = switch = sys.getswitchinterval()
            sys.setswitchinterval(min(switch, switch_interval))
        _settings_state["exports"] += 1
    try:
        yield
    finally:
        with _settings_lock:
            _settings_state["exports"] -= 1
            if _settings_state["exports"] == 0:
                gc.set_threshold(*_settings_state["before"])
                sys.setswitchinterval(_settings_state["switch"])


def hashed_recipient(salt: str, phone: str) -> str:
    """Hex SHA-256 of the salt followed by the phone's digits (a leading ``+`` and spaces dropped)."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return hashlib.sha256((salt + digits).encode("utf-8")).hexdigest()


def export_key(context: Any, task_id: str) -> str:
    """``dag_id/task_id/run_id`` (plus ``/map_index`` for a mapped task): a retry of this run has the same."""
    ti = context.get("ti") if context is not None else None
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "dag")
    run_id = getattr(ti, "run_id", None) or context.get("run_id") or "run"
    key = f"{dag_id}/{task_id}/{run_id}"
    map_index = getattr(ti, "map_index", -1)
    return key if map_index is None or map_index < 0 else f"{key}/{map_index}"


class SmsDeliveryReportOperator(DataFieldsMixin, BaseOperator):
    """Export every message's outcome of ``campaign_ids`` from a ``mobizon`` or ``bsg`` connection.

    :param conn_id: the SMS connection; its type picks the provider (templated). Ogangi's API cannot
        list messages: such a connection fails with a clear error.
    :param campaign_ids: one or more campaign ids: an id, a list, ``"1,2"`` or an XCom (templated).
    :param destination: a file: ``ObjectStoragePath`` or URL/path ending in .csv, .jsonl or .parquet
        (templated). Give this, or ``sql_conn_id`` and ``table``.
    :param format: ``csv``, ``jsonl`` or ``parquet`` when the suffix does not say (templated).
    :param sql_conn_id: a ``common.sql`` connection for a table destination.
    :param table: the table (templated). ``create_table``: create it when missing.
    :param incremental: export only messages whose status changed since the destination's watermark
        (a file destination then needs one file per run: ``{{ run_id }}`` in its path).
    :param hash_recipients: write hex SHA-256 of the connection extra ``report_salt_secret`` followed by the
        phone's digits instead of the phone.
    :param concurrency: page reads in flight (default 4, at most 16).
    :param batch_size: records handed to the destination at once.
    :param watermark_overlap: how far before the watermark an incremental export starts reading.
    :param watermark_path: a file destination's watermark file (default: beside the file); give one
        when each run writes into a folder of its own.
    :param csv_escape_formulas: a CSV destination for people who open it in a spreadsheet: a value the
        spreadsheet would run as a formula (starting ``= + - @``, tab or CR, not a signed number) gets a
        ``'`` in front. Off by default: values are written as the provider gave them.

    Returns ``{"provider", "conn_id", "campaign_ids", "destination", "rows", "statuses", "incremental",
    "since", "hashed"}``: ``statuses`` counts rows by neutral status. No phone number is in it.
    """

    template_fields: Sequence[str] = (
        "conn_id", "campaign_ids", "destination", "format", "sql_conn_id", "table", "watermark_path",
    )  # fmt: skip
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        conn_id: str,
        campaign_ids: Any,
        destination: Any = None,
        format: str | None = None,
        sql_conn_id: str | None = None,
        table: str | None = None,
        create_table: bool = False,
        incremental: bool = False,
        hash_recipients: bool = False,
        concurrency: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        watermark_overlap: dt.timedelta = DEFAULT_WATERMARK_OVERLAP,
        watermark_path: Any = None,
        csv_escape_formulas: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id, self.campaign_ids = conn_id, campaign_ids
        self.destination, self.format = destination, format
        self.sql_conn_id, self.table, self.create_table = sql_conn_id, table, create_table
        self.incremental, self.hash_recipients = incremental, hash_recipients
        self.concurrency, self.batch_size, self.watermark_overlap = concurrency, batch_size, watermark_overlap
        self.watermark_path = watermark_path
        self.csv_escape_formulas = csv_escape_formulas

    # ------------------------------------------------------------ validation (before any request)

    def _campaign_ids(self) -> list[int]:
        return id_list(self.campaign_ids, "campaign_ids", not_an_id="a campaign id", empty="campaign id")

    def _concurrency(self) -> int:
        value = DEFAULT_REPORT_CONCURRENCY if self.concurrency is None else self.concurrency
        if isinstance(value, bool) or not isinstance(value, int):
            raise SmsValidationError(f"concurrency={value!r} must be a whole number", field="concurrency", value=value)
        check_range(value, 1, MAX_CONCURRENCY, "concurrency")
        return value

    def make_sink(self) -> ReportSink:
        """The destination these arguments name (nothing is written yet)."""
        has_file = self.destination not in (None, "")
        has_sql = bool(self.sql_conn_id) or bool(self.table)
        if has_file == has_sql:
            raise SmsValidationError(
                "give either destination (a file) or sql_conn_id and table (a SQL table), not "
                + ("both" if has_file else "neither"),
                field="destination", value=self.destination,
            )  # fmt: skip
        if has_file:
            from airflow_sms_provider.reports.files import FileSink

            return FileSink(self.destination, format=self.format, watermark_path=self.watermark_path,  # type: ignore[arg-type]
                            csv_escape_formulas=self.csv_escape_formulas)
        for name in ("format", "watermark_path", "csv_escape_formulas"):  # said, not silently ignored
            if getattr(self, name) not in (None, "", False):
                raise SmsValidationError(f"{name}={getattr(self, name)!r} applies to a file destination, not to a "
                                         "SQL table", field=name, value=getattr(self, name))  # fmt: skip
        if not self.sql_conn_id or not self.table:
            missing = "sql_conn_id" if not self.sql_conn_id else "table"
            raise SmsValidationError(f"a SQL destination needs both sql_conn_id and table: {missing} is empty",
                                     field=missing, value=None)
        try:  # imported here: the SQL sink needs common.sql, which file exports do not
            from airflow_sms_provider.reports.sql import SqlSink  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise SmsValidationError(f"SQL destinations are not available here: {exc}", field="sql_conn_id",
                                     value=self.sql_conn_id) from exc
        # One executemany and one commit of the stage per batch: a commit per 1,000 rows cost SQLite a
        # journal sync each (half the sink's wall time) and ~1 ms of CPU per 1,000 rows more.
        return SqlSink(self.sql_conn_id, self.table, create_table=self.create_table,  # type: ignore[no-any-return,unused-ignore]
                       batch_size=self.batch_size)

    def _overlap(self) -> dt.timedelta:
        value = self.watermark_overlap
        if isinstance(value, (int, float)) and not isinstance(value, bool):  # seconds
            value = dt.timedelta(seconds=value)
        if not isinstance(value, dt.timedelta) or value < dt.timedelta(0):
            raise SmsValidationError(
                f"watermark_overlap={self.watermark_overlap!r} must be a timedelta (or seconds) of zero or more: a "
                "negative one would start after the watermark and skip changes",
                field="watermark_overlap", value=self.watermark_overlap,
            )  # fmt: skip
        return value

    def _salt(self) -> str | None:
        if not self.hash_recipients:
            return None
        extra = BaseHook.get_connection(self.conn_id).extra_dejson or {}
        if OLD_SALT_EXTRA in extra:
            raise SmsValidationError(
                f"the connection {self.conn_id!r} holds the extra {OLD_SALT_EXTRA!r}: rename it {SALT_EXTRA!r} "
                f"(Airflow's UI and REST API show an extra whose name does not say it is secret)",
                field=OLD_SALT_EXTRA, value=None,
            )  # fmt: skip
        salt = extra.get(SALT_EXTRA)
        if not isinstance(salt, str) or len(salt) < MIN_SALT_LENGTH:
            raise SmsValidationError(
                f"hash_recipients=True needs the connection {self.conn_id!r} extra {SALT_EXTRA!r}: a secret of at "
                f"least {MIN_SALT_LENGTH} characters ({'missing' if salt in (None, '') else 'too short'})",
                field=SALT_EXTRA, value=None,
            )  # fmt: skip
        register_secret(salt)  # never in a log line
        return salt

    # ------------------------------------------------------------ the export

    def _since(self, sink: ReportSink, provider: str, ids: list[int], key: str, ckpt: Checkpoint) -> dt.datetime | None:
        """The incremental lower bound, the same for every try of this run."""
        if not self.incremental:
            return None
        if "since" in ckpt.data:  # an earlier try of this run chose it (durable state, Airflow >= 3.3)
            saved = ckpt.get("since")
            return None if saved is None else dt.datetime.fromisoformat(saved)
        campaign_ids = [str(i) for i in ids]
        # A file sink can tell a watermark its own earlier try set (without durable state, a retry after
        # the commit would otherwise read a later watermark and overwrite its file with fewer rows).
        if "export_key" in inspect.signature(sink.watermark).parameters:
            mark = sink.watermark(provider, campaign_ids, export_key=key)  # type: ignore[call-arg]
        else:
            mark = sink.watermark(provider, campaign_ids)
        if mark is not None and mark.tzinfo is None:  # a database that drops the zone: rows are written in UTC
            mark = mark.replace(tzinfo=dt.timezone.utc)
        since = None if mark is None else mark - self._overlap()
        ckpt.save(since=None if since is None else since.isoformat())
        return since

    def execute(self, context: Any) -> dict[str, Any]:
        ids = self._campaign_ids()
        concurrency = self._concurrency()
        check_range(self.batch_size, 1, 100_000, "batch_size")
        self._overlap()
        sink = self.make_sink()
        provider = provider_for(self.conn_id)
        salt = self._salt()
        key = export_key(context, self.task_id)
        ckpt = Checkpoint(context, CHECKPOINT_KEY)
        hook = provider.hook(self.conn_id)
        try:
            since = self._since(sink, hook.conn_type, ids, key, ckpt)
            self.log.info("%s: delivery report of campaign(s) %s into %s%s", hook.conn_type, ids, sink.describe(),
                          f", status changed since {since.isoformat()}" if since else "")
            # Asked before the destination is opened: a provider that cannot list messages fails here.
            pages = hook.iter_delivery_pages(ids, since=since, concurrency=concurrency)
            self._check_campaigns(hook, ids)
            rows, statuses = self._export(sink, key, pages, salt)
        finally:
            hook.close()
        summary = {
            "provider": hook.conn_type, "conn_id": self.conn_id, "campaign_ids": ids, "destination": sink.describe(),
            "rows": rows, "statuses": statuses, "incremental": bool(self.incremental),
            "since": since.isoformat() if since else None, "hashed": salt is not None,
        }  # fmt: skip
        self.log.info("Delivery report: %d row(s) into %s; %s", rows, summary["destination"],
                      ", ".join(f"{word} {count}" for word, count in statuses.items()))
        return summary

    def _check_campaigns(self, hook: Any, ids: list[int]) -> None:
        """Each campaign must be this account's: a listing filtered by an unknown id is empty, not an error,
        and would pass as a campaign without messages (a typo exporting nothing, a full export wiping rows)."""
        for campaign_id in ids:
            try:
                hook.confirm_campaign(campaign_id)
            except SmsNotFoundError as err:
                raise SmsNotFoundError(
                    f"{hook.conn_type}: campaign {campaign_id} not found on connection {self.conn_id!r} (it does "
                    f"not exist, was deleted or belongs to another account); nothing was written: {err}"
                ) from err

    def _export(
        self, sink: ReportSink, key: str, pages: Iterable[list[DeliveryRecord]], salt: str | None
    ) -> tuple[int, dict[str, int]]:
        counts: Counter[str] = Counter()
        progress = ProgressLog(self.log, "delivery records")
        writer = sink.open(key, incremental=bool(self.incremental))
        done = 0
        # Pages are read and records built in a worker thread, up to WRITE_BEHIND batches ahead, while
        # this thread hashes and writes: a slow destination no longer stops the page reads, and the
        # writer (open, write, commit, abort) stays in the thread that opened it (sqlite3 requires it).
        # A page (a list) at a time up to the batches: de-duplication, batching and counting are C-level
        # operations on lists, not a generator step per record.
        repeats: list[int] = [0]
        once = _once_pages(pages, strict=not self.incremental, repeats=repeats)
        batches = prefetch(regroup(once, self.batch_size), WRITE_BEHIND)
        try:
            with export_settings():
                for batch in batches:
                    if salt is not None:
                        batch = list(_hashed(batch, salt))
                    writer.write(batch)
                    counts.update(map(_STATUS, batch))
                    done += len(batch)
                    progress.update(done)
            rows = writer.commit()
        except BaseException:
            batches.close()  # stops the reader thread before the writer is dropped
            writer.abort()
            raise
        progress.finish()
        if repeats[0]:
            self.log.info("Delivery report: %d message(s) listed again (moved across a page while the status "
                          "changed) were written once", repeats[0])
        statuses = {word: counts.get(word, 0) for word in MESSAGE_STATUSES}
        statuses.update({word: n for word, n in counts.items() if word not in statuses})
        return rows, statuses


_KEY = attrgetter("campaign_id", "message_id")
_STATUS = attrgetter("status")


class _Recent:
    """The keys of the last ``size`` records kept: a set to ask, a bounded queue to forget the oldest.

    A set and a queue of its keys, oldest first: dropping a dict's first key again and again is slow
    (iteration skips the deleted slots at its front).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.keys: set[tuple[str, str]] = set()
        self.order: deque[tuple[str, str]] = deque(maxlen=size)

    def add(self, key: tuple[str, str]) -> None:
        """One key not among :attr:`keys`."""
        if len(self.order) == self.size:
            self.keys.discard(self.order[0])  # the append below pushes it out of the queue
        self.order.append(key)
        self.keys.add(key)

    def add_all(self, keys: list[tuple[str, str]]) -> None:
        """Keys none of which is among :attr:`keys` nor repeated: what ``add`` of each does, in C."""
        over = len(self.order) + len(keys) - self.size
        if over > 0:  # the oldest ones leave the window (the queue drops them itself on extend)
            self.keys.difference_update(itertools.islice(self.order, over))
            keys = keys[-self.size :]
        self.order.extend(keys)
        self.keys.update(keys)


def _once_pages(
    pages: Iterable[list[DeliveryRecord]],
    window: int = RECENT_IDS,
    *,
    strict: bool = False,
    repeats: list[int] | None = None,
) -> Iterator[list[DeliveryRecord]]:
    """``pages`` without a repeat of a message among the last ``window`` ones kept (bounded memory).

    ``strict`` (a full export, whose listing nothing enters or leaves): a repeat means the provider answered
    a page twice, so SmsProtocolError. Otherwise ``repeats[0]`` counts the repeats dropped. A page without a
    repeat (the usual case: its keys distinct and none recent) passes whole, checked with set operations; a
    page with one is handled record by record, so the error names the first repeated message.
    """
    recent = _Recent(window)
    for page in pages:
        keys = list(map(_KEY, page))
        fresh = set(keys)
        if len(fresh) == len(keys) and recent.keys.isdisjoint(fresh):
            recent.add_all(keys)
            yield page
            continue
        kept = []
        for record, key in zip(page, keys, strict=True):
            if key in recent.keys:
                if strict:
                    raise SmsProtocolError(
                        f"{record.provider}: the listing of campaign {record.campaign_id} gave message "
                        f"{record.message_id!r} twice (a page answered twice or shifted); nothing of this export "
                        "was written (a retry reads the campaign again)"
                    )
                if repeats is not None:
                    repeats[0] += 1
                continue
            recent.add(key)
            kept.append(record)
        if kept:
            yield kept


def _once(
    records: Iterable[DeliveryRecord],
    window: int = RECENT_IDS,
    *,
    strict: bool = False,
    repeats: list[int] | None = None,
) -> Iterator[DeliveryRecord]:
    """:func:`_once_pages` of single records: ``records`` without a repeat among the last ``window`` kept."""
    pages = _once_pages(([record] for record in records), window, strict=strict, repeats=repeats)
    return itertools.chain.from_iterable(pages)


def _hashed(records: Iterable[DeliveryRecord], salt: str | None) -> Iterator[DeliveryRecord]:
    if salt is None:
        yield from records
        return
    for record in records:
        yield replace(record, recipient=hashed_recipient(salt, record.recipient))


__all__ = ["SmsDeliveryReportOperator", "export_key", "hashed_recipient"]
