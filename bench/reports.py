"""Benchmark 8: N delivery records into a report destination, the sink side alone, and its peak RSS.

The records are made in the child, 1,000 at a time, in the shape a hook's ``iter_delivery_records``
yields them (the listing itself is row 4's message/list paging: compare the rate printed here with
that one's, which is what the status endpoint allows). Each destination is written the way the
report operator writes it: ``sink.open(key)``, ``write`` in batches, ``commit``.

* ``sql``: ``SqlSink`` on a SQLite connection (file on local disk), ``create_table=True``;
* ``csv`` / ``parquet``: ``FileSink`` to a local ``file://`` path (Parquet only with the ``parquet``
  extra installed; skipped otherwise).

The child warms up (imports, one 1,000-record export to another table/file), takes its idle RSS, resets
the kernel's peak counter (``/proc/self/clear_refs``), then times the export: the peak it reports is
the export's own.

Child: ``python -m bench.reports SINK COUNT WORKDIR``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import Timer, emit, peak_rss_mb, phone, reset_peak_rss, rss_mb, run_child

SINKS = ("csv", "parquet", "sql")
BATCH = 1000
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


def batches(count: int, campaign: str = "7001") -> Iterator[list[Any]]:
    """``count`` records, ``BATCH`` at a time (never all of them at once)."""
    from airflow_sms_provider.reports.record import DeliveryRecord

    for start in range(0, count, BATCH):
        yield [
            DeliveryRecord(
                provider="mobizon", campaign_id=campaign, message_id=str(10_000_000 + i), recipient=phone(i),
                status="delivered" if i % 10 else "undelivered", provider_status="DELIVRD" if i % 10 else "UNDELIV",
                parts=1 + i % 2, cost=Decimal("0.0125"), created_at=T0,
                updated_at=T0 + timedelta(seconds=i % 86_400), error_code=None if i % 10 else "1",
            )
            for i in range(start, min(start + BATCH, count))
        ]


def make_sink(kind: str, workdir: Path, name: str) -> Any:
    if kind == "sql":
        from airflow_sms_provider.reports.sql import SqlSink

        return SqlSink("bench_reports_db", name, create_table=True)
    from airflow_sms_provider.reports.files import FileSink  # type: ignore[import-not-found,unused-ignore]

    return FileSink(f"file://{workdir / name}.{kind}")


def export(sink: Any, count: int, key: str) -> int:
    writer = sink.open(key, incremental=False)
    for batch in batches(count):
        writer.write(batch)
    return int(writer.commit())


def child(kind: str, count: int, workdir: Path) -> None:
    import logging
    import os

    # The hook logs every insert_rows chunk at INFO: a thousand lines would time the logger, not the sink.
    logging.disable(logging.INFO)
    db = workdir / "reports.db"
    os.environ["AIRFLOW_CONN_BENCH_REPORTS_DB"] = json.dumps({"conn_type": "sqlite", "host": str(db)})
    export(make_sink(kind, workdir, "warmup"), BATCH, "warmup")
    idle = rss_mb()
    reset_peak_rss()
    sink = make_sink(kind, workdir, "delivery")
    with Timer() as timer:
        rows = export(sink, count, "bench/report/1")
    assert rows == count, (rows, count)
    size = db.stat().st_size if kind == "sql" else (workdir / f"delivery.{kind}").stat().st_size
    emit({"sink": kind, "count": count, "seconds": timer.wall, "cpu_seconds": timer.cpu, "rate": count / timer.wall,
          "idle_rss_mb": idle, "peak_rss_mb": peak_rss_mb(), "peak_above_idle_mb": peak_rss_mb() - idle,
          "bytes": size})  # fmt: skip


def available(kind: str) -> bool:
    """Whether this install has what the sink needs (FileSink lands with the report operator; pyarrow is an extra)."""
    import importlib.util

    if kind == "sql":
        return importlib.util.find_spec("airflow.providers.sqlite") is not None
    if importlib.util.find_spec("airflow_sms_provider.reports.files") is None:
        return False
    return kind != "parquet" or importlib.util.find_spec("pyarrow") is not None


def run(count: int, workdir: Path) -> list[dict[str, Any]]:
    results = []
    for kind in SINKS:
        if not available(kind):
            results.append({"sink": kind, "count": count, "skipped": True})
            continue
        here = workdir / kind
        here.mkdir(parents=True, exist_ok=True)
        results.append(run_child("reports", kind, count, here))
    return results


if __name__ == "__main__":
    child(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
