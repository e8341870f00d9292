"""FileSink: a delivery report as one CSV, JSON Lines or Parquet file in object storage.

Any ``ObjectStoragePath`` Airflow reaches (``file://``, ``s3://``, ``gs://`` ...). Rows stream
to a temporary object beside the target, named after the export (``.<name>.<key hash>.partial``),
and :meth:`_FileWriter.commit` moves it onto the target in one step: a killed export leaves the
previous file (or none) and at most one ``.partial``, which its retry overwrites and moves; never a
half file under the target's name. A retry of the same export replaces the same file, so it holds
one row per message.

Watermarks (incremental exports) live in a small JSON sidecar, by default in the target's directory
(``.sms-report-watermarks.json``; ``watermark_path`` puts it elsewhere, e.g. when each run writes into
a folder of its own): per provider and campaign, the latest ``updated_at`` a committed
export held, and the value before it (so a retry of an export that had already committed reads the
same watermark again). It is written after the data file: a crash between the two only makes the
next export re-read a little more.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import json
import logging
import operator
import re
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import IO, Any, Literal

from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.reports.record import COLUMNS, DeliveryRecord

log = logging.getLogger(__name__)

Format = Literal["csv", "jsonl", "parquet"]
FORMATS: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
SIDECAR = ".sms-report-watermarks.json"
# Parquet rows buffered before a row group is written: bounded memory, row groups a reader likes.
ROW_GROUP_ROWS = 20_000
# How long an export ran (a test makes an export "take" an hour without waiting for it).
_clock = time.monotonic


def as_storage_path(path: str | ObjectStoragePath) -> ObjectStoragePath:
    """``path`` as an ObjectStoragePath; a plain local path (no ``scheme://``) becomes ``file://``."""
    if isinstance(path, ObjectStoragePath):
        return path
    text = str(path).strip()
    if not text:
        raise SmsValidationError("destination is empty: give a file path or URL", field="destination", value=path)
    if "://" not in text:
        import os

        text = "file://" + os.path.abspath(os.path.expanduser(text))
    return ObjectStoragePath(text)


def format_of(path: ObjectStoragePath, format: str | None) -> Format:
    """The file format: ``format`` when given, else from the name's suffix."""
    if format is not None:
        if format not in ("csv", "jsonl", "parquet"):
            raise SmsValidationError(f"format={format!r} must be csv, jsonl or parquet", field="format", value=format)
        return format  # type: ignore[return-value]
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise SmsValidationError(
            f"destination {describe_path(path)!r}: cannot tell the format from {suffix or 'no suffix'!r}; "
            "name it .csv, .jsonl or .parquet, or pass format=",
            field="format", value=None,
        )  # fmt: skip
    return FORMATS[suffix]


def describe_path(path: ObjectStoragePath) -> str:
    """``scheme://bucket/key`` without the connection id or any user info."""
    protocol = getattr(path, "protocol", "") or "file"
    if isinstance(protocol, (list, tuple)):
        protocol = protocol[0]
    text = str(path.path)
    return f"{protocol}://{text if protocol != 'file' or text.startswith('/') else '/' + text}"


def require_pyarrow() -> Any:
    """The pyarrow module, or an error naming the extra that installs it."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise SmsValidationError(
            "Parquet reports need pyarrow: install airflow-sms-provider[parquet] (or write .csv / .jsonl)",
            field="format", value="parquet",
        ) from None  # fmt: skip
    return pyarrow


def _text(value: Any) -> Any:
    """A value for CSV and JSON: datetimes in ISO 8601 (UTC), Decimal as its exact string."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection"): a
# provider-given value such as ``=HYPERLINK(...)`` would run when someone opens the file.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A signed number (``+77011112301``, ``-0.05``) is a number to a spreadsheet, not a formula: kept as it is.
_SIGNED_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")


