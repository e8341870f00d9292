"""A SQL table as a delivery-report destination, through any ``common.sql`` connection (``DbApiHook``).

An export is written into a staging table of its own (named from the target and the export key) over one
held connection: per batch, one ``executemany`` of the statement the hook's dialect makes for ``insert_rows(
replace=True, replace_index=(provider, message_id))`` — its upsert: ``REPLACE INTO`` on SQLite and MySQL,
``INSERT ... ON CONFLICT DO UPDATE`` on PostgreSQL, ``MERGE`` where the dialect says so — with the cells
converted as the hook's ``_serialize_cell`` does, committed per batch (no transaction or lock is held for
the whole export). ``commit`` then moves the stage into the target in one transaction (delete the rows it
replaces, ``INSERT ... SELECT``, drop the stage), so the target only ever holds whole exports and one row per
``(provider, message_id)``: a task killed mid-export leaves the target as it was, and its retry (same export
key) drops the stale stage and starts again.

On SQLite the stage is a ``TEMP`` table of the held connection instead: SQLite keeps it in a temporary
file of that connection alone (deleted when it closes, so a killed export leaves nothing), never synced,
journalled or locked in the database file, so it needs no commit per batch either. Its rows go in by one
multi-row ``REPLACE`` per batch (``SqlWriter._stage_values`` says why not ``executemany``). A stage in the
database file cost a journal write and an fsync per batch and a ``DROP`` freeing every page at the end
(``bench/sql_stage.py`` measures both side by side). Where the target has exactly the report's columns, in
order, the copy is ``INSERT INTO target SELECT * FROM stage``: into an empty table (a first export) SQLite
then copies the stage's records and key entries as they are (its "transfer optimization") instead of
decoding and encoding every row, about 40% of the copy that runs after the last page.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import re
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from operator import attrgetter
from typing import Any, overload

from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.reports.record import COLUMNS, DeliveryRecord

log = logging.getLogger(__name__)

KEY: tuple[str, str] = ("provider", "message_id")
"""The primary key: one row per message, whatever retries happen."""

# Portable column types (SQLite, PostgreSQL, MySQL, SQL Server 2016+): plain SQL-92 names; ids stay text
# because providers' ids are not all numeric, and 255 keeps the two-column key within every index limit.
COLUMN_TYPES: dict[str, str] = {
    "provider": "VARCHAR(32) NOT NULL",
    "campaign_id": "VARCHAR(255) NOT NULL",
    "message_id": "VARCHAR(255) NOT NULL",
    "recipient": "VARCHAR(255) NOT NULL",
    "status": "VARCHAR(32) NOT NULL",
    "provider_status": "VARCHAR(255) NOT NULL",
    "parts": "INTEGER",
    "cost": "NUMERIC(18, 6)",
    "created_at": "TIMESTAMP WITH TIME ZONE",
    "updated_at": "TIMESTAMP WITH TIME ZONE",
    "error_code": "VARCHAR(255)",
}
assert tuple(COLUMN_TYPES) == COLUMNS, "COLUMN_TYPES and _row must follow DeliveryRecord"

# An unquoted identifier every SQL dialect accepts; 63 is PostgreSQL's limit (longer names are cut silently).
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def validate_table(table: str) -> tuple[str | None, str]:
    """``(schema, name)`` of ``table`` (``name`` or ``schema.name``), or SmsValidationError naming it.

    Names are put into SQL as they are (no driver can bind a table name), so only plain identifiers pass.
    """
    parts = table.split(".") if isinstance(table, str) else []
    if not 1 <= len(parts) <= 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise SmsValidationError(
            f"table={table!r}: expected a table name, optionally schema-qualified (schema.table), "
            "each part letters, digits and underscores, not starting with a digit, at most 63 characters",
            field="table",
            value=table,
        )
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def create_table_sql(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the report's columns, keyed by (provider, message_id)."""
    validate_table(table)
    columns = ",\n".join(f"    {name} {kind}" for name, kind in COLUMN_TYPES.items())
    return f"CREATE TABLE IF NOT EXISTS {table} (\n{columns},\n    PRIMARY KEY ({', '.join(KEY)})\n)"


