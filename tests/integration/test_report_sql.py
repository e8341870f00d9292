"""SqlSink over a real common.sql connection (SQLite, defined as AIRFLOW_CONN_*): one row per message whatever
retries, kills and aborts happen, incremental vs full exports, the watermark."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.reports import sql
from airflow_sms_provider.reports.record import COLUMNS, DeliveryRecord
from airflow_sms_provider.reports.sql import SqlSink, _row, stage_table
from tests.worker_kill import wait_until

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
WATERMARKS = "sms_report_watermarks"  # the watermark table beside the report table
HUNG = 900.0  # seconds: a child process this slow is hung, not loaded


def records(campaign: str, ids: range, status: str = "delivered", provider: str = "mobizon") -> list[DeliveryRecord]:
    return [
        DeliveryRecord(
            provider=provider, campaign_id=campaign, message_id=f"{campaign}-{i}", recipient=f"7700{i:07d}",
            status=status, provider_status=status.upper(), parts=1, cost=Decimal("0.05"),
            created_at=T0, updated_at=T0 + timedelta(seconds=i), error_code=None,
        )
        for i in ids
    ]


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``reports_db``: a SQLite connection to a fresh file."""
    path = tmp_path / "reports.db"
    monkeypatch.setenv("AIRFLOW_CONN_REPORTS_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    yield path


def rows(path: Path, sql: str = "SELECT message_id, status FROM delivery ORDER BY message_id") -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute(sql))


def tables(path: Path) -> set[str]:
    return {name for (name,) in rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}


def export(sink: SqlSink, key: str, batches: list[list[DeliveryRecord]], incremental: bool = False) -> int:
    writer = sink.open(key, incremental=incremental)
    for batch in batches:
        writer.write(batch)
    return writer.commit()


def test_export_creates_table_and_writes_every_field(db: Path) -> None:
    sink = SqlSink("reports_db", "delivery", create_table=True, batch_size=4)
    assert export(sink, "d/t/r1", [records("7", range(5)), records("7", range(5, 10))]) == 10
    assert rows(db, "SELECT * FROM delivery WHERE message_id = '7-3'") == [
        ("mobizon", "7", "7-3", "77000000003", "delivered", "DELIVERED", 1, 0.05,
         "2026-11-30T12:00:00+00:00", "2026-11-30T12:00:03+00:00", None)
    ]
    assert len(rows(db)) == 10
    assert tables(db) == {"delivery", WATERMARKS}  # the stage is gone


def test_a_message_listed_twice_is_one_row(db: Path) -> None:
    sink = SqlSink("reports_db", "delivery", create_table=True, batch_size=3)
    # A page that shifted under the listing repeats messages, the second time with a newer status.
    assert export(sink, "k", [records("7", range(4), "pending"), records("7", range(2, 6))]) == 6
    assert rows(db) == [("7-0", "pending"), ("7-1", "pending")] + [(f"7-{i}", "delivered") for i in range(2, 6)]


def test_retry_with_the_same_key_leaves_one_row_per_message(db: Path) -> None:
    sink = SqlSink("reports_db", "delivery", create_table=True)
    export(sink, "d/t/r1", [records("7", range(100), "pending")])
    export(sink, "d/t/r1", [records("7", range(100), "delivered")])
    assert rows(db, "SELECT COUNT(*), COUNT(DISTINCT message_id), MIN(status) FROM delivery") == [
        (100, 100, "delivered")
    ]


def test_full_export_replaces_its_campaigns_and_keeps_the_others(db: Path) -> None:
    sink = SqlSink("reports_db", "delivery", create_table=True)
    export(sink, "a", [records("7", range(5)), records("8", range(3))])
    export(sink, "b", [records("7", range(2), "undelivered")])  # campaign 7 now lists two messages
    assert rows(db) == [("7-0", "undelivered"), ("7-1", "undelivered"), ("8-0", "delivered"),
                        ("8-1", "delivered"), ("8-2", "delivered")]