def escape_formula(value: Any) -> Any:
    """``value`` with a ``'`` in front when a spreadsheet would read it as a formula (strings only)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _SIGNED_NUMBER.fullmatch(value):
        return "'" + value
    return value


class _Encoder:
    def __init__(self, handle: IO[bytes], *, escape_formulas: bool = False) -> None:
        self.handle = handle
        self.escape_formulas = escape_formulas

    def write(self, records: Sequence[DeliveryRecord]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the format (footers); the caller closes the handle."""


class _Csv(_Encoder):
    def __init__(self, handle: IO[bytes], *, escape_formulas: bool = False) -> None:
        super().__init__(handle, escape_formulas=escape_formulas)
        # Rows go to a text buffer and each batch to the handle as one write: a TextIOWrapper over the
        # storage handle cost a wrapper call, a closed check and a decoder reset per row (a third of the
        # CSV export's CPU).
        self.text = io.StringIO(newline="")
        self.writer = csv.writer(self.text)
        self.writer.writerow(COLUMNS)
        self._drain()

    def _drain(self) -> None:
        self.handle.write(self.text.getvalue().encode("utf-8"))
        self.text.seek(0)
        self.text.truncate()

    def write(self, records: Sequence[DeliveryRecord]) -> None:
        if self.escape_formulas:
            self.writer.writerows(["" if v is None else escape_formula(_text(v)) for v in _values(r)]
                                  for r in records)
        else:
            # Spelled out per column (this runs once per message): the generic per-value _text cost as
            # much as building the record.
            self.writer.writerows(
                (r.provider, r.campaign_id, r.message_id, r.recipient, r.status, r.provider_status,
                 "" if r.parts is None else r.parts, "" if r.cost is None else str(r.cost), _iso(r.created_at),
                 _iso(r.updated_at), "" if r.error_code is None else r.error_code)
                for r in records
            )  # fmt: skip
        self._drain()

    def close(self) -> None:
        """Nothing buffered: every write went to the handle."""


class _Jsonl(_Encoder):
    def write(self, records: Sequence[DeliveryRecord]) -> None:
        lines = (json.dumps(dict(zip(COLUMNS, map(_text, _values(r)), strict=True)), ensure_ascii=False,
                            separators=(",", ":")) for r in records)  # fmt: skip
        self.handle.write("".join(line + "\n" for line in lines).encode("utf-8"))


class _Parquet(_Encoder):
    def __init__(self, handle: IO[bytes], *, escape_formulas: bool = False) -> None:
        super().__init__(handle)
        pa = require_pyarrow()
        self.pa = pa
        self.schema = parquet_schema(pa)
        self.writer = pa.parquet.ParquetWriter(handle, self.schema)
        # Each batch becomes Arrow columns at once: buffering 20,000 row tuples (and the records they came
        # from) kept ~40,000 objects alive for the garbage collector to walk again and again.
        self.buffer: list[Any] = []
        self.rows = 0

    def write(self, records: Sequence[DeliveryRecord]) -> None:
        if not records:
            return
        pa = self.pa
        self.buffer.append(pa.RecordBatch.from_arrays(
            [pa.array(list(map(get, records)), type=field.type) for get, field in zip(_COLUMN_GETTERS, self.schema,
                                                                                       strict=True)],
            schema=self.schema))  # fmt: skip
        self.rows += len(records)
        if self.rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self.buffer:
            # One table of the batches buffered: one row group, as when the rows were buffered.
            self.writer.write_table(self.pa.Table.from_batches(self.buffer, schema=self.schema))
            self.buffer, self.rows = [], 0

    def close(self) -> None:
        self._flush()
        self.writer.close()


_COLUMN_GETTERS = tuple(operator.attrgetter(name) for name in COLUMNS)


def parquet_schema(pa: Any) -> Any:
    """The record's Parquet schema: costs as decimal(38, 10), times as UTC microseconds."""
    types = {"parts": pa.int32(), "cost": pa.decimal128(38, 10), "created_at": pa.timestamp("us", tz="UTC"),
             "updated_at": pa.timestamp("us", tz="UTC")}  # fmt: skip
    return pa.schema([pa.field(name, types.get(name, pa.string())) for name in COLUMNS])


