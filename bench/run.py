"""``make bench``: run every benchmark in one go and print one table (see docs/benchmarks.md).

    python -m bench.run            # full: 1,000,000 recipients (0, 1, 5, 20 ms), 100,000 statuses, 500 triggers,
                                   #   100,000 BSG phones
    python -m bench.run --quick    # 50,000 recipients etc., under two minutes
    python -m bench.run --only 1,4 --json results.json

Benchmarks, not tests: nothing here fails a build; targets are shown next to the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import bsg_create, imports, memory, reports, statuses, triggers, upload


@dataclass(frozen=True)
class Plan:
    recipients: int
    rounds: int
    latencies: tuple[float, ...]
    statuses: int
    concurrency: int
    triggers: int
    trigger_rounds: int
    import_repeats: int
    import_modules: tuple[str, ...] = imports.MODULES
    trigger_variants: tuple[str, ...] = triggers.VARIANTS
    # 7: BSG phones (campaigns of 10,000), creations at once, (latency ms, server ms per creation), repeats.
    bsg_phones: int = 100_000
    bsg_concurrency: int = 4
    bsg_scenarios: tuple[tuple[float, float], ...] = ((5.0, 0.0), (20.0, 0.0), (5.0, 200.0))
    bsg_repeats: int = 3
    # 8: delivery records into each report destination (the sink side alone); end-to-end rounds.
    report_records: int = 1_000_000
    report_rounds: int = 3


# Row 1 also at 0 and 1 ms: a provider in the same region, where the client's CPU is what is left.
FULL = Plan(1_000_000, 10, (0.0, 1.0, 5.0, 20.0), 100_000, 8, 500, 5, 7)
# A smoke run: one latency, fewer rounds, triggers and modules; its ratios are noisier than the full run's.
QUICK = Plan(50_000, 2, (5.0,), 10_000, 8, 50, 2, 1, imports.MODULES[:1], triggers.VARIANTS[:1],
             bsg_phones=50_000, bsg_scenarios=((5.0, 0.0),), bsg_repeats=1, report_records=50_000,
             report_rounds=1)  # fmt: skip


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))  # fmt: skip
    return {
        "cpu": cpu, "nproc": os.cpu_count(), "ram_gb": round(mem / 1024**2, 1),
        "python": platform.python_version(), "airflow": version("apache-airflow"), "httpx": version("httpx"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _ok(flag: bool) -> str:
    return "yes" if flag else "**no**"


def upload_cpu(r: dict[str, Any]) -> dict[str, float]:
    """Client CPU milliseconds per 1,000 recipients of each row-1 variant (process CPU, not wall)."""
    return {k: 1000 * r[k]["cpu_seconds"] / (r["count"] / 1000) for k in upload.VARIANTS}


def upload_table(results: dict[str, Any]) -> str:
    """Row 1 side by side per latency: throughput ratios and client CPU per 1,000 recipients."""
    lines = ["| latency | package/s | limit/s | naive/s | vs limit | vs naive | CPU/1,000 package | "
             "CPU/1,000 limit | CPU ratio |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results.get("upload", []):
        pkg, lim, naive = r["package"], r["limit"], r["naive"]
        cpu = upload_cpu(r)
        lines.append(f"| {r['latency_ms']:g} ms | {_n(pkg['rate'])} | {_n(lim['rate'])} | {_n(naive['rate'])} | "
                     f"{pkg['rate'] / lim['rate']:.2f}x | {pkg['rate'] / naive['rate']:.1f}x | "
                     f"{cpu['package']:.1f} ms | {cpu['limit']:.1f} ms | "
                     f"{cpu['package'] / cpu['limit']:.1f}x |")  # fmt: skip
    return "\n".join(lines)


def table(plan: Plan, results: dict[str, Any]) -> str:
    """The results as one markdown table: benchmark | measured | target | met."""
    lines = ["| # | benchmark | measured | target | met |", "|---|---|---|---|---|"]

    def row(num: str, what: str, measured: str, target: str = "", met: str = "") -> None:
        lines.append(f"| {num} | {what} | {measured} | {target} | {met} |")

    for r in results.get("upload", []):
        pkg, lim, naive = r["package"], r["limit"], r["naive"]
        vs_limit, vs_naive = pkg["rate"] / lim["rate"], pkg["rate"] / naive["rate"]
        cpu = upload_cpu(r)
        # The bar: at 5 and 20 ms ≥ 0.90x limit and ≥ 2x naive; at every latency the goal
        # ≥ 0.95x limit with client CPU ≤ 2x the limit's (the robust figure on a loaded machine).
        near = r["latency_ms"] < 5
        met = vs_limit >= 0.95 if near else vs_limit >= 0.9 and vs_naive >= 2
        row("1", f"{_n(r['count'])} recipients → 1 campaign, addRecipients, {r['latency_ms']:g} ms latency",
            f"package {_n(pkg['rate'])}/s · limit {_n(lim['rate'])}/s · naive {_n(naive['rate'])}/s → "
            f"**{vs_limit:.2f}x limit, {vs_naive:.1f}x naive**; client CPU per 1,000: **package "
            f"{cpu['package']:.1f} ms, limit {cpu['limit']:.1f} ms = {cpu['package'] / cpu['limit']:.1f}x** "
            f"(naive {cpu['naive']:.1f} ms)",
            ("≥ 0.95x limit" if near else "≥ 0.90x limit, ≥ 2x naive") + "; CPU ≤ 2x limit's",
            _ok(met and cpu["package"] <= 2 * cpu["limit"]))  # fmt: skip
    if "memory" in results:
        m = results["memory"]["portions"]
        row("2", f"{_n(m['count'])} recipients streamed from CSV (portions), peak RSS above idle",
            f"**{m['peak_above_idle_mb']:.1f} MB** (idle {m['idle_rss_mb']:.0f} MB, peak {m['peak_rss_mb']:.0f} MB; "
            f"{_n(m['rate'])}/s)", "≤ 100 MB", _ok(m["peak_above_idle_mb"] <= 100))  # fmt: skip
        f = results["memory"]["file"]
        row("3", f"{_n(f['count'])} recipients through the file path, end to end (task completed)",
            f"**{f['seconds']:.1f} s** = {_n(f['rate'])}/s in {f['files']} file(s): spool + rest "
            f"{f['spool_and_rest_seconds']:.1f} s, upload {f['upload_seconds']:.1f} s, task wait "
            f"{f['task_wait_seconds']:.1f} s; peak RSS +{f['peak_above_idle_mb']:.1f} MB; added {_n(f['added'] or 0)}",
            "flat memory", _ok(f["peak_above_idle_mb"] <= 100))  # fmt: skip
    by_key = {(s["latency_ms"], s["method"], s["concurrency"]): s for s in results.get("statuses", [])}
    for (latency, method, level), s in by_key.items():
        if level == 1:
            continue
        seq = by_key[(latency, method, 1)]
        name = "getSMSStatus (100 ids/call)" if method == "getSMSStatus" else "message/list paging (100/page)"
        row("4", f"{_n(plan.statuses)} statuses, {name}, {latency:g} ms latency",
            f"sequential {seq['seconds']:.1f} s · concurrency {level} {s['seconds']:.1f} s → "
            f"**{seq['seconds'] / s['seconds']:.1f}x faster**", "", "")  # fmt: skip
    for t in results.get("triggers", []):
        label = "shared TLS context (package)" if t["variant"] == "shared-tls" else "a TLS context each (before)"
        row("5", f"{t['count']} campaign triggers in one event loop, {label}",
            f"**{t['cpu_ms_per_round']:.0f} ms CPU per poll round** ({t['cpu_ms_per_poll']:.2f} ms per poll), "
            f"**{t['kb_per_trigger']:.0f} KB per trigger**", "", "")  # fmt: skip
    for i in results.get("imports", []):
        if i["module"] == "(nothing)":
            continue
        target = i["module"].endswith("operators.mobizon")
        row("6", f"import {i['module']} after `import airflow` (Airflow itself: {i['airflow_ms']:,.0f} ms)",
            f"**{i['import_ms']:.0f} ms**", "≤ 50 ms", _ok(i["import_ms"] <= 50) if target else "")  # fmt: skip
    bsg = {(b["latency_ms"], b.get("create_ms", 0.0), b["concurrency"]): b for b in results.get("bsg_create", [])}
    for (latency, create_ms, level), b in bsg.items():
        if level == 1:
            continue
        seq = bsg[(latency, create_ms, 1)]
        server = f", the server {create_ms:g} ms more per creation (no CPU)" if create_ms else ""
        row("7", f"{_n(b['phones'])} phones → {b['campaigns']} BSG campaigns (sms/send), "
                 f"{latency:g} ms latency{server}",
            f"sequential {seq['seconds']:.2f} s · {level} at once {b['seconds']:.2f} s → "
            f"**{seq['seconds'] / b['seconds']:.2f}x faster** (client CPU {seq['cpu_seconds']:.2f} / "
            f"{b['cpu_seconds']:.2f} s, sandbox CPU {seq['server_cpu_seconds']:.2f} / {b['server_cpu_seconds']:.2f} s)",
            "", "")  # fmt: skip
    listing = next((s for s in results.get("statuses", []) if s["method"] == "list" and s["concurrency"] > 1), None)
    for r in results.get("reports", []):
        what = f"{_n(r['count'])} delivery records → {r['sink']} (report sink side alone), peak RSS above idle"
        if r.get("skipped"):
            row("8", what, "skipped: this install lacks the sink (FileSink) or its extra (parquet)", "", "")
            continue
        vs = (f" = **{r['rate'] / listing['rate']:.1f}x** row 4's message/list rate ({_n(listing['rate'])}/s at "
              f"{listing['latency_ms']:g} ms, concurrency {listing['concurrency']})") if listing else ""  # fmt: skip
        cpu = 1000 * r["cpu_seconds"] / (r["count"] / 1000)
        # Without row 4 in the same run only the memory goal can be judged.
        met = r["peak_above_idle_mb"] <= 100 and (not listing or r["rate"] >= listing["rate"])
        row("8", what,
            f"**{_n(r['rate'])}/s**{vs}; client CPU per 1,000: {cpu:.1f} ms; **+{r['peak_above_idle_mb']:.1f} MB** "
            f"(idle {r['idle_rss_mb']:.0f} MB); {r['bytes'] / 2**20:,.0f} MB written",
            "≥ listing rate; ≤ 100 MB", _ok(met))  # fmt: skip
    export = results.get("report_export")
    if export:
        count = export["count"]

        def per_1000(r: dict[str, Any]) -> float:
            return 1000 * 1000 * r["cpu_seconds"] / count

        def server(r: dict[str, Any]) -> str:
            cpu = r.get("server_cpu_seconds")
            return f", sandbox {per_1000({'cpu_seconds': cpu}):.1f} ms" if cpu else ""

        first = export["rows"]["listing"]
        first_limit = export["rows"].get("limit")
        if first_limit:
            row("8", f"{_n(count)} messages, keep-alive limit (bare httpx, same pages, bytes read, nothing parsed), "
                     f"{export['latency_ms']:g} ms latency, concurrency {export['concurrency']}",
                f"**{_n(first_limit['rate'])}/s**; CPU per 1,000: client {per_1000(first_limit):.1f} ms"
                f"{server(first_limit)}", "", "")  # fmt: skip
        row("8", f"{_n(count)} messages listed (MobizonHook.iter_messages by campaign, dicts), "
                 f"{export['latency_ms']:g} ms latency, concurrency {export['concurrency']}",
            f"**{_n(first['rate'])}/s**; CPU per 1,000: client {per_1000(first):.1f} ms{server(first)}",
            "", "")  # fmt: skip
        for kind, r in export["rows"].items():
            if kind in ("listing", "limit"):
                continue
            listed = r.get("listing_before") or first
            # The goal is against the keep-alive limit; the package's own listing is shown beside it.
            limit = r.get("limit_before", first_limit) or listed
            after = r.get("limit_after", limit)
            ratio = r.get("ratio", r["rate"] / limit["rate"])
            ratios = r.get("ratios", [ratio])
            rounds = (f" (median of {len(ratios)} rounds: {', '.join(f'{x:.2f}' for x in ratios)})"
                      if len(ratios) > 1 else "")  # fmt: skip
            # Judged in the sandbox's time where it was measured (bench.reports.server_time_ratio says why).
            server_median = r.get("server_ratio_median")
            judged = server_median or ratio
            in_server_time = (f"; in the sandbox's time **{judged:.2f}x** (rounds: "
                              f"{', '.join(f'{x:.2f}' for x in r['server_ratios'] if x is not None)})"
                              if server_median else "")  # fmt: skip
            peak = r.get("peak_above_idle_mb_max", r["peak_above_idle_mb"])
            row("8", f"{_n(count)} delivery records → {kind}, SmsDeliveryReportOperator end to end, "
                     f"{export['latency_ms']:g} ms latency, concurrency {export['concurrency']}",
                f"**{_n(r['rate'])}/s** vs limit before/after {_n(limit['rate'])}/{_n(after['rate'])}/s → "
                f"**{ratio:.2f}x**{rounds}{in_server_time} (vs listing {_n(listed['rate'])}/s: "
                f"{r['rate'] / listed['rate']:.2f}x); "
                f"CPU per 1,000: client {per_1000(r):.1f} ms{server(r)} (listing {per_1000(listed):.1f}, limit "
                f"{per_1000(limit):.1f}); **+{peak:.1f} MB** peak RSS (idle {r['idle_rss_mb']:.0f} MB)",
                "≥ 0.9x limit; ≤ 100 MB", _ok(judged >= 0.9 and peak <= 100))  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts: a check that everything runs")
    parser.add_argument("--only", default="1,2,3,4,5,6,7,8", help="benchmarks to run, e.g. 1,4")
    parser.add_argument("--recipients", type=int, help="override the audience size of 1-3")
    parser.add_argument("--records", type=int, help="override the delivery records of 8")
    parser.add_argument("--report-rounds", type=int, help="override the rounds of 8's end-to-end exports")
    parser.add_argument("--latencies", help="comma-separated simulated latencies in ms (default 0,1,5,20; quick: 5)")
    parser.add_argument("--json", type=Path, help="also write every raw number here")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.recipients:
        plan = Plan(**{**plan.__dict__, "recipients": args.recipients})
    if args.records:
        plan = Plan(**{**plan.__dict__, "report_records": args.records})
    if args.report_rounds:
        plan = Plan(**{**plan.__dict__, "report_rounds": args.report_rounds})
    if args.latencies:
        plan = Plan(**{**plan.__dict__, "latencies": tuple(float(x) for x in args.latencies.split(","))})
    only = {part.strip() for part in args.only.split(",")}
    info = machine()
    started = time.perf_counter()
    print(f"bench: {info['cpu']}, {info['nproc']} CPUs, {info['ram_gb']} GB; Python {info['python']}, "
          f"Airflow {info['airflow']}; load {info['load_average_at_start']}", flush=True)  # fmt: skip
    results: dict[str, Any] = {"machine": info, "plan": plan.__dict__}
    steps = [
        ("1", "upload", lambda: upload.run(plan.recipients, list(plan.latencies), plan.rounds)),
        ("2", "memory", lambda: memory.run(plan.recipients, plan.latencies[0], Path(tempfile.mkdtemp()))),
        ("4", "statuses", lambda: statuses.run(plan.statuses, plan.concurrency, list(plan.latencies))),
        ("5", "triggers", lambda: triggers.run(plan.triggers, rounds=plan.trigger_rounds,
                                               variants=plan.trigger_variants)),
        ("6", "imports", lambda: imports.run(plan.import_repeats, plan.import_modules)),
        ("7", "bsg_create", lambda: bsg_create.run(plan.bsg_phones, plan.bsg_concurrency, list(plan.bsg_scenarios),
                                                   plan.bsg_repeats)),
        ("8", "reports", lambda: reports.run(plan.report_records, Path(tempfile.mkdtemp(prefix="sms-bench-reports-")))),
        ("8", "report_export", lambda: reports.run_export(
            plan.report_records, Path(tempfile.mkdtemp(prefix="sms-bench-export-")),
            5.0 if 5.0 in plan.latencies else plan.latencies[0], plan.concurrency, plan.report_rounds)),
    ]
    for number, key, step in steps:
        if number not in only and not (key == "memory" and "3" in only):
            continue
        t0 = time.perf_counter()
        print(f"  running {key} ...", end="", flush=True)
        results[key] = step()
        print(f" {time.perf_counter() - t0:.0f} s", flush=True)
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    info["seconds"] = round(time.perf_counter() - started)
    print()
    print(table(plan, results))
    if results.get("upload"):
        print()
        print(upload_table(results))
    print(f"\n{info['seconds']} s in all; load average at the end {info['load_average_at_end']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
