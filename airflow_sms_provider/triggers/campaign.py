"""Async polling for the provider-neutral campaign sensor and operator.

The read call is the connection's hook's ``async_campaign_reader`` (the provider's own
async machinery: the same requests, parsers and retry policy as the hook); the loop and the
decision are :func:`airflow_sms_provider.campaigns.watch.watch_async`'s, shared with ``poke``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.providers.common.compat.connection import get_async_connection
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_sms_provider.campaigns.events import error_event
from airflow_sms_provider.campaigns.watch import Watch, watch_async
from airflow_sms_provider.exceptions import SmsProviderError
from airflow_sms_provider.providers import provider_named


class SmsCampaignTrigger(BaseTrigger):
    """Polls every campaign until all are ``done`` or one has ``failed``.

    Campaigns already done are not asked again. Events: ``{"status": "done"|"failed",
    "message", "campaigns": {id: {"status", "provider_status"}}}``, or ``{"status": "error",
    "message", "fatal": bool, "campaigns": None}`` when a call failed.
    """

    def __init__(
        self, conn_id: str, conn_type: str, campaign_ids: Sequence[int], poll_interval: float = 30.0
    ) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.conn_type = provider_named(conn_type).conn_type
        self.campaign_ids = [int(i) for i in campaign_ids]
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "conn_id": self.conn_id,
            "conn_type": self.conn_type,
            "campaign_ids": self.campaign_ids,
            "poll_interval": self.poll_interval,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook_class = provider_named(self.conn_type).hook_class()
        try:
            # The async connection helper: run() never calls the sync connection API.
            conn = await get_async_connection(self.conn_id, hook_class)
            client, read = hook_class.async_campaign_reader(conn)
        except SmsProviderError as exc:
            yield TriggerEvent(error_event(exc, campaigns=None))
            return
        watch = Watch(self.campaign_ids, hook_class.describe_campaign)
        async for event in watch_async(client, read, watch, self.poll_interval, self.log, self.conn_type):
            yield TriggerEvent(event)
