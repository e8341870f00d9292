"""SqlSink on PostgreSQL (Debian's package, a throwaway cluster on 127.0.0.1) through a ``postgres`` connection:
the ON CONFLICT upsert of the stage, the commit transaction, a schema-qualified table, timestamps and the
watermark as PostgreSQL returns them."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from airflow_sms_provider.reports import sql
from airflow_sms_provider.reports.sql import SqlSink, stage_table
from tests.deploy.services import PostgreSQL
from tests.integration.test_report_sql import T0, records

pytestmark = pytest.mark.deploy


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgreSQL]:
    # Outside pytest's 0700 temp root: PostgreSQL runs as another user and must reach its folder.
    workdir = Path(tempfile.mkdtemp(prefix="airflow-sms-report-pg-"))
    workdir.chmod(0o755)
    server = PostgreSQL(workdir)
    try:
        server.start()
        server.create_database("reports")
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def pg_conn(postgres: PostgreSQL, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": postgres.port, "login": "airflow",
            "schema": "reports"}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_REPORTS_PG", json.dumps(conn))
    sink = SqlSink("reports_pg", "delivery")
    sink.hook.run(["DROP SCHEMA IF EXISTS sms CASCADE", "CREATE SCHEMA sms", "DROP TABLE IF EXISTS delivery"])
    yield "reports_pg"


def select(conn_id: str, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in SqlSink(conn_id, "delivery").hook.get_records(sql)]


def test_export_retry_incremental_and_watermark_on_postgres(pg_conn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Exports that take no time: the watermark is the data's (it is the latest time read minus how long the
    # export ran: tests/integration/test_report_sql.py::test_the_watermark_is_kept_per_campaign_minus_…).
    monkeypatch.setattr(sql, "_clock", lambda: 0.0)
    sink = SqlSink(pg_conn, "sms.delivery", create_table=True, batch_size=3)
    assert sink.watermark("mobizon", ["7"]) is None  # no table yet

    writer = sink.open("d/t/r1", incremental=False)
    writer.write(records("7", range(4), "pending"))
    writer.write(records("7", range(2, 8)))  # listed twice: the stage's ON CONFLICT keeps one row
    assert writer.commit() == 8
    writer = sink.open("d/t/r1", incremental=False)  # a retry of the same run
    writer.write(records("7", range(8)))
    assert writer.commit() == 8
    assert select(pg_conn, "SELECT COUNT(*), COUNT(DISTINCT message_id) FROM sms.delivery") == [(8, 8)]

    row = select(pg_conn, "SELECT parts, cost, created_at, updated_at FROM sms.delivery WHERE message_id = '7-3'")
    assert row == [(1, Decimal("0.050000"), T0, T0 + timedelta(seconds=3))]

    writer = sink.open("d/t/r2", incremental=True)
    writer.write(records("7", range(1), "failed"))
    writer.commit()
    assert select(pg_conn, "SELECT status, COUNT(*) FROM sms.delivery GROUP BY status ORDER BY status") == [
        ("delivered", 7),
        ("failed", 1),
    ]
    assert sink.watermark("mobizon", ["7"]) == T0 + timedelta(seconds=7)
    assert sink.watermark("mobizon", ["8"]) is None

    writer = sink.open("d/t/r3", incremental=False)
    writer.write(records("7", range(3), "undelivered"))
    writer.abort()
    assert select(pg_conn, "SELECT COUNT(*) FROM sms.delivery WHERE status = 'undelivered'") == [(0,)]
    tables = select(pg_conn, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'sms' "
                             "ORDER BY table_name")  # fmt: skip
    # The report and its watermarks (per campaign, beside it in its schema); no stage left.
    assert tables == [("delivery",), ("sms_report_watermarks",)], (
        f"stages left: {tables} (e.g. {stage_table('sms.delivery', 'd/t/r3')})"
    )
