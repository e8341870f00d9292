"""The SQL sink alone on SQLite, its stage in the database file against its TEMP stage, side by side.

    .venv/bin/python -m bench.sql_stage [RECORDS] [ROUNDS]   # default 100,000 records, 5 rounds

Each variant writes the same records (``bench.reports.batches``) the way the report operator does
(``open``, ``write`` per batch of 1,000, ``commit``) into a fresh table of one SQLite file, in this
process, with the export's settings (``export_settings``: the GIL's switch interval 0.5 ms). Rounds
alternate the variants, so a machine whose speed drifts slows them alike; the table shows medians of
wall milliseconds per 1,000 records.

* ``stage in the file, executemany``: the stage beside the target, a batch per ``executemany`` and a
  commit (what other databases use; on SQLite until the TEMP stage);
* ``TEMP stage, multi-row``: what SQLite uses now (``reports/sql.py``'s docstring);
* ``CSV file``: the CSV sink on the same records, for reference.

Then each again beside a busy thread (pure Python, as the page reader is while it decodes pages),
with a tenth of the records: ``executemany`` steps once per row and lets go of the GIL around every
step, and taking it back waits for the busy thread's switch interval.

Last, a full export of a campaign (a tenth of the records) into a table already holding as many rows of
another campaign, its commit deleting the campaign's old rows by bound campaign id (now) or by the
correlated ``EXISTS`` over the stage it used before, which SQLite ran as a search of the stage for every
row of the table. Not part of ``make bench``'s table: row 8 there shows what this is worth end to end.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from bench.reports import batches, make_sink

VARIANTS = ("stage in the file, executemany", "TEMP stage, multi-row", "CSV file")
DELETES = ("by campaign id", "correlated EXISTS (before)")


def exists_delete(writer: Any, mark: str) -> list[tuple[str, tuple[Any, ...]]]:
    """The commit as it was: the campaigns' old rows found by a subquery over the stage per row of the table."""
    from airflow_sms_provider.reports.sql import COLUMNS

    table, stage, columns = writer.sink.table, writer.stage, ", ".join(COLUMNS)
    match = f"s.provider = {table}.provider AND s.campaign_id = {table}.campaign_id"
    return [(f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM {stage} s WHERE {match})", ()),
            (f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage}", ())]  # fmt: skip


def beside_another_campaign(count: int, workdir: Path) -> dict[str, float]:
    """Seconds of a full export of ``count`` records into a table holding ``count`` rows of another campaign."""
    from dataclasses import replace

    from airflow_sms_provider.reports import sql

    seconds = {}
    for n, how in enumerate(DELETES):
        sink = make_sink("sql", workdir, f"beside_{n}")
        for campaign in ("8001", "7001"):
            records = [[replace(r, message_id=f"{campaign}-{r.message_id}") for r in batch]
                       for batch in batches(count, campaign=campaign)]  # fmt: skip
            real = sql.SqlWriter.commit_sql
            if how != DELETES[0] and campaign == "7001":
                sql.SqlWriter.commit_sql = exists_delete  # type: ignore[method-assign]
            try:
                start = time.perf_counter()
                writer = sink.open(f"k{campaign}", incremental=False)
                for batch in records:
                    writer.write(batch)
                assert writer.commit() == count
                seconds[how] = time.perf_counter() - start
            finally:
                sql.SqlWriter.commit_sql = real  # type: ignore[method-assign]
    return seconds


@contextmanager
def busy_thread() -> Iterator[None]:
    """A thread running pure Python until the block ends."""
    stop = threading.Event()

    def spin() -> None:
        count = 0
        while not stop.is_set():
            count += 1

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def export(variant: str, records: list[list[Any]], workdir: Path, name: str) -> float:
    """Wall seconds of one export of ``records`` by ``variant`` into a new table or file."""
    from airflow_sms_provider.reports import sql

    kind = "csv" if variant == "CSV file" else "sql"
    in_file = variant.startswith("stage in the file")
    real = sql.is_sqlite
    if in_file:
        sql.is_sqlite = lambda hook: False  # type: ignore[assignment]
    try:
        sink = make_sink(kind, workdir, name)
        start = time.perf_counter()
        writer = sink.open("bench", incremental=False)
        for batch in records:
            writer.write(batch)
        rows = writer.commit()
        seconds = time.perf_counter() - start
    finally:
        sql.is_sqlite = real  # type: ignore[assignment]
    assert rows == sum(map(len, records)), rows
    return seconds


def main(count: int, rounds: int) -> dict[tuple[str, bool], float]:
    with tempfile.TemporaryDirectory(prefix="bench-sql-stage-") as workdir:
        before = os.environ.get("AIRFLOW_CONN_BENCH_REPORTS_DB")
        os.environ["AIRFLOW_CONN_BENCH_REPORTS_DB"] = json.dumps({"conn_type": "sqlite", "host": f"{workdir}/r.db"})
        logging.disable(logging.INFO)  # the hook's statements, the sinks' progress: not what is measured
        try:
            medians = measure(count, rounds, Path(workdir))
            beside = beside_another_campaign(max(1, count // 10), Path(workdir))
        finally:
            logging.disable(logging.NOTSET)
            if before is None:
                del os.environ["AIRFLOW_CONN_BENCH_REPORTS_DB"]
            else:
                os.environ["AIRFLOW_CONN_BENCH_REPORTS_DB"] = before
    print(f"| {count:,} records (beside a busy thread: {max(1, count // 10):,}), median of {rounds} "
          "| alone | beside a busy thread |")
    print("|---|---|---|")
    for variant in VARIANTS:
        print(f"| {variant} | {medians[variant, False]:.1f} ms per 1,000 | {medians[variant, True]:.1f} ms per 1,000 |")
    print(f"\n| full export of {max(1, count // 10):,} records into a table holding as many of another campaign "
          "| seconds |\n|---|---|")
    for how in DELETES:
        print(f"| old rows deleted {how} | {beside[how]:.2f} s |")
    return medians


def measure(count: int, rounds: int, workdir: Path) -> dict[tuple[str, bool], float]:
    """Median wall milliseconds per 1,000 records of each variant, alone and beside a busy thread."""
    from airflow_sms_provider.operators.reports import export_settings

    alone = list(batches(count))
    beside = list(batches(max(1, count // 10)))
    for n, variant in enumerate(VARIANTS):  # imports, the file's first tables
        export(variant, alone[:1], workdir, f"warm_{n}")
    per_1000: dict[tuple[str, bool], list[float]] = {}
    for round_ in range(rounds):
        for busy in (False, True):
            records = beside if busy else alone
            for n, variant in enumerate(VARIANTS):
                with busy_thread() if busy else nullcontext(), export_settings():
                    seconds = export(variant, records, workdir, f"t{round_}_{int(busy)}_{n}")
                per_1000.setdefault((variant, busy), []).append(seconds / sum(map(len, records)) * 1e6)
    return {key: statistics.median(values) for key, values in per_1000.items()}


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000, int(sys.argv[2]) if len(sys.argv) > 2 else 5)
