"""An event trigger for an ``AssetWatcher``: a campaign's end as an asset event, by polling.

For deployments no provider webhook can reach (docs/events.md, "Without a webhook"). The read
call and the decision are the neutral trigger's (:class:`~airflow_sms_provider.campaigns.watch.Watch`
over the hook's ``async_campaign_reader``); the event's extra has the receiver's keys
(``provider``, ``source``, ``campaign_ids``) plus the campaigns' final statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from airflow.providers.common.compat.connection import get_async_connection
from airflow.providers.common.compat.triggers import BaseEventTrigger
from airflow.triggers.base import TriggerEvent

from airflow_sms_provider.campaigns.events import error_event
from airflow_sms_provider.campaigns.watch import Watch, watch_async
from airflow_sms_provider.exceptions import SmsProviderError
from airflow_sms_provider.hooks.base import AsyncCountsReader
from airflow_sms_provider.providers import provider_named
from airflow_sms_provider.reports.record import DELIVERED, PENDING

# After its event the trigger idles: one that returned would be started again by the
# triggerer (it stays attached to the asset) and fire again for the same finished campaign.
IDLE_SECONDS = 3600.0


class SmsCampaignEventTrigger(BaseEventTrigger):
    """Poll campaigns of one connection until all are final (or enough are delivered); one event, then idle.

    :param conn_id: a ``mobizon``, ``bsg`` or ``ogangi`` connection (its type picks the provider,
        read when the trigger starts, so a DAG file needs no connection to parse).
    :param campaign_ids: the provider's campaign ids (Ogangi: broadcast ids).
    :param poll_interval: seconds between reads (default 60).
    :param delivered_ratio: fire as soon as delivered / messages of all the campaigns reaches this
        ratio (0 < ratio <= 1), even before every message is final; ``None`` (default): when all
        are final. Needs per-status counts (Mobizon, BSG; not Ogangi).

    The event: ``{"provider", "source": "<provider>/<conn_id>", "campaign_ids", "status":
    "done"|"failed"|"ratio_reached", "message", "campaigns": {id: {"status", "provider_status"}}}``,
    plus, where the provider gives per-status counts, the receiver's ``counts`` (final message
    statuses, the provider's words), ``messages`` (in the campaigns), ``delivered`` and
    ``delivered_ratio``. When a call fails for good (bad credentials, a deleted campaign)
    ``status`` is ``"error"`` with ``message``/``fatal``/``error`` instead. Other failures are
    logged and read again.
    """

    def __init__(
        self,
        conn_id: str,
        campaign_ids: Sequence[int],
        poll_interval: float = 60.0,
        delivered_ratio: float | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(conn_id, str) or not conn_id:
            raise ValueError(f"SmsCampaignEventTrigger: conn_id={conn_id!r} must be a connection id")
        if isinstance(campaign_ids, (str, bytes)) or not campaign_ids:
            raise ValueError("SmsCampaignEventTrigger needs at least one campaign id (a list of whole numbers)")
        ids = []
        for value in campaign_ids:
            whole = isinstance(value, (int, str)) and not isinstance(value, bool) and str(value).isdigit()
            if not whole or not int(value):
                raise ValueError(f"SmsCampaignEventTrigger: campaign id {value!r} is not a positive whole number")
            ids.append(int(value))
        self.conn_id = conn_id
        self.campaign_ids = ids
        self.poll_interval = _number(poll_interval, "poll_interval", 0.0, None)
        ratio = delivered_ratio
        self.delivered_ratio = None if ratio is None else _number(ratio, "delivered_ratio", 0.0, 1.0)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "conn_id": self.conn_id,
            "campaign_ids": self.campaign_ids,
            "poll_interval": self.poll_interval,
            "delivered_ratio": self.delivered_ratio,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        yield TriggerEvent(await self.final_event())
        while True:  # see IDLE_SECONDS
            await asyncio.sleep(IDLE_SECONDS)

    async def final_event(self) -> dict[str, Any]:
        """Poll until the campaigns are final, the ratio is reached, or a call failed for good; the payload."""
        provider = "unknown"
        base = {"provider": provider, "source": f"{provider}/{self.conn_id}", "campaign_ids": self.campaign_ids}
        try:
            conn = await get_async_connection(self.conn_id)
            found = provider_named(conn.conn_type, self.conn_id)
        except SmsProviderError as exc:
            return {**base, **error_event(exc)}
        except Exception as exc:  # a missing connection: no point in reading again
            return {**base, **error_event(SmsProviderError(f"connection {self.conn_id!r}: {exc}"), fatal=True)}
        provider = found.conn_type
        base = {**base, "provider": provider, "source": f"{provider}/{self.conn_id}"}
        hook_class = found.hook_class()
        try:
            counter = hook_class.async_counts_reader(conn)
        except SmsProviderError as exc:
            return {**base, **error_event(exc)}
        if counter is None and self.delivered_ratio is not None:
            problem = SmsProviderError(
                f"delivered_ratio needs per-status counts, which {provider} campaigns do not give; "
                "leave delivered_ratio out to fire when the campaigns are final"
            )
            return {**base, **error_event(problem, fatal=True)}
        if counter is None:
            return await self._until_final(hook_class, conn, base)
        async with counter[0]:
            if self.delivered_ratio is None:
                event = await self._until_final(hook_class, conn, base)
            else:
                event = await self._until_final_or_ratio(hook_class, conn, base, counter)
            if event["status"] in ("done", "failed"):
                event.update(await self._counts(hook_class, counter, final=True))
        return event

    async def _until_final(self, hook_class: Any, conn: Any, base: dict[str, Any]) -> dict[str, Any]:
        watch = Watch(self.campaign_ids, hook_class.describe_campaign)  # done campaigns stay done across retries
        while True:
            try:
                client, read = hook_class.async_campaign_reader(conn)
            except SmsProviderError as exc:
                return {**base, **error_event(exc)}
            async for event in watch_async(client, read, watch, self.poll_interval, self.log, base["provider"]):
                if event["status"] != "error" or event.get("fatal"):
                    return {**base, **event}
                self.log.warning("%s: reading campaigns %s failed, reading again in %ss: %s",
                                 base["provider"], self.campaign_ids, self.poll_interval, event["message"])
            await asyncio.sleep(self.poll_interval)

    async def _until_final_or_ratio(
        self, hook_class: Any, conn: Any, base: dict[str, Any], counter: tuple[httpx.AsyncClient, AsyncCountsReader]
    ) -> dict[str, Any]:
        final = asyncio.ensure_future(self._until_final(hook_class, conn, base))
        try:
            while not final.done():
                counts = await self._counts(hook_class, counter)
                if counts and counts["messages"] and counts["delivered_ratio"] >= (self.delivered_ratio or 0):
                    if final.done():  # all final in the meantime: that event says more
                        break
                    message = (f"{counts['delivered']} of {counts['messages']} messages delivered "
                               f"(ratio {counts['delivered_ratio']:.3f} >= {self.delivered_ratio})")  # fmt: skip
                    return {**base, "status": "ratio_reached", "message": message, "campaigns": {}, **counts}
                await asyncio.wait([final], timeout=self.poll_interval)
            return final.result()
        finally:
            if not final.done():
                final.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await final

    async def _counts(self, hook_class: Any, counter: tuple[httpx.AsyncClient, AsyncCountsReader],
                      final: bool = False) -> dict[str, Any]:  # fmt: skip
        """The campaigns' counts in the receiver's shape; {} when a read failed (logged; the event goes without)."""
        client, read = counter
        total, counts = 0, dict[str, int]()
        try:
            for campaign_id in self.campaign_ids:
                messages, by_status = await read(client, campaign_id)
                total += messages
                for word, n in by_status.items():
                    if hook_class.message_status(word) != PENDING:  # final statuses only, as the receiver
                        counts[word] = counts.get(word, 0) + n
        except SmsProviderError as exc:
            self.log.warning("%s: reading the counts of campaigns %s failed%s: %s", hook_class.conn_type,
                             self.campaign_ids, "" if final else f", reading again in {self.poll_interval}s", exc)
            return {}
        delivered = sum(n for word, n in counts.items() if hook_class.message_status(word) == DELIVERED)
        return {"counts": dict(sorted(counts.items())), "messages": total, "delivered": delivered,
                "delivered_ratio": round(delivered / total, 6) if total else 0.0}  # fmt: skip


def _number(value: Any, name: str, above: float, at_most: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not above < value <= (at_most or math.inf):
        limit = f"{above} < {name} <= {at_most}" if at_most is not None else f"{name} > {above}"
        raise ValueError(f"SmsCampaignEventTrigger: {name}={value!r} must be a number with {limit}")
    return float(value)


__all__ = ["SmsCampaignEventTrigger"]
