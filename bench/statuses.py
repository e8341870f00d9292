"""Benchmark 4: delivery statuses of N messages, sequential vs bounded-concurrent.

A campaign of N messages is filled once (its message ids kept), then, at each latency:

* ``MobizonHook.get_sms_status(ids, concurrency=c)``: message/getSMSStatus, 100 ids a call;
* ``MobizonHook.iter_messages({"campaignIds": [id]}, concurrency=c)``: message/list, 100 a page.

Every run checks it got one status per message, in order.

Child: ``python -m bench.statuses COUNT CONCURRENCY LATENCY[,LATENCY...]``; it sets the
sandbox's latency itself between measurements (admin API).
"""

from __future__ import annotations

import sys
from typing import Any

import httpx

from bench.common import CONN_ID, Timer, emit, new_campaign, phone, run_child, sandbox


def child(count: int, concurrency: int, latencies: list[float]) -> None:
    import os

    from airflow_sms_provider.hooks.mobizon import MobizonHook

    url = os.environ["BENCH_SANDBOX_URL"]
    hook = MobizonHook(CONN_ID)
    campaign_id = new_campaign()
    httpx.post(f"{url}/_sandbox/config", json={"latency_ms": 0}).raise_for_status()
    added = hook.add_recipients_in_portions(campaign_id, (phone(i) for i in range(count)), keep_message_ids=count)
    ids = added.message_ids
    assert len(ids) == count, len(ids)
    rows = []
    for latency in latencies:
        wire = {"latency_ms": latency, "connect_latency_ms": 2 * latency}
        httpx.post(f"{url}/_sandbox/config", json=wire).raise_for_status()
        for method in ("getSMSStatus", "list"):
            for level in (1, concurrency):
                with Timer() as timer:
                    if method == "getSMSStatus":
                        got = [int(row["id"]) for row in hook.iter_sms_status(ids, concurrency=level)]
                    else:
                        got = [int(row["id"]) for row in hook.iter_messages({"campaignIds": [campaign_id]},
                                                                          concurrency=level)]  # fmt: skip
                assert got == ids, f"{method} concurrency={level}: incomplete or out of order"
                rows.append({"latency_ms": latency, "method": method, "concurrency": level, "seconds": timer.wall,
                             "cpu_seconds": timer.cpu, "rate": count / timer.wall})  # fmt: skip
    emit({"count": count, "rows": rows})


def run(count: int, concurrency: int, latencies: list[float]) -> list[dict[str, Any]]:
    with sandbox() as box:
        return run_child("statuses", count, concurrency, ",".join(map(str, latencies)), url=box.url)["rows"]


if __name__ == "__main__":
    child(int(sys.argv[1]), int(sys.argv[2]), [float(x) for x in sys.argv[3].split(",")])
