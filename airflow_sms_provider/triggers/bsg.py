"""Async polling for the deferrable BSG campaign sensor.

The trigger sends the same requests, parsed by the same protocol module with the same
retry policy and token rules as the hook (through :class:`BsgSession`), and reads the
connection with the async helper, never the sync connection API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.providers.common.compat.connection import get_async_connection
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_sms_provider.campaigns.events import error_event, not_found
from airflow_sms_provider.campaigns.watch import Outcome, apoll_until
from airflow_sms_provider.exceptions import SmsNotFoundError, SmsProviderError
from airflow_sms_provider.hooks.bsg import BsgHook, BsgSession, BsgSettings
from airflow_sms_provider.protocols import bsg as proto


class BsgCampaignsTrigger(BaseTrigger):
    """Waits until every campaign is ``done``, or one reaches a failed status.

    Campaigns already done are not asked again. The event's ``data`` maps each id (as a
    string) to ``{"status", "sent", "delivered"}``.
    """

    def __init__(
        self,
        bsg_conn_id: str,
        campaign_ids: Sequence[int],
        poll_interval: float = 30.0,
        failed_statuses: Sequence[str] = proto.DEFAULT_FAILED_STATUSES,
    ) -> None:
        super().__init__()
        self.bsg_conn_id = bsg_conn_id
        self.campaign_ids = [int(i) for i in campaign_ids]
        self.poll_interval = float(poll_interval)
        self.failed_statuses = list(failed_statuses)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "bsg_conn_id": self.bsg_conn_id,
            "campaign_ids": self.campaign_ids,
            "poll_interval": self.poll_interval,
            "failed_statuses": self.failed_statuses,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        reading: int | None = None
        base_url = ""
        try:
            conn = await get_async_connection(self.bsg_conn_id, BsgHook)
            settings = BsgSettings.from_connection(conn)
            base_url = settings.http.base_url
            session = BsgSession(settings)  # one token for the whole wait, refreshed as it ages
            latest: dict[int, dict[str, Any]] = {}
            async with settings.async_client() as client:

                async def poll() -> Outcome:
                    nonlocal reading
                    for campaign_id in self.campaign_ids:
                        if latest.get(campaign_id, {}).get("status") != proto.STATUS_DONE:
                            reading = campaign_id
                            latest[campaign_id] = await session.acall(client, proto.get_campaign(campaign_id))
                    reading = None
                    return (*proto.campaigns_outcome(latest, self.failed_statuses), latest)

                outcome, message, _ = await apoll_until(
                    poll, lambda outcome: outcome != proto.WAITING, self.poll_interval, self.log, changes_only=True)
            data = {str(i): proto.short_status(d) for i, d in latest.items()}
            yield TriggerEvent({"status": outcome, "message": message, "data": data})
        except SmsNotFoundError as exc:  # deleted at the provider while we waited: fatal, named
            yield TriggerEvent(error_event(not_found("campaign", reading, base_url, exc), data=None))
        except SmsProviderError as exc:
            yield TriggerEvent(error_event(exc, data=None))
