"""Benchmark 1: N recipients into one Mobizon campaign through addRecipients, three ways.

* ``limit``: the physical limit: one keep-alive httpx connection posting bodies that were
  encoded before the clock started, reading each answer and nothing else.
* ``package``: ``MobizonAddRecipientsOperator.execute`` on a one-shot iterator of numbers
  (``bench.common.phones``: made in C, so the audience's own cost is not counted as the
  package's), as a DAG would run it: normalisation, encoding, per-recipient results, progress lines.
* ``naive``: what a loop of generic HTTP calls does: ``requests.post(url, data=...)`` per
  portion of 500, i.e. a new session and a new connection per request, answer parsed.
  Over plain http on loopback it pays no TLS work; against the real https API each new
  connection would also cost a TLS handshake's CPU, so this baseline flatters itself.

The sandbox adds ``latency_ms`` to every request and twice that to the first request of
each new connection (the TCP and TLS handshakes' round trips on a real network).

Each variant runs in its own long-lived child process (``python -m bench.upload VARIANT``)
that uploads one round at a time when asked; rounds of the three variants alternate, so
a busy neighbour on a shared machine slows them alike, and every variant ends with its
N recipients in one campaign.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from bench.common import (
    API_KEY,
    CONN_ID,
    ROOT,
    Timer,
    child_env,
    connection_env,
    emit,
    new_campaign,
    phone,
    phones,
    sandbox,
)

PORTION = 500
VARIANTS = ("limit", "package", "naive")


def _limit(campaign_id: int, start: int, count: int) -> dict[str, Any]:
    import httpx

    url = httpx.URL(f"{os.environ['BENCH_SANDBOX_URL']}/service/campaign/addRecipients",
                    params={"output": "json", "api": "v1", "apiKey": API_KEY})  # fmt: skip
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    end = start + count
    bodies = [
        "&".join([f"id={campaign_id}", *(f"recipients%5B{j}%5D={phone(i + j)}"
                                         for j in range(min(PORTION, end - i)))]).encode()
        for i in range(start, end, PORTION)
    ]  # fmt: skip
    client = _limit_client()
    with Timer() as timer:
        for body in bodies:
            client.post(url, content=body, headers=headers).read()
    return {"seconds": timer.wall, "cpu_seconds": timer.cpu, "requests": len(bodies)}


_CLIENT: list[Any] = []


def _limit_client() -> Any:
    # One keep-alive client for every round: the limit never reconnects.
    if not _CLIENT:
        import httpx

        _CLIENT.append(httpx.Client(timeout=60))
    return _CLIENT[0]


def _package(campaign_id: int, start: int, count: int) -> dict[str, Any]:
    from airflow_sms_provider.operators.mobizon import MobizonAddRecipientsOperator

    operator = MobizonAddRecipientsOperator(
        task_id="bench_upload", mobizon_conn_id=CONN_ID, campaign_id=campaign_id,
        recipients=phones(start, count), expected_count=count,
    )  # fmt: skip
    with Timer() as timer:
        summary = operator.execute({})
    assert summary["added"] + summary["duplicates"] == count, summary
    return {"seconds": timer.wall, "cpu_seconds": timer.cpu, "requests": -(-count // PORTION) + 1}  # + campaign/get


def _naive(campaign_id: int, start: int, count: int) -> dict[str, Any]:
    import requests

    url = f"{os.environ['BENCH_SANDBOX_URL']}/service/campaign/addRecipients"
    query = {"output": "json", "api": "v1", "apiKey": API_KEY}
    numbers = [phone(i) for i in range(start, start + count)]
    with Timer() as timer:
        for offset in range(0, count, PORTION):
            form = {"id": campaign_id}
            form.update({f"recipients[{j}]": n for j, n in enumerate(numbers[offset : offset + PORTION])})
            # requests.post: a new session and connection per call, as generic HTTP code does.
            answer = requests.post(url, params=query, data=form, timeout=60).json()
            if answer["code"] not in (0, 98, 99):
                raise RuntimeError(answer)
    return {"seconds": timer.wall, "cpu_seconds": timer.cpu, "requests": -(-count // PORTION)}


def child(variant: str) -> None:
    """Serve rounds: each stdin line ``{"start": s, "count": n}`` uploads numbers s..s+n-1."""
    upload = {"limit": _limit, "package": _package, "naive": _naive}[variant]
    upload(new_campaign(), 9 * 10**7, 2000)  # warm-up: imports, connection lookup, first allocations
    campaign_id = new_campaign()
    emit({"ready": True, "campaign_id": campaign_id})
    for line in sys.stdin:
        job = json.loads(line)
        emit(upload(campaign_id, job["start"], job["count"]))


class _Worker:
    def __init__(self, variant: str, url: str) -> None:
        self.variant = variant
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.upload", variant], cwd=ROOT, env=child_env(**connection_env(url)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self.campaign_id = self._read()["campaign_id"]
        self.totals = {"seconds": 0.0, "cpu_seconds": 0.0, "requests": 0, "server_cpu_seconds": 0.0}

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"bench.upload {self.variant} stopped (exit {self.process.wait()})")

    def round(self, start: int, count: int) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"start": start, "count": count}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def run(count: int, latencies: list[float], rounds: int = 10) -> list[dict[str, Any]]:
    """Every variant at every latency; per variant: rate, client CPU, server CPU per request."""
    rows = []
    per_round = -(-count // rounds)
    for latency in latencies:
        with sandbox(latency, 2 * latency) as box:
            workers = [_Worker(variant, box.url) for variant in VARIANTS]
            try:
                for index in range(rounds):
                    start = index * per_round
                    size = min(per_round, count - start)
                    # Rotate who goes first, so no variant always follows the same one.
                    for worker in workers[index % 3 :] + workers[: index % 3]:
                        cpu = box.cpu_seconds()
                        result = worker.round(start, size)
                        result["server_cpu_seconds"] = box.cpu_seconds() - cpu
                        for key in worker.totals:
                            worker.totals[key] += result[key]
            finally:
                for worker in workers:
                    worker.close()
            row: dict[str, Any] = {"latency_ms": latency, "count": count}
            for worker in workers:
                totals = worker.totals
                row[worker.variant] = {**totals, "rate": count / totals["seconds"]}
            rows.append(row)
    return rows


if __name__ == "__main__":
    child(sys.argv[1])
