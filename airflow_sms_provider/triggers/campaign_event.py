"""An event trigger for an ``AssetWatcher``: a campaign's end as an asset event, by polling.

For deployments no provider webhook can reach (docs/events.md, "Without a webhook"). The read
call and the decision are the neutral trigger's (:class:`~airflow_sms_provider.campaigns.watch.Watch`
over the hook's ``async_campaign_reader``); the event's extra has the receiver's keys
(``provider``, ``source``, ``campaign_ids``) plus the campaigns' final statuses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.providers.common.compat.connection import get_async_connection
from airflow.providers.common.compat.triggers import BaseEventTrigger
from airflow.triggers.base import TriggerEvent

from airflow_sms_provider.campaigns.events import error_event
from airflow_sms_provider.campaigns.watch import Watch, watch_async
from airflow_sms_provider.exceptions import SmsProviderError
from airflow_sms_provider.providers import provider_named

# After its event the trigger idles: one that returned would be started again by the
# triggerer (it stays attached to the asset) and fire again for the same finished campaign.
IDLE_SECONDS = 3600.0


class SmsCampaignEventTrigger(BaseEventTrigger):
    """Poll campaigns of one connection until all are final; then one event, then idle.

    :param conn_id: a ``mobizon``, ``bsg`` or ``ogangi`` connection (its type picks the provider,
        read when the trigger starts, so a DAG file needs no connection to parse).
    :param campaign_ids: the provider's campaign ids (Ogangi: broadcast ids).
    :param poll_interval: seconds between reads (default 60).

    The event: ``{"provider", "source": "<provider>/<conn_id>", "campaign_ids", "status":
    "done"|"failed", "message", "campaigns": {id: {"status", "provider_status"}}}``; when a
    call fails for good (bad credentials, a deleted campaign) ``status`` is ``"error"`` with
    ``message``/``fatal``/``error`` instead. Other failures are logged and read again.
    """

    def __init__(self, conn_id: str, campaign_ids: Sequence[int], poll_interval: float = 60.0) -> None:
        super().__init__()
        if not campaign_ids:
            raise ValueError("SmsCampaignEventTrigger needs at least one campaign id")
        self.conn_id = conn_id
        self.campaign_ids = [int(i) for i in campaign_ids]
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "conn_id": self.conn_id,
            "campaign_ids": self.campaign_ids,
            "poll_interval": self.poll_interval,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        yield TriggerEvent(await self.final_event())
        while True:  # see IDLE_SECONDS
            await asyncio.sleep(IDLE_SECONDS)

    async def final_event(self) -> dict[str, Any]:
        """Poll until the campaigns are final (or a call failed for good); the event's payload."""
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
        watch = Watch(self.campaign_ids, hook_class.describe_campaign)  # done campaigns stay done across retries
        while True:
            try:
                client, read = hook_class.async_campaign_reader(conn)
            except SmsProviderError as exc:
                return {**base, **error_event(exc)}
            async for event in watch_async(client, read, watch, self.poll_interval, self.log, provider):
                if event["status"] != "error" or event.get("fatal"):
                    return {**base, **event}
                self.log.warning("%s: reading campaigns %s failed, reading again in %ss: %s",
                                 provider, self.campaign_ids, self.poll_interval, event["message"])
            await asyncio.sleep(self.poll_interval)


__all__ = ["SmsCampaignEventTrigger"]