def test_incremental_export_updates_only_the_changed_messages(db: Path) -> None:
    sink = SqlSink("reports_db", "delivery", create_table=True)
    export(sink, "a", [records("7", range(5), "pending")])
    export(sink, "b", [records("7", range(3, 4), "delivered")], incremental=True)
    assert rows(db) == [("7-0", "pending"), ("7-1", "pending"), ("7-2", "pending"), ("7-3", "delivered"),
                        ("7-4", "pending")]


@pytest.mark.parametrize("incremental", [False, True], ids=["full", "incremental"])
def test_the_commit_never_reads_the_stage_once_per_row_of_the_table(db: Path, incremental: bool) -> None:
    """SQLite ran ``DELETE ... WHERE EXISTS (SELECT 1 FROM stage ...)`` as a search of the stage for every row
    of the table, by provider only: for a row of another campaign, the whole stage (hours at a million rows
    each). The plans of the commit's statements hold no correlated subquery."""
    sink = SqlSink("reports_db", "delivery", create_table=True, batch_size=100)
    export(sink, "other", [records("8", range(300)), records("9", range(3), provider="bsg")])
    writer = sink.open("k", incremental=incremental)
    writer.write(records("7", range(300)) + records("8", range(2), "expired"))
    cur = writer._cursor()
    for statement, parameters in writer.commit_sql("?"):
        plan = " / ".join(str(step[3]) for step in cur.execute(f"EXPLAIN QUERY PLAN {statement}", parameters))
        assert "CORRELATED" not in plan, (statement, plan)
    writer.commit()
    counted = rows(db, "SELECT provider, campaign_id, status, COUNT(*) FROM delivery GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    # Full: campaign 8 is exactly its two listed messages now; incremental: those two replaced, the rest kept.
    eight = [("mobizon", "8", "delivered", 298), ("mobizon", "8", "expired", 2)] if incremental else [
        ("mobizon", "8", "expired", 2)]
    assert counted == [("bsg", "9", "delivered", 3), ("mobizon", "7", "delivered", 300), *eight]


def test_a_full_export_of_many_campaigns_replaces_exactly_them(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql, "_IDS_PER_DELETE", 2)  # campaign ids are deleted a few at a time
    sink = SqlSink("reports_db", "delivery", create_table=True)
    export(sink, "a", [records(str(c), range(3), "pending") for c in range(1, 7)]
           + [records(str(c), range(3), "pending", provider="bsg") for c in range(1, 3)])  # fmt: skip
    export(sink, "b", [records(str(c), range(1), "delivered") for c in (1, 3, 4, 6, 10)])
    per_campaign = "SELECT provider, campaign_id, COUNT(*), MIN(status) FROM delivery GROUP BY 1, 2 ORDER BY 1, 2"
    assert rows(db, per_campaign) == [
        ("bsg", "1", 3, "pending"), ("bsg", "2", 3, "pending"), ("mobizon", "1", 1, "delivered"),
        ("mobizon", "10", 1, "delivered"), ("mobizon", "2", 3, "pending"), ("mobizon", "3", 1, "delivered"),
        ("mobizon", "4", 1, "delivered"), ("mobizon", "5", 3, "pending"), ("mobizon", "6", 1, "delivered"),
    ]


def test_abort_leaves_the_target_and_no_stage(db: Path) -> None:
    sink = SqlSink("reports_db", "delivery", create_table=True, batch_size=2)
    export(sink, "a", [records("7", range(3), "pending")])
    writer = sink.open("b", incremental=False)
    writer.write(records("7", range(3), "delivered"))
    # On SQLite the stage is a TEMP table of the writer's connection: never in the database file.
    assert writer.stage == stage_table("delivery", "b", temporary=True) == f"temp.{stage_table('delivery', 'b')}"
    assert writer._cursor().execute(f"SELECT COUNT(*) FROM {writer.stage}").fetchone() == (2,)
    assert tables(db) == {"delivery", WATERMARKS}
    writer.abort()
    assert tables(db) == {"delivery", WATERMARKS}
    assert rows(db) == [("7-0", "pending"), ("7-1", "pending"), ("7-2", "pending")]


def test_a_stage_in_the_database_file_where_temp_tables_are_not_used(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other databases (PostgreSQL in the deployment test) stage beside the target, committed per batch: the
    same path over SQLite, with its stage visible between batches, dropped by abort and by commit."""
    monkeypatch.setattr(sql, "is_sqlite", lambda hook: False)
    sink = SqlSink("reports_db", "delivery", create_table=True, batch_size=2)
    export(sink, "a", [records("7", range(3), "pending")])
    writer = sink.open("b", incremental=False)
    writer.write(records("7", range(3), "delivered"))
    assert rows(db, f"SELECT COUNT(*) FROM {stage_table('delivery', 'b')}") == [(2,)]  # committed per batch
    writer.abort()
    assert tables(db) == {"delivery", WATERMARKS}
    assert export(sink, "b", [records("7", range(4), "delivered"), records("7", range(3, 5), "expired")]) == 5
    assert rows(db) == [(f"7-{i}", "delivered") for i in range(3)] + [("7-3", "expired"), ("7-4", "expired")]
    assert tables(db) == {"delivery", WATERMARKS}


def test_no_lock_is_held_between_batches(db: Path) -> None:
    """Other writers and readers of the database go on while an export stages its rows."""
    sink = SqlSink("reports_db", "delivery", create_table=True, batch_size=2)
    export(sink, "a", [records("8", range(2))])
    writer = sink.open("b", incremental=False)
    writer.write(records("7", range(5)))  # two batches staged, one row buffered
    with sqlite3.connect(db, timeout=0) as other:  # timeout 0: a held lock fails at once ("database is locked")
        other.execute("BEGIN IMMEDIATE")
        other.execute("DELETE FROM delivery WHERE message_id = '8-1'")
    assert rows(db) == [("8-0", "delivered")]
    assert writer.commit() == 5
    assert len(rows(db)) == 6


KILLED_EXPORT = textwrap.dedent(
    """
    import sys
    from tests.integration.test_report_sql import records
    from airflow_sms_provider.reports.sql import SqlSink

    writer = SqlSink("reports_db", "delivery", create_table=True, batch_size=100).open("d/t/r2", incremental=False)
    writer.write(records("7", range(250), "delivered"))  # two batches are in the stage, 50 in memory
    staged = writer._cursor().execute(f"SELECT COUNT(*) FROM {writer.stage}").fetchone()[0]
    with open(sys.argv[1], "w") as written:  # stdout carries Airflow's log lines: a file says "written"
        written.write(str(staged))
    sys.stdin.read()  # parked until killed (or until the test's end of the pipe closes: no orphan)
    """
)


def test_export_killed_mid_way_leaves_the_target_and_its_retry_one_row_per_message(db: Path) -> None:
    sink = SqlSink("reports_db", "delivery", create_table=True, batch_size=100)
    export(sink, "d/t/r1", [records("7", range(250), "pending")])
    written = db.with_name("written")
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_EXPORT, str(written)], stdout=subprocess.DEVNULL, stdin=subprocess.PIPE,
        env=os.environ.copy(), cwd=Path(__file__).resolve().parents[2],
    )
    try:
        # The child's cold Airflow import took over 60 s at load 14 on 2 cores: wait for its file or its end,
        # not for a time. The ceiling is a guard against a hung child only.
        wait_until(lambda: (written.exists() and written.read_text()) or child.poll() is not None, HUNG,
                   "the export to write two batches")
        assert child.poll() is None, "the export ended before it was killed"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()  # SIGKILL cannot be refused: no deadline needed
        assert child.stdin is not None
        child.stdin.close()
    assert child.returncode == -signal.SIGKILL
    # The killed try reached its stage (a TEMP table, gone with its process), never the target.
    assert written.read_text() == "200"
    assert tables(db) == {"delivery", WATERMARKS}
    assert rows(db, "SELECT COUNT(*), MIN(status), MAX(status) FROM delivery") == [(250, "pending", "pending")]

    assert export(sink, "d/t/r2", [records("7", range(250), "delivered")]) == 250  # the retry
    assert rows(db, "SELECT COUNT(*), COUNT(DISTINCT message_id), MIN(status) FROM delivery") == [
        (250, 250, "delivered")
    ]
    assert tables(db) == {"delivery", WATERMARKS}


def test_watermark(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Exports that take no time: the watermark is the data's.
    monkeypatch.setattr(sql, "_clock", lambda: 0.0, raising=False)
    sink = SqlSink("reports_db", "delivery", create_table=True)
    assert sink.watermark("mobizon", ["7"]) is None  # no table yet
    export(sink, "a", [records("7", range(10)), records("8", range(20)), records("7", range(30), provider="bsg")])
    assert sink.watermark("mobizon", ["7"]) == T0 + timedelta(seconds=9)
    # The oldest of the two (as documented); MAX over both campaigns gave 8's, skipping 7's changes in between.
    assert sink.watermark("mobizon", ["7", "8"]) == T0 + timedelta(seconds=9)
    assert sink.watermark("mobizon", ["9"]) is None
    assert sink.watermark("ogangi", ["7"]) is None
    assert sink.watermark("mobizon", []) is None


def test_schema_qualified_table(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql, "_clock", lambda: 0.0, raising=False)
    sink = SqlSink("reports_db", "main.delivery", create_table=True)  # SQLite's schema of the main database
    assert export(sink, "a", [records("7", range(3))]) == 3
    export(sink, "b", [records("7", range(1), "failed")], incremental=True)
    assert rows(db)[0] == ("7-0", "failed")
    assert sink.watermark("mobizon", ["7"]) == T0 + timedelta(seconds=2)


@pytest.mark.parametrize("incremental", [False, True], ids=["full", "incremental"])
@pytest.mark.parametrize(
    "columns",
    [list(reversed(COLUMNS)), [*COLUMNS, "note"]],
    ids=["the-same-columns-in-another-order", "one-more-column"],
)
def test_a_table_of_its_own_shape_gets_each_value_in_its_named_column(
    db: Path, columns: list[str], incremental: bool
) -> None:
    """A table made by its owner: the copy names the columns unless they are exactly the report's, in order."""
    with sqlite3.connect(db) as conn:
        conn.execute(f"CREATE TABLE delivery ({', '.join(columns)}, PRIMARY KEY (provider, message_id))")
    sink = SqlSink("reports_db", "delivery")
    assert export(sink, "a", [records("7", range(3), "pending")]) == 3
    assert export(sink, "b", [records("7", range(1, 2))], incremental=incremental) == 1
    expected = [("7-1", "delivered", "77000000001")]  # a full export: the campaign is exactly what it lists
    if incremental:
        expected = [("7-0", "pending", "77000000000"), *expected, ("7-2", "pending", "77000000002")]
    assert rows(db, "SELECT message_id, status, recipient FROM delivery ORDER BY message_id") == expected


@pytest.mark.parametrize("table", ["delivery", "main.delivery"])
def test_a_table_made_by_create_table_is_copied_into_by_position(db: Path, table: str) -> None:
    writer = SqlSink("reports_db", table, create_table=True).open("a", incremental=False)
    writer.write(records("7", range(3)))
    assert writer.commit() == 3
    assert writer.same_columns  # `INSERT INTO delivery SELECT * FROM <stage>` (commit_sql's tests)
    assert len(rows(db)) == 3


def test_sqlite_copies_the_stage_into_an_empty_table_record_by_record() -> None:
    """The stage and a table made by ``create_table`` are alike enough for SQLite's transfer optimization
    (``INSERT INTO t SELECT * FROM s`` copying records and key entries as they are: its VDBE program reads
    ``RowData``), the part of the commit that runs after the last page; a schema change that broke it would
    slow the commit of a first export down by about 40% and fail here."""
    conn = sqlite3.connect(":memory:")
    conn.execute(sql.create_table_sql("delivery"))
    conn.execute(sql.create_table_sql("temp.stage"))
    program = [op for _, op, *_ in conn.execute("EXPLAIN INSERT INTO delivery SELECT * FROM temp.stage")]
    assert "RowData" in program
    named = ", ".join(COLUMNS)
    copy = f"INSERT INTO delivery ({named}) SELECT {named} FROM temp.stage"
    program = [op for _, op, *_ in conn.execute(f"EXPLAIN {copy}")]
    assert "RowData" not in program  # the column-list form decodes every row
    conn.close()


def test_without_create_table_a_missing_table_fails_the_commit(db: Path) -> None:
    writer = SqlSink("reports_db", "delivery").open("a", incremental=False)
    writer.write(records("7", range(3)))
    with pytest.raises(sqlite3.OperationalError, match="no such table: delivery"):
        writer.commit()


def test_a_connection_without_a_sql_hook_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_NOT_SQL", json.dumps({"conn_type": "mobizon", "host": "http://127.0.0.1:9"}))
    with pytest.raises(SmsValidationError, match=r"sql_conn_id='not_sql': MobizonHook is not a common.sql"):
        SqlSink("not_sql", "delivery").watermark("mobizon", ["7"])


@pytest.mark.parametrize("temporary", [True, False], ids=["sqlite-temp-stage", "stage-in-the-database"])
def test_one_held_connection_and_one_statement_per_batch(
    db: Path, monkeypatch: pytest.MonkeyPatch, temporary: bool
) -> None:
    """The stage is written over one connection, the cells exactly as DbApiHook._serialize_cells makes them
    (str, ISO 8601 UTC, None kept): on SQLite a batch per multi-row REPLACE into the TEMP stage, with as many
    rows per statement as SQLite binds values; elsewhere a batch per executemany of the dialect's upsert."""
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    if not temporary:
        monkeypatch.setattr(sql, "is_sqlite", lambda hook: False)
    sink = SqlSink("reports_db", "delivery", create_table=True, batch_size=100)
    hook, real_get_conn = sink.hook, sink.hook.get_conn
    connections: list[Any] = []
    calls: list[tuple[str, str, list[Any]]] = []

    class Cursor:  # sqlite3's cursor type cannot be patched: wrap it
        def __init__(self, cur: Any) -> None:
            self.cur = cur

        def executemany(self, sql: str, rows: Any) -> Any:
            calls.append(("executemany", sql, list(rows)))
            return self.cur.executemany(sql, calls[-1][2])

        def execute(self, sql: str, parameters: Any = ()) -> Any:
            if sql.startswith("REPLACE INTO"):  # the stage's rows (not the watermarks')
                calls.append(("execute", sql, list(parameters)))
            return self.cur.execute(sql, parameters)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.cur, name)

    class Conn:
        def __init__(self, conn: Any) -> None:
            self.conn = conn

        def cursor(self) -> Cursor:
            return Cursor(self.conn.cursor())

        def getlimit(self, category: int) -> int:
            assert category == sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER
            return len(COLUMNS) * 60 + 5  # 60 rows' values per statement, not the batch's 100

        def __getattr__(self, name: str) -> Any:
            return getattr(self.conn, name)

    def get_conn() -> Any:
        connections.append(Conn(real_get_conn()))
        return connections[-1]

    monkeypatch.setattr(hook, "get_conn", get_conn)
    writer = sink.open("k", incremental=False)
    connections.clear()  # open's own statements (CREATE TABLE ...) run over connections of their own
    batch = records("7", range(250))
    for part in (batch[:120], batch[120:]):
        writer.write(part)
    assert writer.commit() == 250
    assert len(connections) == 1
    row = f"({', '.join('?' * len(COLUMNS))})"
    if temporary:
        stage = f"temp.{stage_table('delivery', 'k')}"
        assert [(how, len(values)) for how, _, values in calls] == [
            ("execute", n * len(COLUMNS)) for n in (60, 40, 60, 40, 50)
        ]
        assert calls[0][1] == f"REPLACE INTO {stage} ({', '.join(COLUMNS)}) VALUES {', '.join([row] * 60)}"
        assert tuple(calls[0][2][: len(COLUMNS)]) == DbApiHook._serialize_cells(_row(batch[0]))
        assert tuple(calls[-1][2][-len(COLUMNS) :]) == DbApiHook._serialize_cells(_row(batch[-1]))
    else:
        assert [(how, len(values)) for how, _, values in calls] == [("executemany", n) for n in (100, 100, 50)]
        upsert = f"REPLACE INTO {stage_table('delivery', 'k')} ({', '.join(COLUMNS)}) VALUES ({','.join('?' * 11)})"
        assert {sql for _, sql, _ in calls} == {upsert}
        assert calls[0][2][0] == DbApiHook._serialize_cells(_row(batch[0]))
    assert rows(db, "SELECT COUNT(*) FROM delivery") == [(250,)]
    assert rows(db, "SELECT * FROM delivery WHERE message_id = '7-249'") == [_text_row_of(batch[-1])]


def _text_row_of(record: DeliveryRecord) -> tuple[Any, ...]:
    """The row SQLite gives back for ``record`` (its column affinities applied to the cells written)."""
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    cells = list(DbApiHook._serialize_cells(_row(record)))
    cells[6], cells[7] = int(cells[6]), float(cells[7])  # INTEGER and NUMERIC columns
    return tuple(cells)


def test_the_watermark_is_kept_per_campaign_minus_how_long_the_export_ran(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MAX(updated_at) of the table was the watermark: later than a status change made, while the export ran,
    on a page already read (the next export skipped it), and one value for all campaigns asked for."""
    now = [0.0]
    monkeypatch.setattr(sql, "_clock", lambda: now[0], raising=False)
    sink = SqlSink("reports_db", "delivery", create_table=True)
    writer = sink.open("a", incremental=False)
    writer.write(records("7", range(10)))
    now[0] = 3600.0  # the export read for an hour
    writer.write(records("8", range(20)))
    writer.commit()
    assert sink.watermark("mobizon", ["8"]) == T0 + timedelta(seconds=19) - timedelta(hours=1)
    assert sink.watermark("mobizon", ["7", "8"]) == T0 + timedelta(seconds=9) - timedelta(hours=1)
    assert sink.watermark("mobizon", ["7", "9"]) is None  # 9 was never exported here
    # An incremental export with nothing for 8 keeps 8's watermark; 7's moves, never backwards.
    now[0] = 0.0
    writer = sink.open("b", incremental=True)
    writer.write(records("7", range(100, 101)))
    writer.commit()
    assert sink.watermark("mobizon", ["7"]) == T0 + timedelta(seconds=100)
    writer = sink.open("c", incremental=True)
    writer.write(records("7", range(1)))
    writer.commit()
    assert sink.watermark("mobizon", ["7"]) == T0 + timedelta(seconds=100)
    assert sink.watermark("mobizon", ["8"]) == T0 + timedelta(seconds=19) - timedelta(hours=1)
    assert rows(db, f"SELECT report_table, provider, campaign_id FROM {WATERMARKS} ORDER BY campaign_id") == [
        ("delivery", "mobizon", "7"), ("delivery", "mobizon", "8")]
