"""One request's client CPU: the sync hooks' own HTTP/1.1 lane against httpx, side by side, over loopback.

    .venv/bin/python -m bench.http_client [REQUESTS]     # default 2,000 per client and call, best of 3

The sandbox runs in its own process with no added latency; this process sends the same built
requests, alternating the clients round by round, and counts its own CPU (``time.process_time``)
per request:

* ``httpx``: a bare ``httpx.Client.request``, the answer read as bytes (the limit's client in rows 1 and 8);
* ``send, httpx``: ``transport.send`` with a plain ``httpx.Client`` (the package before ``http11``);
* ``send, lane``: ``transport.send`` with the hooks' ``SyncClient`` (what every sync hook call uses).

Two calls: ``campaign/get`` (a small answer) and a ``message/list`` page of 100 final messages
(~28 KB, a delivery report's page). Not part of ``make bench``'s table: the rows there show what
this is worth end to end.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import API_KEY, CONN_ID, child_env, connection_env, new_campaign, phone, sandbox


def per_request(call: Callable[[], Any], count: int) -> float:
    """Client CPU microseconds per call, ``count`` calls after 50 unmeasured ones."""
    for _ in range(50):
        call()
    start = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - start) / count * 1e6


def main(count: int) -> None:
    import httpx

    with sandbox() as box:
        os.environ.update(child_env(**connection_env(box.url)))
        from airflow_sms_provider import transport
        from airflow_sms_provider.hooks.mobizon import MobizonHook
        from airflow_sms_provider.protocols import mobizon as proto

        hook = MobizonHook(CONN_ID)
        campaign = new_campaign()
        hook.add_recipients_in_portions(campaign, (phone(i) for i in range(100)))
        hook.send_campaign(campaign)
        box.admin("POST", "clock", json={"advance": 86_400})  # final: statuses and both timestamps
        hook.close()
        calls = {
            "campaign/get": proto.build("campaign", "get", API_KEY, {"id": campaign}),
            "message/list page of 100": proto.build("message", "list", API_KEY, {
                "criteria": {"campaignIds": [campaign]}, "pagination": {"currentPage": 0, "pageSize": 100},
                "sort": {}}),
        }  # fmt: skip
        policy = transport.RetryPolicy()
        bare = httpx.Client(base_url=box.url, timeout=30)
        plain = httpx.Client(**transport.client_options(box.url, 30, True))
        lane = transport.sync_client(box.url, 30, True)

        def read(req: transport.Request) -> bytes:
            return bare.request(req.method, req.path, params=req.params, headers=req.headers,
                                content=req.content).read()  # fmt: skip

        def send(client: httpx.Client, req: transport.Request) -> bytes:
            return transport.send(client, req, lambda resp: resp.content, policy)

        size = {name: len(send(lane, req)) for name, req in calls.items()}
        assert all(send(lane, req) == send(plain, req) == read(req) for req in calls.values())
        best: dict[tuple[str, str], float] = {}
        for _ in range(3):
            for name, req in calls.items():
                for variant, call in (("httpx", lambda r=req: read(r)), ("send, httpx", lambda r=req: send(plain, r)),
                                      ("send, lane", lambda r=req: send(lane, r))):  # fmt: skip
                    micros = per_request(call, count)
                    best[name, variant] = min(best.get((name, variant), micros), micros)
        for client in (bare, plain, lane):
            client.close()

    print("| call | answer | httpx | send, httpx | send, lane | lane vs send, httpx |")
    print("|---|---|---|---|---|---|")
    for name in calls:
        old, new = best[name, "send, httpx"], best[name, "send, lane"]
        print(f"| {name} | {size[name]:,} B | {best[name, 'httpx']:.0f} µs | {old:.0f} µs | {new:.0f} µs "
              f"| **{old / new:.1f}x less CPU** |")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