def _values(r: DeliveryRecord) -> tuple[Any, ...]:
    """The record's values in COLUMNS order (spelled out: this runs once per message)."""
    return (r.provider, r.campaign_id, r.message_id, r.recipient, r.status, r.provider_status, r.parts, r.cost,
            r.created_at, r.updated_at, r.error_code)  # fmt: skip


assert _values(DeliveryRecord(*COLUMNS)) == COLUMNS, "_values must follow DeliveryRecord"  # type: ignore[arg-type]


def _iso(value: dt.datetime | None) -> str:
    return "" if value is None else _isoformat(value)


# Cached: a report's timestamps repeat (whole seconds), and isoformat showed in the CSV profile.
_isoformat = functools.lru_cache(maxsize=4096)(dt.datetime.isoformat)


_ENCODERS: dict[str, type[_Encoder]] = {"csv": _Csv, "jsonl": _Jsonl, "parquet": _Parquet}


class FileSink:
    """A report destination that is one file (see the module docstring).

    :param path: an ``ObjectStoragePath`` or a string (``s3://bucket/key.csv``, ``file:///tmp/r.csv``,
        or a local path). An incremental export writes one file per run: put ``{{ run_id }}`` or
        ``{{ dag_run.run_after | ds }}`` in the path.
    :param format: ``csv``, ``jsonl`` or ``parquet``; ``None`` reads it from the suffix.
    :param watermark_path: the watermark sidecar (JSON); default ``.sms-report-watermarks.json`` beside
        the target. Every export of one report must name the same one.
    :param csv_escape_formulas: CSV only: put ``'`` before a value a spreadsheet would run as a formula
        (``= + - @``, tab, CR; not a signed number). Off by default: the file keeps every value as the
        provider gave it (docs/security.md, "Reports").
    """

    def __init__(
        self,
        path: str | ObjectStoragePath,
        *,
        format: Format | None = None,
        watermark_path: str | ObjectStoragePath | None = None,
        csv_escape_formulas: bool = False,
    ) -> None:
        self.path = as_storage_path(path)
        self.format = format_of(self.path, format)
        self.csv_escape_formulas = bool(csv_escape_formulas)
        self._sidecar = None if watermark_path in (None, "") else as_storage_path(watermark_path)
        if self.format == "parquet":
            require_pyarrow()  # before any request: the error names the extra

    @property
    def sidecar(self) -> ObjectStoragePath:
        return self._sidecar if self._sidecar is not None else self.path.parent / SIDECAR

    def describe(self) -> str:
        return f"{describe_path(self.path)} ({self.format})"

    def open(self, export_key: str, *, incremental: bool) -> _FileWriter:
        if incremental:
            owner = self._state().get("files", {}).get(describe_path(self.path))
            if owner not in (None, export_key) and self.path.exists():
                raise SmsValidationError(
                    f"destination {describe_path(self.path)!r} holds another export ({owner}); an incremental "
                    "export writes one file per run: put {{ run_id }} or {{ dag_run.run_after | ds }} in the path",
                    field="destination", value=describe_path(self.path),
                )  # fmt: skip
        return _FileWriter(self, export_key)

    def watermark(
        self, provider: str, campaign_ids: Sequence[str], *, export_key: str | None = None
    ) -> dt.datetime | None:
        """The oldest of the campaigns' watermarks (None when one has none).

        With ``export_key``: a watermark that very export set is read as the value before it, so a
        retry of an export that had already committed exports the same rows again.
        """
        marks = self._state().get("watermarks", {})
        found: list[dt.datetime] = []
        for campaign_id in campaign_ids:
            entry = marks.get(f"{provider}/{campaign_id}")
            if entry is None:
                return None
            retried = export_key is not None and entry.get("export") == export_key
            value = entry.get("before") if retried else entry.get("at")
            if value is None:
                return None
            found.append(dt.datetime.fromisoformat(value))
        return min(found) if found else None

    def _state(self) -> dict[str, Any]:
        try:
            if not self.sidecar.exists():
                return {}
            data = json.loads(self.sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("Watermark file %s unreadable (%s): exporting everything", describe_path(self.sidecar), exc)
            return {}
        return data if isinstance(data, dict) else {}

    def _record(self, export_key: str, latest: dict[str, dt.datetime]) -> None:
        state = self._state()
        marks = state.setdefault("watermarks", {})
        for key, moment in latest.items():
            entry = marks.get(key) or {}
            if entry.get("export") != export_key:  # a retry keeps the value from before its first commit
                entry = {"before": entry.get("at"), "export": export_key}
            at = max(moment, dt.datetime.fromisoformat(entry["before"])) if entry.get("before") else moment
            marks[key] = {**entry, "at": at.isoformat()}
        state.setdefault("files", {})[describe_path(self.path)] = export_key
        _replace_with(self.sidecar, json.dumps(state, indent=1, sort_keys=True).encode("utf-8"), export_key)


def _partial(target: ObjectStoragePath, export_key: str) -> ObjectStoragePath:
    digest = hashlib.sha256(export_key.encode("utf-8")).hexdigest()[:16]
    return target.parent / f".{target.name}.{digest}.partial"


def _move(source: ObjectStoragePath, target: ObjectStoragePath) -> None:
    """Put ``source`` in ``target``'s place in one step (a rename locally; a server-side copy on object stores)."""
    source.replace(target)


def _replace_with(target: ObjectStoragePath, content: bytes, export_key: str) -> None:
    temporary = _partial(target, export_key)
    temporary.parent.mkdir(parents=True, exist_ok=True)
    temporary.write_bytes(content)
    _move(temporary, target)


class _FileWriter:
    """One export into a :class:`FileSink` (the ``ReportWriter`` protocol)."""

    def __init__(self, sink: FileSink, export_key: str) -> None:
        self.sink, self.export_key = sink, export_key
        self.partial = _partial(sink.path, export_key)
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        self.handle: IO[bytes] = self.partial.open("wb")  # truncates what a killed try left
        self.encoder = _ENCODERS[sink.format](self.handle, escape_formulas=sink.csv_escape_formulas)
        self.rows = 0
        self.latest: dict[tuple[str, str], dt.datetime] = {}  # (provider, campaign id) -> latest updated_at
        self.closed = False
        self.started = _clock()  # before the first page is read: the operator opens the writer first

    def write(self, records: Sequence[DeliveryRecord]) -> None:
        self.encoder.write(records)
        self.rows += len(records)
        latest = self.latest
        for record in records:
            moment = record.updated_at
            if moment is not None:
                key = (record.provider, record.campaign_id)
                known = latest.get(key)
                if known is None or moment > known:
                    latest[key] = moment

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.encoder.close()
            finally:
                self.handle.close()

    def commit(self) -> int:
        self._close()
        _move(self.partial, self.sink.path)
        # The watermark is the latest updated_at read minus how long the export ran: a status that changed
        # while the pages were read (on a page already read) is newer than the export's start, and the
        # latest time read is at most the provider's clock at the end; so this is at most the provider's
        # clock when the export began, whatever the skew between its clock and ours.
        ran = dt.timedelta(seconds=max(0.0, _clock() - self.started))
        self.sink._record(self.export_key, {f"{provider}/{campaign}": moment - ran
                                            for (provider, campaign), moment in self.latest.items()})
        log.info("Wrote %d delivery record(s) to %s", self.rows, self.sink.describe())
        return self.rows

    def abort(self) -> None:
        try:
            self._close()
        except Exception as exc:  # the data is being dropped anyway
            log.debug("closing an aborted report: %s", exc)
        try:
            self.partial.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("Could not remove %s: %s", describe_path(self.partial), exc)


__all__ = ["FORMATS", "FileSink", "as_storage_path", "format_of", "parquet_schema", "require_pyarrow"]