WATERMARKS = "sms_report_watermarks"
"""Beside the target (same schema): per report table, provider and campaign, where the next incremental
export may start. Kept apart from the rows because the latest ``updated_at`` a table holds can be later than
a status change it missed (one made on a page already read while the export ran)."""

# How long an export ran (a test makes an export "take" an hour without waiting for it).
_clock = time.monotonic


def watermarks_table(table: str) -> str:
    """The watermark table that serves ``table`` (in its schema)."""
    schema, _ = validate_table(table)
    return f"{schema}.{WATERMARKS}" if schema else WATERMARKS


def create_watermarks_sql(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of the watermark table beside ``table``."""
    return (f"CREATE TABLE IF NOT EXISTS {watermarks_table(table)} (\n    report_table VARCHAR(255) NOT NULL,\n"
            "    provider VARCHAR(32) NOT NULL,\n    campaign_id VARCHAR(255) NOT NULL,\n"
            "    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,\n"
            "    PRIMARY KEY (report_table, provider, campaign_id)\n)")  # fmt: skip


def stage_table(table: str, export_key: str, *, temporary: bool = False) -> str:
    """The staging table of one export: beside the target (same schema), the same for a retry of it;
    ``temporary``: SQLite's ``temp`` schema of the connection instead (:func:`is_sqlite`)."""
    schema, _ = validate_table(table)
    digest = hashlib.sha256(f"{table}\0{export_key}".encode()).hexdigest()[:16]
    name = f"sms_report_stage_{digest}"
    if temporary:
        schema = "temp"
    return f"{schema}.{name}" if schema else name


def is_sqlite(hook: Any) -> bool:
    """Whether ``hook`` talks to SQLite, whose stage is a ``TEMP`` table (the module's docstring says why)."""
    return getattr(hook, "conn_type", None) == "sqlite"


@overload
def _utc(value: datetime) -> datetime: ...
@overload
def _utc(value: None) -> None: ...
def _utc(value: datetime | None) -> datetime | None:
    """Timestamps in UTC, so text-stored ones (SQLite) sort right; naive ones are taken as UTC."""
    if value is None or value.tzinfo is timezone.utc:
        return value
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


_CAMPAIGN = attrgetter("provider", "campaign_id")
_UPDATED = attrgetter("updated_at")


def _latest(times: list[datetime]) -> datetime | None:
    """The latest of ``times`` (None for none), comparing in C unless aware and naive ones are mixed."""
    if not times:
        return None
    try:
        return max(times)
    except TypeError:
        return max(times, key=_utc)


def _row(r: DeliveryRecord) -> tuple[Any, ...]:
    """The record's values in COLUMNS order (spelled out: this runs once per message)."""
    return (r.provider, r.campaign_id, r.message_id, r.recipient, r.status, r.provider_status, r.parts, r.cost,
            _utc(r.created_at), _utc(r.updated_at), r.error_code)  # fmt: skip


@functools.lru_cache(maxsize=4096)
def _iso(value: datetime | None) -> str | None:
    """The UTC ISO 8601 text of ``value`` (None kept); equal instants share an entry and their UTC text.

    Cached: a report's timestamps repeat (whole seconds); one call per cell, hit or miss (a miss was three).
    """
    return None if value is None else _utc(value).isoformat()


def _text_row(r: DeliveryRecord) -> tuple[Any, ...]:
    """``_row`` as ``DbApiHook._serialize_cells`` makes it (str of each value, datetimes ISO 8601, None kept)."""
    return (r.provider, r.campaign_id, r.message_id, r.recipient, r.status, r.provider_status,
            None if r.parts is None else str(r.parts), None if r.cost is None else str(r.cost), _iso(r.created_at),
            _iso(r.updated_at), r.error_code)  # fmt: skip


def _base_serialize() -> Any:
    try:
        from airflow.providers.common.sql.hooks.sql import DbApiHook
    except ImportError:  # pragma: no cover - the sink is only made where common.sql is installed
        return None
    return DbApiHook._serialize_cell


_BASE_SERIALIZE = _base_serialize()


def _as_utc(value: Any) -> datetime | None:
    """A watermark read back: a datetime (PostgreSQL) or ISO text (SQLite), made timezone-aware UTC."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


class SqlSink:
    """Delivery records into ``table`` over the ``common.sql`` connection ``conn_id``."""

    def __init__(self, conn_id: str, table: str, *, create_table: bool = False, batch_size: int = 1000) -> None:
        validate_table(table)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise SmsValidationError(
                f"batch_size={batch_size!r}: expected a positive integer", field="batch_size", value=batch_size
            )
        self.conn_id = conn_id
        self.table = table
        self.create_table = create_table
        self.batch_size = batch_size
        self._hook: Any = None

    @property
    def hook(self) -> Any:
        """The connection's own DbApiHook (SqliteHook, PostgresHook, ...), looked up once."""
        if self._hook is None:
            from airflow.providers.common.compat.sdk import BaseHook
            from airflow.providers.common.sql.hooks.sql import DbApiHook

            hook = BaseHook.get_connection(self.conn_id).get_hook()
            if not isinstance(hook, DbApiHook):
                raise SmsValidationError(
                    f"sql_conn_id={self.conn_id!r}: {type(hook).__name__} is not a common.sql (DbApiHook) hook",
                    field="sql_conn_id",
                    value=self.conn_id,
                )
            self._hook = hook
        return self._hook

    def describe(self) -> str:
        """Where the rows go: table and connection id (never the connection's URI)."""
        return f"table {self.table} on connection {self.conn_id}"

    def open(self, export_key: str, *, incremental: bool) -> SqlWriter:
        """Begin an export into a fresh staging table (a stale one from a killed try is dropped)."""
        if self.create_table:
            self.hook.run(create_table_sql(self.table))
        if is_sqlite(self.hook):
            # Made by the writer on its own connection: a TEMP table is that connection's alone.
            self.hook.run(create_watermarks_sql(self.table))
            stage = stage_table(self.table, export_key, temporary=True)
            return SqlWriter(self, stage, incremental=incremental, temporary=True)
        stage = stage_table(self.table, export_key)
        self.hook.run([create_watermarks_sql(self.table), f"DROP TABLE IF EXISTS {stage}", create_table_sql(stage)])
        return SqlWriter(self, stage, incremental=incremental)

    def watermark(
        self, provider: str, campaign_ids: Sequence[str], *, export_key: str | None = None
    ) -> datetime | None:
        """The oldest of the campaigns' watermarks (:data:`WATERMARKS`); None when one has none.

        None, too, when the watermark table cannot be read (a table exported before it existed): a full
        export, which is always correct (only slower); a broken connection then fails on the first write.
        ``export_key`` is accepted for the file sink's sake and not needed: rows a committed try wrote are in
        the table, so its retry may start from them.
        """
        ids = sorted({str(campaign_id) for campaign_id in campaign_ids})
        if not ids:
            return None
        mark = self.hook.placeholder
        sql = (
            f"SELECT campaign_id, updated_at FROM {watermarks_table(self.table)} "
            f"WHERE report_table = {mark} AND provider = {mark} AND campaign_id IN ({', '.join([mark] * len(ids))})"
        )
        try:
            found = self.hook.get_records(sql, parameters=[self.table, provider, *ids])
        except Exception as exc:  # the drivers' "no such table" errors share no class
            log.warning("No watermark from %s (%s): exporting everything", self.describe(), type(exc).__name__)
            return None
        marks = {str(campaign_id): _as_utc(moment) for campaign_id, moment in found or ()}
        if any(marks.get(campaign_id) is None for campaign_id in ids):
            return None  # a campaign never exported here: all of it
        return min(mark for mark in marks.values() if mark is not None)


_SQLITE_LIMIT_VARIABLE_NUMBER = 9  # sqlite3's constant from Python 3.11 (SQLite's own number)
_IDS_PER_DELETE = 500  # campaign ids bound per DELETE: within SQLite's oldest limit of 999 values
SQLITE_ROWS = 1000
"""Rows per statement into a SQLite stage (at most; fewer where SQLite allows fewer bound values)."""


@functools.lru_cache(maxsize=16)
def _values_sql(stage: str, rows: int) -> str:
    """SQLite's upsert of ``rows`` rows into ``stage`` in one statement."""
    values = ", ".join([f"({', '.join('?' * len(COLUMNS))})"] * rows)
    return f"REPLACE INTO {stage} ({', '.join(COLUMNS)}) VALUES {values}"


class SqlWriter:
    """One export's staging table; ``commit`` moves it into the target in one transaction.

    One connection and cursor are held for the whole export: every batch is one ``executemany`` of the
    hook's own upsert statement (generated once, by the hook's dialect) and a commit of the stage; the
    target changes only in ``commit``'s one transaction. Use it from one thread (sqlite3 connections
    refuse another). ``temporary`` (SQLite): the stage is a ``TEMP`` table the writer creates on its
    connection and that goes with it, written by multi-row statements and not committed per batch.
    """

    def __init__(self, sink: SqlSink, stage: str, *, incremental: bool, temporary: bool = False) -> None:
        self.sink = sink
        self.stage = stage
        self.incremental = incremental
        self.temporary = temporary
        self._buffer: list[tuple[Any, ...]] = []
        self.written = 0
        # The latest updated_at written per (provider, campaign_id), for the watermarks: kept as batches pass
        # rather than read back from the stage at commit (a GROUP BY over every row, serial after the last page).
        self.latest: dict[tuple[str, str], datetime | None] = {}
        self._conn: Any = None
        self._cur: Any = None
        self._sql: str | None = None
        self._rows_per_statement = 0
        # SQLite: the target's columns are the report's, in order, so the copy may be `SELECT *` (commit).
        self.same_columns = False
        self.started = _clock()  # before the first page is read: the operator opens the writer first

    def write(self, records: Sequence[DeliveryRecord]) -> None:
        """Buffer the records; every ``batch_size`` of them go to the stage in one upserting executemany."""
        for key, group in itertools.groupby(records, _CAMPAIGN):  # pages come a campaign at a time
            times = [*filter(None, map(_UPDATED, group))]  # in C: no Python step per record
            seen = self.latest.get(key)
            if seen is not None:
                times.append(seen)
            self.latest[key] = _latest(times)
        if type(self.sink.hook)._serialize_cell is _BASE_SERIALIZE:
            # What DbApiHook._serialize_cells makes of _row, without a call per cell; the hook looked at
            # once per batch, not once per record.
            self._buffer.extend(map(_text_row, records))
        else:
            self._buffer.extend(map(self._cells, records))
        while len(self._buffer) >= self.sink.batch_size:
            batch, self._buffer = self._buffer[: self.sink.batch_size], self._buffer[self.sink.batch_size :]
            self._flush(batch)

    def _cells(self, record: DeliveryRecord) -> tuple[Any, ...]:
        """A hook with its own ``_serialize_cell`` converts each cell its way."""
        return tuple(self.sink.hook._serialize_cells(_row(record), self._conn))

    def _cursor(self) -> Any:
        if self._cur is None:
            hook = self.sink.hook
            self._conn = hook.get_conn()
            if hook.supports_autocommit:
                hook.set_autocommit(self._conn, False)
            self._cur = self._conn.cursor()
            if self.temporary:
                self._cur.execute(create_table_sql(self.stage))
                limit = getattr(self._conn, "getlimit", None)  # Python 3.11+; 999 was SQLite's default before 3.32
                variables = limit(_SQLITE_LIMIT_VARIABLE_NUMBER) if limit else 999
                self._rows_per_statement = max(1, min(SQLITE_ROWS, variables // len(COLUMNS)))
        return self._cur

    def _flush(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        cur = self._cursor()
        if self.temporary:
            # Not committed: a transaction that wrote only TEMP tables locks nothing in the database file.
            self._stage_values(cur, rows)
        else:
            if self._sql is None:
                # replace: a message listed twice (a page that shifted under us) stays one row in the stage.
                self._sql = self.sink.hook._generate_insert_sql(
                    self.stage, rows[0], list(COLUMNS), True, replace_index=list(KEY)
                )
            cur.executemany(self._sql, rows)
            self._conn.commit()  # the stage only: a long transaction would hold the database's locks throughout
        self.written += len(rows)

    def _stage_values(self, cur: Any, rows: list[tuple[Any, ...]]) -> None:
        """SQLite: one ``REPLACE INTO stage ... VALUES (...), (...), ...`` per up to :data:`SQLITE_ROWS` rows.

        Not ``executemany``: it steps once per row, and sqlite3 lets go of the GIL around every step; with
        the page reader busy in another thread, taking it back waited out a switch interval each time (a
        batch of 1,000 rows took 0.5 s instead of 8 ms beside a busy thread; ``docs/benchmarks.md``, row 8).
        """
        per = self._rows_per_statement
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            cur.execute(_values_sql(self.stage, len(chunk)), [*itertools.chain.from_iterable(chunk)])

    def commit_sql(self, mark: str) -> list[tuple[str, tuple[Any, ...]]]:
        """The statements of the commit transaction, in order, with their parameters (``mark``: the hook's
        placeholder).

        Full: the exported campaigns become exactly the export (a message the provider no longer lists does
        not linger): their rows are deleted by campaign id, bound, not by a subquery per row of the table
        (SQLite ran that one as a scan of the stage for each row of another campaign: hours for a table
        holding a million rows of other campaigns). Incremental: only the exported messages are replaced.
        """
        table, stage = self.sink.table, self.stage
        columns = ", ".join(COLUMNS)
        # SQLite, incremental: REPLACE finds each staged message's row through the table's key (an index
        # look-up per staged row), where the DELETE below reads every row of the table.
        replace = self.incremental and self.temporary
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        if self.same_columns:  # positional, so only where the names are the report's, in order
            copy = f"{verb} INTO {table} SELECT * FROM {stage}"
        else:
            copy = f"{verb} INTO {table} ({columns}) SELECT {columns} FROM {stage}"
        if replace:
            return [(copy, ())]
        if self.incremental:
            # The target is named unqualified inside the subquery: `schema.table.column` is not valid everywhere.
            _, name = validate_table(table)
            match = " AND ".join(f"s.{column} = {name}.{column}" for column in KEY)
            statements = [(f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM {stage} s WHERE {match})", ())]
        else:
            statements = self._delete_campaigns(mark)
        statements.append((copy, ()))
        # A TEMP stage goes with its connection, closed right after the commit: a DROP would free every
        # page first (~10 times the close's cost).
        return statements if self.temporary else [*statements, (f"DROP TABLE {stage}", ())]

    def _delete_campaigns(self, mark: str) -> list[tuple[str, tuple[Any, ...]]]:
        """``DELETE`` of the rows of every campaign written, per provider, at most :data:`_IDS_PER_DELETE` ids each."""
        by_provider: dict[str, list[str]] = {}
        for provider, campaign_id in self.latest:
            by_provider.setdefault(provider, []).append(campaign_id)
        statements = []
        for provider, ids in sorted(by_provider.items()):
            ids.sort()
            for start in range(0, len(ids), _IDS_PER_DELETE):
                chunk = ids[start : start + _IDS_PER_DELETE]
                statements.append((
                    f"DELETE FROM {self.sink.table} WHERE provider = {mark} AND campaign_id IN "
                    f"({', '.join([mark] * len(chunk))})", (provider, *chunk),
                ))  # fmt: skip
        return statements

    def commit(self) -> int:
        """Flush the rest, then replace the target's rows with the stage's: one transaction, one commit."""
        self._flush(self._buffer)
        self._buffer = []
        cur = self._cursor()
        try:
            cur.execute(f"SELECT COUNT(*) FROM {self.stage}")
            rows = int(cur.fetchone()[0])
            latest = [(provider, campaign_id, moment) for (provider, campaign_id), moment in self.latest.items()]
            if self.temporary:
                self.same_columns = self._target_columns(cur) == list(COLUMNS)
            for statement, parameters in self.commit_sql(self.sink.hook.placeholder):
                # No parameters, no formatting: a driver with %s placeholders would read "%" as one.
                cur.execute(statement, parameters) if parameters else cur.execute(statement)
            self._save_watermarks(cur, latest)
            self._conn.commit()
        except BaseException:
            self._release(rollback=True)
            raise
        self._release(rollback=False)
        log.info("Report committed: %d rows into %s", rows, self.sink.describe())
        return rows

    def _target_columns(self, cur: Any) -> list[str]:
        """SQLite: the target's column names in table order (none when it does not exist)."""
        schema, name = validate_table(self.sink.table)
        cur.execute(f"PRAGMA {schema + '.' if schema else ''}table_info({name})")
        return [str(column[1]) for column in cur.fetchall()]

    def _save_watermarks(self, cur: Any, latest: list[tuple[Any, Any, Any]]) -> None:
        """Per campaign exported, the latest updated_at read minus how long the export ran (same transaction).

        A status that changed while the pages were read (on a page already read) is newer than the export's
        start; the latest time read is at most the provider's clock at the end; so this is at most the
        provider's clock when the export began, whatever the skew between its clock and ours.
        """
        ran = timedelta(seconds=max(0.0, _clock() - self.started))
        hook, table, mark = self.sink.hook, self.sink.table, self.sink.hook.placeholder
        marks = watermarks_table(table)
        for provider, campaign_id, moment in latest:
            at = _as_utc(moment)
            if at is None:  # no times at all (a provider without them): the next export reads everything
                continue
            key = (table, provider, campaign_id)
            where = f"WHERE report_table = {mark} AND provider = {mark} AND campaign_id = {mark}"
            cur.execute(f"SELECT updated_at FROM {marks} {where}", key)
            before = [_as_utc(value) for (value,) in cur.fetchall()]
            # Never backwards: an incremental export of a few early changes does not undo what an export before
            # it already covered (both bounds hold; the later one reads less).
            at = max([at - ran, *(moment for moment in before if moment is not None)])
            cur.execute(f"DELETE FROM {marks} {where}", key)
            cur.execute(f"INSERT INTO {marks} (report_table, provider, campaign_id, updated_at) "
                        f"VALUES ({mark}, {mark}, {mark}, {mark})",
                        tuple(hook._serialize_cells((*key, at), self._conn)))  # fmt: skip

    def _release(self, *, rollback: bool) -> None:
        conn, cur, self._conn, self._cur = self._conn, self._cur, None, None
        if conn is None:
            return
        try:
            if rollback:
                conn.rollback()
        finally:
            try:
                cur.close()
            finally:
                conn.close()

    def abort(self) -> None:
        """Roll back what was staged and drop the stage: the target was never touched."""
        self._buffer = []
        try:
            self._release(rollback=True)
        except Exception as exc:  # a broken connection: the stage is dropped over a new one below
            log.warning("Rolling back the report's stage failed (%s)", type(exc).__name__)
        if not self.temporary:  # a TEMP stage went with the connection
            self.sink.hook.run(f"DROP TABLE IF EXISTS {self.stage}")
