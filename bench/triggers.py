"""Benchmark 5: N deferred campaign sensors' triggers in one event loop, as in a triggerer.

N campaigns that stay NEW (so no trigger ever fires) are polled by N
``MobizonCampaignTrigger`` s in one asyncio loop. After a warm-up round, the child
measures its CPU time over several poll rounds, and its RSS growth from before the
triggers were created, divided by N.

``--variant own-tls`` gives every trigger a client with its own TLS context, as the
package did before it shared one per process (for comparison).

Child: ``python -m bench.triggers COUNT INTERVAL ROUNDS VARIANT``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from bench.common import CONN_ID, emit, new_campaigns, rss_mb, run_child, sandbox


def child(count: int, interval: float, rounds: int, variant: str) -> None:
    import logging
    import time

    from airflow_sms_provider.hooks.mobizon import MobizonSettings
    from airflow_sms_provider.transport import client_options
    from airflow_sms_provider.triggers.mobizon import MobizonCampaignTrigger

    logging.disable(logging.CRITICAL)  # the triggerer ships logs elsewhere; not what is measured here
    if variant == "own-tls":
        import httpx

        def own_client(self: MobizonSettings) -> httpx.AsyncClient:
            return httpx.AsyncClient(**client_options(self.http.base_url, self.http.timeout, self.http.verify))

        MobizonSettings.async_client = own_client  # type: ignore[method-assign]
    polls = [0]
    original = MobizonSettings.acall

    async def counted(self: MobizonSettings, *args: Any) -> Any:
        polls[0] += 1
        return await original(self, *args)

    MobizonSettings.acall = counted  # type: ignore[method-assign]
    ids = new_campaigns(count)

    async def main() -> dict[str, Any]:
        before = rss_mb()
        triggers = [MobizonCampaignTrigger(CONN_ID, campaign_id, poll_interval=interval) for campaign_id in ids]

        async def consume(trigger: MobizonCampaignTrigger) -> None:
            async for event in trigger.run():
                raise RuntimeError(f"a trigger fired: {event}")

        tasks = [asyncio.create_task(consume(trigger)) for trigger in triggers]
        while polls[0] < count:  # first round: connections, clients, connection lookups
            await asyncio.sleep(0.05)
        await asyncio.sleep(interval)
        start_polls, cpu, wall = polls[0], time.process_time(), time.perf_counter()
        await asyncio.sleep(interval * rounds)
        cpu, wall, done = time.process_time() - cpu, time.perf_counter() - wall, polls[0] - start_polls
        after = rss_mb()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        measured_rounds = done / count
        return {
            "variant": variant, "count": count, "interval": interval, "rounds": measured_rounds,
            "cpu_seconds": cpu, "wall_seconds": wall,
            "cpu_ms_per_round": 1000 * cpu / measured_rounds, "cpu_ms_per_poll": 1000 * cpu / done,
            "rss_before_mb": before, "rss_after_mb": after, "kb_per_trigger": 1024 * (after - before) / count,
        }  # fmt: skip

    emit(asyncio.run(main()))


VARIANTS = ("shared-tls", "own-tls")


def run(
    count: int, interval: float = 2.0, rounds: int = 5, latency_ms: float = 5.0, variants: tuple[str, ...] = VARIANTS
) -> list[dict[str, Any]]:
    results = []
    with sandbox(latency_ms, 2 * latency_ms) as box:
        for variant in variants:
            box.reset()
            results.append(run_child("triggers", count, interval, rounds, variant, url=box.url))
    return results


if __name__ == "__main__":
    child(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
