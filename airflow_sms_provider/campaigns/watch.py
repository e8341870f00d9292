"""One watch loop: poll, compare, decide; sync for workers, async for triggers.

:func:`poll_until` and :func:`apoll_until` are the loop every wait of this package runs:
call ``poll`` (one read and its decision), log the message (once per change, or every
poll), stop when the decision is final, else sleep. The provider triggers and the
one-step operators' in-process waits give their own ``poll``; the neutral ones give
:class:`Watch`'s:

The neutral sensor's ``poke`` (:func:`poke`), the neutral operator's in-process wait
(:func:`wait`) and the neutral trigger's ``run`` (:func:`watch_async`) all go through
:class:`Watch`, so they read the same campaigns, in the same order, and decide the same
way (:func:`airflow_sms_provider.status_map.overall` over the hook's ``describe_campaign``).
A campaign already ``done`` is not asked again; one the provider no longer knows ends the
wait with a fatal error naming its id and host.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx

from airflow_sms_provider import status_map
from airflow_sms_provider.campaigns.events import error_event, not_found
from airflow_sms_provider.exceptions import SmsCampaignFailedError, SmsNotFoundError, SmsProviderError
from airflow_sms_provider.hooks.base import AsyncReader

Describe = Callable[[Mapping[str, Any] | None], Mapping[str, str]]
# One poll's decision: (outcome word, a line saying why, the data read).
Outcome = tuple[str, str, Any]


def poll_until(poll: Callable[[], Outcome], final: Callable[[str], bool], poll_interval: float, log: Any, *,
               label: str = "", changes_only: bool = False, sleep: Callable[[float], None] = time.sleep) -> Outcome:
    """Call ``poll`` until ``final(outcome)``; returns the last outcome. Errors propagate."""
    logged = None
    while True:
        outcome = poll()
        if not changes_only or outcome[1] != logged:
            log.info("%s%s", label, outcome[1])
            logged = outcome[1]
        if final(outcome[0]):
            return outcome
        sleep(poll_interval)


async def apoll_until(poll: Callable[[], Awaitable[Outcome]], final: Callable[[str], bool], poll_interval: float,
                      log: Any, *, label: str = "", changes_only: bool = True) -> Outcome:
    """:func:`poll_until` for a trigger: the same loop, awaiting ``poll`` and the pause.

    ``changes_only``: a line per change, not per poll (a trigger can wait for days).
    """
    logged = None
    while True:
        outcome = await poll()
        if not changes_only or outcome[1] != logged:
            log.info("%s%s", label, outcome[1])
            logged = outcome[1]
        if final(outcome[0]):
            return outcome
        await asyncio.sleep(poll_interval)


class Watch:
    """What one wait knows: the latest ``{"status", "provider_status"}`` of each campaign."""

    def __init__(self, ids: Sequence[int], describe: Describe, latest: dict[str, dict[str, str]] | None = None
                 ) -> None:
        self.ids = [int(i) for i in ids]
        self.describe = describe
        # Kept by the caller across pokes (a sensor in poke mode): done campaigns stay done.
        self.latest = {} if latest is None else latest

    def due(self) -> list[int]:
        """The campaigns to read now: every one not ``done``."""
        return [i for i in self.ids if self.latest.get(str(i), {}).get("status") != status_map.DONE]

    def record(self, campaign_id: int, data: Mapping[str, Any] | None) -> None:
        self.latest[str(campaign_id)] = dict(self.describe(data))

    def decide(self) -> tuple[str, str, dict[str, dict[str, str]]]:
        """(overall status, a line saying why, every campaign's latest)."""
        campaigns = {str(i): self.latest[str(i)] for i in self.ids}
        status, message = status_map.overall(campaigns)
        return status, message, campaigns


def read_named(hook: Any, campaign_id: int) -> Mapping[str, Any] | None:
    """``hook.read_campaign``, with a campaign that is gone named with its id and host (fatal)."""
    try:
        return hook.read_campaign(campaign_id)
    except SmsNotFoundError as err:
        raise not_found("campaign", campaign_id, hook.api_base_url, err) from err


def poke(hook: Any, watch: Watch) -> tuple[str, str, dict[str, dict[str, str]]]:
    """Read every campaign not done yet once and decide."""
    for campaign_id in watch.due():
        watch.record(campaign_id, read_named(hook, campaign_id))
    return watch.decide()


def raise_if_failed(status: str, message: str, campaigns: Mapping[str, Any], provider: str) -> None:
    if status == status_map.FAILED:
        raise SmsCampaignFailedError(message, provider=provider, details=dict(campaigns))


def wait(hook: Any, ids: Sequence[int], poll_interval: float, log: Any,
         sleep: Callable[[float], None] = time.sleep) -> dict[str, dict[str, str]]:
    """Poll in this process until every campaign is done; raise when one failed."""
    watch = Watch(ids, hook.describe_campaign)
    status, message, campaigns = poll_until(lambda: poke(hook, watch), status_map.FINAL.__contains__, poll_interval,
                                            log, label=f"{hook.conn_type}: ", sleep=sleep)
    raise_if_failed(status, message, campaigns, hook.conn_type)
    return dict(campaigns)


async def watch_async(
    client: httpx.AsyncClient, read: AsyncReader, watch: Watch, poll_interval: float, log: Any, provider: str
) -> AsyncIterator[dict[str, Any]]:
    """The trigger's loop: yields one event, ``{"status": "done"|"failed", "message", "campaigns"}``,
    or an error event (:func:`~airflow_sms_provider.campaigns.events.error_event`) when a call failed."""
    reading: int | None = None

    async def poll() -> Outcome:
        nonlocal reading
        for campaign_id in watch.due():
            reading = campaign_id
            data = await read(client, campaign_id)
            reading = None
            watch.record(campaign_id, data)
        return watch.decide()

    try:
        async with client:
            status, message, campaigns = await apoll_until(poll, status_map.FINAL.__contains__, poll_interval, log,
                                                           label=f"{provider}: ")
        yield {"status": status, "message": message, "campaigns": campaigns}
    except SmsNotFoundError as exc:  # deleted at the provider while we waited: fatal, named
        if reading is None:
            yield error_event(exc, campaigns=None)
        else:
            yield error_event(not_found("campaign", reading, str(client.base_url), exc), campaigns=None)
    except SmsProviderError as exc:
        yield error_event(exc, campaigns=None)


__all__ = [
    "Outcome", "Watch", "apoll_until", "poke", "poll_until", "raise_if_failed", "read_named", "wait", "watch_async",
]
