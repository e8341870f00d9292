"""Benchmark 7: a split BSG audience, its campaigns created one after the other vs concurrently.

``BsgBulkCampaignOperator.execute()`` on N phones (campaigns of 10,000), as a DAG runs it:
both passes over the audience (check, then send), reference ids, the durable checkpoint
(an in-memory store), with ``max_concurrent_creates=1`` and ``=BOUND``, alternately,
REPEATS times each (the median is reported). Before each run the sandbox is reset (nothing
accumulates) and given the scenario: a latency in ms and, optionally, ``create_ms``, a time
the server spends on each creation without using CPU (the sandbox's own ~80 ms of CPU per
10,000 phones is always there, and one event loop does it one creation at a time). Every
run checks the sandbox holds N/10,000 campaigns with every phone once and no duplicate.

Child: ``python -m bench.bsg_create COUNT BOUND SANDBOX_PID REPEATS LATENCY[:CREATE_MS][,...]``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from bench.common import Timer, emit, run_child, sandbox

CHUNK = 10_000


def bsg_phone(i: int) -> str:
    """The i-th benchmark number: 12 digits, ending in 1 (delivered on the sandbox)."""
    return f"38050{i:06d}1"


class _Store:
    """``context["task_state_store"]`` as a JSON store would behave (values copied on set)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child(count: int, bound: int, server_pid: int, repeats: int, scenarios: list[tuple[float, float]]) -> None:
    from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY

    url = os.environ["BENCH_SANDBOX_URL"]
    conn = {"conn_type": "bsg", "host": url, "password": SANDBOX_BSG_API_KEY, "extra": {"retry_base_delay": 0.05}}
    os.environ["AIRFLOW_CONN_BSG_DEFAULT"] = json.dumps(conn)
    from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator

    audience = [bsg_phone(i) for i in range(count)]

    def admin(path: str, **body: Any) -> Any:
        response = httpx.post(f"{url}/_sandbox/{path}", json=body or None, timeout=120)
        response.raise_for_status()
        return response.json()

    def run_once(level: int, run_id: str) -> tuple[float, float]:
        store = _Store()
        ti = SimpleNamespace(dag_id="bench", task_id="send", run_id=run_id, map_index=-1)
        op = BsgBulkCampaignOperator(task_id="send", recipients=audience, text="Bench sale", sender="Bench",
                                     max_concurrent_creates=level)  # fmt: skip
        with Timer() as timer:
            summary = op.execute({"ti": ti, "task_state_store": store})
        state = httpx.get(f"{url}/_sandbox/bsg/state", params={"messages": "false"}, timeout=120).json()
        phones = [c["phones"] for c in state["campaigns"]]
        expected = -(-count // CHUNK)
        assert len(phones) == expected and sum(phones) == count, phones
        assert len(summary["campaign_ids"]) == expected and state["auth"]["duplicates"] == 0
        return timer.wall, timer.cpu

    # Warm-up: imports, connection lookup, the first login and TLS-less connection, one small campaign.
    admin("reset")
    BsgBulkCampaignOperator(task_id="warm", recipients=audience[:10], text="Warm", sender="Bench"
                            ).execute({"ti": SimpleNamespace(dag_id="bench", task_id="warm", run_id="w",
                                                             map_index=-1)})  # fmt: skip
    rows = []
    for latency, create_ms in scenarios:
        samples: dict[int, list[tuple[float, float, float]]] = {1: [], bound: []}
        for repeat in range(repeats):
            for level in (1, bound):  # alternately, so a busy moment of the machine slows both alike
                admin("reset")
                admin("config", latency_ms=latency, connect_latency_ms=2 * latency)
                admin("bsg/config", create_ms=create_ms)
                server_cpu = _cpu_seconds(server_pid)
                wall, cpu = run_once(level, f"bench-{latency}-{create_ms}-{level}-{repeat}")
                samples[level].append((wall, cpu, _cpu_seconds(server_pid) - server_cpu))
        for level, runs in samples.items():
            wall = statistics.median(r[0] for r in runs)
            rows.append({"latency_ms": latency, "create_ms": create_ms, "concurrency": level, "seconds": wall,
                         "cpu_seconds": statistics.median(r[1] for r in runs),
                         "server_cpu_seconds": statistics.median(r[2] for r in runs),
                         "all_seconds": [round(r[0], 3) for r in runs],
                         "phones": count, "campaigns": -(-count // CHUNK), "rate": count / wall})  # fmt: skip
    emit({"count": count, "rows": rows})


def run(count: int, bound: int, scenarios: list[tuple[float, float]], repeats: int = 3) -> list[dict[str, Any]]:
    spec = ",".join(f"{latency:g}:{create_ms:g}" for latency, create_ms in scenarios)
    with sandbox() as box:
        return run_child("bsg_create", count, bound, box.process.pid, repeats, spec, url=box.url)["rows"]


def _scenario(text: str) -> tuple[float, float]:
    latency, _, create_ms = text.partition(":")
    return float(latency), float(create_ms or 0)


if __name__ == "__main__":
    child(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
          [_scenario(x) for x in sys.argv[5].split(",")])  # fmt: skip
