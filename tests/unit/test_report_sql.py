"""reports/sql.py: the exact SQL a SQL report destination sends, and what it refuses to put into SQL."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.reports.record import COLUMNS, DeliveryRecord
from airflow_sms_provider.reports.sql import (
    COLUMN_TYPES,
    SqlSink,
    SqlWriter,
    _as_utc,
    _row,
    _text_row,
    create_table_sql,
    stage_table,
    validate_table,
)

EXPECTED_DDL = """CREATE TABLE IF NOT EXISTS sms.delivery (
    provider VARCHAR(32) NOT NULL,
    campaign_id VARCHAR(255) NOT NULL,
    message_id VARCHAR(255) NOT NULL,
    recipient VARCHAR(255) NOT NULL,
    status VARCHAR(32) NOT NULL,
    provider_status VARCHAR(255) NOT NULL,
    parts INTEGER,
    cost NUMERIC(18, 6),
    created_at TIMESTAMP WITH TIME ZONE,
    updated_at TIMESTAMP WITH TIME ZONE,
    error_code VARCHAR(255),
    PRIMARY KEY (provider, message_id)
)"""

ALL = ", ".join(COLUMNS)


def test_ddl_is_exact_and_covers_every_record_field() -> None:
    assert tuple(COLUMN_TYPES) == COLUMNS
    assert create_table_sql("sms.delivery") == EXPECTED_DDL


def test_ddl_runs_on_sqlite() -> None:
    db = sqlite3.connect(":memory:")
    db.execute(create_table_sql("delivery"))
    db.execute(create_table_sql("delivery"))  # IF NOT EXISTS: a second run is harmless
    assert [row[1] for row in db.execute("PRAGMA table_info(delivery)")] == list(COLUMNS)
    assert [row[1] for row in db.execute("PRAGMA table_info(delivery)") if row[5]] == ["provider", "message_id"]


@pytest.mark.parametrize("table", ["delivery", "_t1", "sms.delivery_reports", "S." + "x" * 63])
def test_table_names_accepted(table: str) -> None:
    schema, name = validate_table(table)
    assert (f"{schema}.{name}" if schema else name) == table


@pytest.mark.parametrize(
    "table",
    [
        "",
        "1delivery",
        "delivery; DROP TABLE users",
        'delivery"',
        "a.b.c",
        ".delivery",
        "delivery.",
        "x" * 64,
        "deli very",
        "délivery",
        "delivery--",
    ],
)
def test_table_names_refused_naming_field_and_value(table: str) -> None:
    with pytest.raises(SmsValidationError) as caught:
        SqlSink("reports_db", table)
    assert caught.value.field == "table"
    # Not the value itself: an earlier test may have registered a secret it contains (then it is masked).
    assert str(caught.value).startswith("table=") and ": expected a table name, optionally schema-qualified" in str(
        caught.value
    )


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(SmsValidationError, match=r"batch_size=0: expected a positive integer"):
        SqlSink("reports_db", "delivery", batch_size=0)


def test_stage_is_beside_the_target_and_stable_per_export_key() -> None:
    assert stage_table("delivery", "dag/task/run1") == stage_table("delivery", "dag/task/run1")
    assert stage_table("delivery", "dag/task/run1") != stage_table("delivery", "dag/task/run2")
    assert stage_table("delivery", "k") != stage_table("other", "k")
    assert stage_table("delivery", "k").startswith("sms_report_stage_")
    assert stage_table("sms.delivery", "k").startswith("sms.sms_report_stage_")
    validate_table(stage_table("sms." + "x" * 63, "k" * 500))  # still a valid identifier, whatever the key


def test_commit_sql_incremental_replaces_messages() -> None:
    writer = SqlWriter(SqlSink("c", "sms.delivery"), "sms.sms_report_stage_ab", incremental=True)
    assert writer.commit_sql("%s") == [
        ("DELETE FROM sms.delivery WHERE EXISTS (SELECT 1 FROM sms.sms_report_stage_ab s "
         "WHERE s.provider = delivery.provider AND s.message_id = delivery.message_id)", ()),
        (f"INSERT INTO sms.delivery ({ALL}) SELECT {ALL} FROM sms.sms_report_stage_ab", ()),
        ("DROP TABLE sms.sms_report_stage_ab", ()),
    ]


def test_commit_sql_incremental_on_a_sqlite_temp_stage_is_one_replace() -> None:
    writer = SqlWriter(SqlSink("c", "delivery"), "temp.sms_report_stage_ab", incremental=True, temporary=True)
    assert writer.commit_sql("?") == [
        (f"INSERT OR REPLACE INTO delivery ({ALL}) SELECT {ALL} FROM temp.sms_report_stage_ab", ()),
    ]


def test_commit_sql_full_deletes_the_written_campaigns_by_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_sms_provider.reports import sql

    monkeypatch.setattr(sql, "_IDS_PER_DELETE", 2)
    writer = SqlWriter(SqlSink("c", "delivery"), "sms_report_stage_ab", incremental=False)
    writer.latest = {("mobizon", "9"): None, ("bsg", "x"): None, ("mobizon", "10"): None, ("mobizon", "7"): None}
    assert writer.commit_sql("%s") == [
        ("DELETE FROM delivery WHERE provider = %s AND campaign_id IN (%s)", ("bsg", "x")),
        ("DELETE FROM delivery WHERE provider = %s AND campaign_id IN (%s, %s)", ("mobizon", "10", "7")),
        ("DELETE FROM delivery WHERE provider = %s AND campaign_id IN (%s)", ("mobizon", "9")),
        (f"INSERT INTO delivery ({ALL}) SELECT {ALL} FROM sms_report_stage_ab", ()),
        ("DROP TABLE sms_report_stage_ab", ()),
    ]
    writer.temporary = True  # SQLite: the same, and no DROP (the stage goes with the connection)
    assert [sql for sql, _ in writer.commit_sql("?")][-1].startswith("INSERT INTO delivery (")


@pytest.mark.parametrize(("incremental", "verb"), [(False, "INSERT"), (True, "INSERT OR REPLACE")])
def test_commit_sql_copies_every_column_by_position_where_the_target_has_the_reports(
    incremental: bool, verb: str
) -> None:
    writer = SqlWriter(SqlSink("c", "delivery"), "temp.sms_report_stage_ab", incremental=incremental, temporary=True)
    writer.same_columns = True  # SQLite copies whole records into an empty table only for `SELECT *`
    assert writer.commit_sql("?")[-1] == (f"{verb} INTO delivery SELECT * FROM temp.sms_report_stage_ab", ())


def zoned_record() -> DeliveryRecord:
    """A record created at 10:00 in Almaty (+05:00, 05:00 UTC), updated at a naive 06:00 (taken as UTC)."""
    return DeliveryRecord(
        provider="mobizon", campaign_id="7", message_id="70", recipient="77001234567", status="delivered",
        provider_status="DELIVRD", parts=2, cost=Decimal("0.050"),
        created_at=datetime(2026, 11, 30, 10, 0, tzinfo=timezone(timedelta(hours=5))),
        updated_at=datetime(2026, 11, 30, 6, 0), error_code=None,
    )


def test_row_is_in_column_order_with_utc_timestamps() -> None:
    record = zoned_record()
    assert _row(record) == (
        "mobizon", "7", "70", "77001234567", "delivered", "DELIVRD", 2, Decimal("0.050"),
        datetime(2026, 11, 30, 5, 0, tzinfo=timezone.utc), datetime(2026, 11, 30, 6, 0, tzinfo=timezone.utc), None,
    )


def test_text_row_is_what_the_hook_would_bind_with_utc_text_whatever_the_zone() -> None:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    base = zoned_record()
    # The same instants in UTC, already cached in another zone's spelling: still UTC text.
    utc = replace(base, message_id="71", created_at=datetime(2026, 11, 30, 5, 0, tzinfo=timezone.utc),
                  updated_at=None, parts=None, cost=None, error_code="E1")  # fmt: skip
    for record in (base, utc):
        assert _text_row(record) == DbApiHook._serialize_cells(_row(record))
    assert _text_row(base)[6:10] == ("2", "0.050", "2026-11-30T05:00:00+00:00", "2026-11-30T06:00:00+00:00")
    assert _text_row(utc)[6:] == (None, None, "2026-11-30T05:00:00+00:00", None, "E1")


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, None),
        ("2026-11-30T05:00:00+00:00", datetime(2026, 11, 30, 5, tzinfo=timezone.utc)),  # SQLite: text
        ("2026-11-30T10:00:00+05:00", datetime(2026, 11, 30, 5, tzinfo=timezone.utc)),
        (datetime(2026, 11, 30, 5), datetime(2026, 11, 30, 5, tzinfo=timezone.utc)),  # naive: UTC
    ],
)
def test_watermark_values_read_back_as_utc(stored: object, expected: datetime | None) -> None:
    assert _as_utc(stored) == expected


def test_describe_names_table_and_connection_only() -> None:
    assert SqlSink("reports_db", "sms.delivery").describe() == "table sms.delivery on connection reports_db"


def test_sqlite_rows_are_made_per_batch_without_a_hook_lookup_per_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the base DbApiHook serializer the text rows are made by one map over the batch: the hook (a
    property) and its serializer were looked up for every record before."""
    monkeypatch.setenv("AIRFLOW_CONN_REPORTS_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "r.db")}))

    def per_record(self: SqlWriter, record: DeliveryRecord) -> None:
        raise AssertionError("per-record hook lookup")

    monkeypatch.setattr(SqlWriter, "_cells", per_record)
    writer = SqlSink("reports_db", "delivery", create_table=True, batch_size=2).open("k", incremental=False)
    record = DeliveryRecord("mobizon", "42", "7", "77010000001", "delivered", "DELIVRD", 2, Decimal("0.10"),
                            datetime(2026, 5, 1, 5, 0, tzinfo=timezone.utc))  # fmt: skip
    writer.write([record, replace(record, message_id="8"), replace(record, message_id="9")])
    assert writer.commit() == 3
    rows = sqlite3.connect(tmp_path / "r.db").execute("SELECT * FROM delivery ORDER BY message_id").fetchall()
    assert rows[0] == ("mobizon", "42", "7", "77010000001", "delivered", "DELIVRD", 2, 0.1,
                       "2026-05-01T05:00:00+00:00", None, None)  # fmt: skip
    assert [row[2] for row in rows] == ["7", "8", "9"]


def test_the_operator_stages_a_batch_per_executemany_and_commit() -> None:
    """The operator's ``batch_size`` is the SQL sink's: one executemany and one stage commit per batch handed
    over (the sink's own default of 1,000 committed five times per default batch of 5,000)."""
    from airflow_sms_provider.operators.reports import DEFAULT_BATCH_SIZE, SmsDeliveryReportOperator

    def sink(**kw: Any) -> SqlSink:
        return SmsDeliveryReportOperator(task_id="t", conn_id="mobizon_default", campaign_ids=[1],  # type: ignore[return-value]
                                         sql_conn_id="reports_db", table="delivery", **kw).make_sink()  # fmt: skip

    assert sink().batch_size == DEFAULT_BATCH_SIZE == 5000
    assert sink(batch_size=250).batch_size == 250


def test_the_latest_time_per_campaign_is_kept_as_batches_pass_not_read_back_at_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watermarks' input: per (provider, campaign) the latest updated_at written, across batches and zones,
    a campaign without times kept as None (no watermark); the stage is not scanned again at commit."""
    monkeypatch.setenv("AIRFLOW_CONN_REPORTS_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "r.db")}))
    writer = SqlSink("reports_db", "delivery", create_table=True, batch_size=2).open("k", incremental=False)
    plus5 = timezone(timedelta(hours=5))
    record = DeliveryRecord("mobizon", "42", "1", "77010000001", "delivered", "DELIVRD", 1, None,
                            updated_at=datetime(2026, 5, 1, 9, 0, tzinfo=plus5))  # 04:00 UTC  # fmt: skip
    writer.write([record, replace(record, message_id="2", updated_at=datetime(2026, 5, 1, 4, 30, tzinfo=timezone.utc)),
                  replace(record, campaign_id="43", message_id="3", updated_at=None)])  # fmt: skip
    writer.write([replace(record, message_id="4", updated_at=datetime(2026, 5, 1, 3, 0)),  # naive: UTC
                  replace(record, message_id="5", updated_at=datetime(2026, 5, 1, 9, 15, tzinfo=plus5))])  # fmt: skip
    assert writer.latest == {("mobizon", "42"): datetime(2026, 5, 1, 4, 30, tzinfo=timezone.utc),
                             ("mobizon", "43"): None}  # fmt: skip
    statements: list[str] = []
    monkeypatch.setattr(writer, "_save_watermarks", lambda cur, latest: statements.append(repr(latest)))
    assert writer.commit() == 5
    assert statements == [repr([("mobizon", "42", datetime(2026, 5, 1, 4, 30, tzinfo=timezone.utc)),
                                ("mobizon", "43", None)])]  # fmt: skip
