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

**End to end** (``run_export``, once the hooks' ``iter_delivery_records`` is installed): one Mobizon
campaign of N messages, sent and final (a day later on the sandbox's clock: delivered, both timestamps set),
in the sandbox (in its own process, ``latency_ms`` per request and twice that per
new connection), then, in one child and in turn: *limit* and *listing* (below), and for each sink both again
and then ``SmsDeliveryReportOperator.execute`` as a DAG runs it (records built, batches, sink, commit).
*listing* is ``MobizonHook.iter_messages`` by campaign with ``concurrency`` pages in flight and nothing else
(the package's own page reads, JSON parsed to dicts). Throughput = messages per wall-clock second, compared
with the limit (the goal) and the listing measured just before it; client CPU per 1,000 messages; the peak
RSS of each export above the child's idle RSS (counter reset before each).

*limit* (the goal's denominator, like row 1's): a bare ``httpx.Client`` with ``concurrency`` threads asking
for the same pages with the same request bodies (encoded before the clock starts) and reading each answer as
bytes, nothing parsed. The sandbox's own CPU (``/proc/PID/stat``) is recorded for the limit, the listing and
each export: what the server needs per 1,000 messages is the most the client may spend for 0.9x.

``rounds``: the three exports are run that many times in turn; each export's ratio is against the mean
of the limit measured just before it and the one just after (the next export's, or a last one), and the
round with the median ratio is reported for each sink, with every round's ratio and the highest peak RSS.
Beside it, each round's ratio in the sandbox's time (``server_time_ratio``) and their median, which the
goal is judged by: on a shared machine the wall-clock one moves with the neighbours' load.

Child: ``python -m bench.reports export COUNT WORKDIR LATENCY CONCURRENCY [SANDBOX_PID [ROUNDS]]``.
"""

from __future__ import annotations

import json
import statistics
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


def keepalive_limit(url: str, campaign_id: int, count: int, concurrency: int) -> tuple[float, float, int]:
    """The status endpoint's keep-alive limit: the listing's pages, asked for and read, nothing else.

    One bare ``httpx.Client`` (a pool of keep-alive connections), ``concurrency`` threads, each page's
    request body (the same one the hook sends) encoded before the clock starts, every answer read as
    bytes and never parsed. Returns wall seconds, client CPU seconds and bytes read.
    """
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from airflow_sms_provider.protocols import mobizon as proto
    from bench.common import API_KEY

    pages = -(-count // 100)
    requests = [proto.build("message", "list", API_KEY, {
        "criteria": {"campaignIds": [campaign_id]}, "pagination": {"currentPage": page, "pageSize": 100}, "sort": {},
    }) for page in range(pages)]  # fmt: skip
    client = httpx.Client(base_url=url, timeout=120, limits=httpx.Limits(max_keepalive_connections=concurrency))

    def fetch(request: Any) -> int:
        return len(client.request(request.method, request.path, params=request.params, headers=request.headers,
                                  content=request.content).read())  # fmt: skip

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(fetch, requests[: 2 * concurrency]))  # warm: connections open, nothing timed
        with Timer() as timer:
            size = sum(pool.map(fetch, requests))
    client.close()
    return timer.wall, timer.cpu, size


def server_time_ratio(export: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> float | None:
    """The export's rate against the limits', each run's time counted in the sandbox's CPU seconds.

    The share of wall time the sandbox was busy during the export over the mean share during the limits
    around it; that is, the wall-clock ratio times the sandbox's CPU per message in the export over the
    limits'. At the limit the sandbox is the bottleneck (busy ~98% of the time), and the same pages cost it
    the same work, so a machine that slows down between two runs (its neighbours' load: the same limit
    cost the sandbox 21 then 30 ms per 1,000 within a minute) cancels out, while a client that keeps the
    sandbox waiting still lowers it. None without the sandbox's CPU.
    """

    def busy(r: dict[str, Any]) -> float:
        return float(r.get("server_cpu_seconds") or 0.0) / r["seconds"]

    limits = (busy(before) + busy(after)) / 2
    if not busy(export) or not limits:
        return None
    return busy(export) / limits


def _round(r: dict[str, Any], count: int) -> dict[str, Any]:
    """One export of a round, flat, for ``--json``: its rate, both ratios and the runs around it."""
    def ms_per_1000(run: dict[str, Any]) -> float:
        return 1e6 * float(run.get("server_cpu_seconds") or 0.0) / count

    return {"rate": r["rate"], "ratio": r["ratio"], "server_ratio": r["server_ratio"],
            "limit_before_rate": r["limit_before"]["rate"], "limit_after_rate": r["limit_after"]["rate"],
            "server_ms_per_1000": ms_per_1000(r),
            "limit_before_server_ms_per_1000": ms_per_1000(r["limit_before"]),
            "limit_after_server_ms_per_1000": ms_per_1000(r["limit_after"])}  # fmt: skip


def server_cpu(pid: int) -> float:
    """User + system CPU seconds the sandbox process has used so far (see bench.common.Sandbox)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def export_child(
    count: int, workdir: Path, latency: float, concurrency: int, server_pid: int = 0, rounds: int = 1
) -> None:
    import logging
    import os

    import httpx

    from airflow_sms_provider.hooks.mobizon import MobizonHook
    from airflow_sms_provider.operators.reports import SmsDeliveryReportOperator
    from bench.common import CONN_ID, new_campaign

    logging.disable(logging.INFO)  # progress and insert_rows lines: not what is measured
    url = os.environ["BENCH_SANDBOX_URL"]
    os.environ["AIRFLOW_CONN_BENCH_REPORTS_DB"] = json.dumps({"conn_type": "sqlite", "host": str(workdir / "r.db")})
    httpx.post(f"{url}/_sandbox/config", json={"latency_ms": 0}).raise_for_status()
    hook = MobizonHook(CONN_ID)
    campaign_id = new_campaign()
    hook.add_recipients_in_portions(campaign_id, (phone(i) for i in range(count)))
    warmup = new_campaign()
    hook.add_recipients_in_portions(warmup, (phone(i) for i in range(BATCH)))
    # Reported once final, as a DAG does: sent, and a day later on the sandbox's clock every message has its
    # final status and both timestamps (a report of unsent messages would skip the timestamps' parsing).
    for sent in (campaign_id, warmup):
        hook.send_campaign(sent)
    httpx.post(f"{url}/_sandbox/clock", json={"advance": 86_400}).raise_for_status()
    wire = {"latency_ms": latency, "connect_latency_ms": 2 * latency}
    httpx.post(f"{url}/_sandbox/config", json=wire).raise_for_status()

    def operator(kind: str, ids: int, round_: int = 0) -> Any:
        # A table or file of its own per round: each round measures the same first export of the campaign.
        name = f"delivery_{ids}_{round_}"
        where = ({"sql_conn_id": "bench_reports_db", "table": name, "create_table": True} if kind == "sql"
                 else {"destination": f"file://{workdir}/{name}.{kind}"})  # fmt: skip
        return SmsDeliveryReportOperator(task_id=f"report_{kind}", conn_id=CONN_ID, campaign_ids=[ids],
                                         concurrency=concurrency, **where)  # fmt: skip

    context = {"run_id": "bench"}
    kinds = [kind for kind in SINKS if kind != "parquet" or available("parquet")]
    for kind in kinds:  # imports, connections, the sinks' first table/file
        operator(kind, warmup).execute(context)
    rows: dict[str, Any] = {}

    def served() -> float:
        return server_cpu(server_pid) if server_pid else 0.0

    def listing() -> dict[str, float]:
        cpu = served()
        with Timer() as timer:
            listed = sum(1 for _ in hook.iter_messages({"campaignIds": [campaign_id]}, concurrency=concurrency))
        assert listed == count, listed
        return {"seconds": timer.wall, "cpu_seconds": timer.cpu, "rate": count / timer.wall,
                "server_cpu_seconds": served() - cpu}  # fmt: skip

    def limit() -> dict[str, float]:
        cpu = served()
        seconds, client_cpu, size = keepalive_limit(url, campaign_id, count, concurrency)
        return {"seconds": seconds, "cpu_seconds": client_cpu, "rate": count / seconds, "bytes": size,
                "server_cpu_seconds": served() - cpu}  # fmt: skip

    rows["limit"] = limit()
    rows["listing"] = listing()
    exports: list[tuple[str, dict[str, Any]]] = []
    for round_ in range(rounds):
        for kind in kinds:
            # The limit measured again just before each export and once after the last: on a shared machine
            # the speed drifts within a run, so each export is set against the mean of the limits around it.
            before_limit = limit()
            before = listing() if round_ == 0 else None  # the package's listing: once per sink is enough
            idle = rss_mb()
            reset_peak_rss()
            cpu = served()
            with Timer() as timer:
                summary = operator(kind, campaign_id, round_).execute(context)
            assert summary["rows"] == count, summary
            exports.append((kind, {"seconds": timer.wall, "cpu_seconds": timer.cpu, "rate": count / timer.wall,
                                   "idle_rss_mb": idle, "peak_above_idle_mb": peak_rss_mb() - idle,
                                   "server_cpu_seconds": served() - cpu, "limit_before": before_limit,
                                   **({"listing_before": before} if before else {})}))  # fmt: skip
    afters = [*(r["limit_before"] for _, r in exports[1:]), limit()]
    for (_, r), after in zip(exports, afters, strict=True):
        r["limit_after"] = after
        r["ratio"] = r["rate"] / ((r["limit_before"]["rate"] + after["rate"]) / 2)
        r["server_ratio"] = server_time_ratio(r, r["limit_before"], after)
    for kind in kinds:
        mine = [r for k, r in exports if k == kind]
        # The round with the median ratio stands for the sink; every round's ratio and the worst peak with it.
        median = sorted(mine, key=lambda r: r["ratio"])[(len(mine) - 1) // 2]
        server = [r["server_ratio"] for r in mine if r["server_ratio"] is not None]
        rows[kind] = {**median, "ratios": [r["ratio"] for r in mine],
                      "server_ratios": [r["server_ratio"] for r in mine],
                      "server_ratio_median": statistics.median_low(server) if server else None,
                      "rounds": [_round(r, count) for r in mine],
                      "peak_above_idle_mb_max": max(r["peak_above_idle_mb"] for r in mine),
                      "listing_before": mine[0].get("listing_before")}  # fmt: skip
    emit({"count": count, "latency_ms": latency, "concurrency": concurrency, "rounds": rounds, "rows": rows})


def run_export(count: int, workdir: Path, latency: float, concurrency: int, rounds: int = 1) -> dict[str, Any]:
    from bench.common import sandbox

    workdir.mkdir(parents=True, exist_ok=True)
    with sandbox() as box:
        return run_child("reports", "export", count, workdir, latency, concurrency, box.process.pid, rounds,
                         url=box.url)


if __name__ == "__main__":
    if sys.argv[1] == "export":
        export_child(int(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]),
                     int(sys.argv[6]) if len(sys.argv) > 6 else 0, int(sys.argv[7]) if len(sys.argv) > 7 else 1)
    else:
        child(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
