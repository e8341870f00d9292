"""Async polling for the deferrable Mobizon sensors.

The triggers build requests and parse answers with the same protocol module and
retry policy as the hook (through :class:`MobizonSettings`), and read the
connection with the async helper, never the sync connection API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.providers.common.compat.connection import get_async_connection
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_sms_provider.campaigns.events import error_event, not_found
from airflow_sms_provider.campaigns.watch import Outcome, apoll_until
from airflow_sms_provider.exceptions import SmsNotFoundError, SmsProviderError
from airflow_sms_provider.hooks.mobizon import MobizonHook, MobizonSettings
from airflow_sms_provider.protocols import mobizon as proto


class _MobizonPollTrigger(BaseTrigger):
    """Polls one read method until :meth:`decide` says the wait is over."""

    module: str
    method: str
    kind = "object"  # what object_id names, for errors
    min_interval = 0.0

    def __init__(self, mobizon_conn_id: str, object_id: int, poll_interval: float = 10.0) -> None:
        super().__init__()
        self.mobizon_conn_id = mobizon_conn_id
        self.object_id = int(object_id)
        self.poll_interval = max(float(poll_interval), self.min_interval)

    def _kwargs(self) -> dict[str, Any]:
        return {
            "mobizon_conn_id": self.mobizon_conn_id,
            "object_id": self.object_id,
            "poll_interval": self.poll_interval,
        }

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", self._kwargs()

    def params(self) -> Mapping[str, Any]:
        return {"id": self.object_id}

    def decide(self, data: Mapping[str, Any]) -> tuple[str, str]:
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        base_url = ""
        try:
            conn = await get_async_connection(self.mobizon_conn_id, MobizonHook)
            settings = MobizonSettings.from_connection(conn)
            base_url = settings.http.base_url
            async with settings.async_client() as client:

                async def poll() -> Outcome:
                    data = await settings.acall(client, self.module, self.method, self.params())
                    return (*self.decide(data), data)

                outcome, message, data = await apoll_until(
                    poll, lambda outcome: outcome != proto.WAITING, self.poll_interval, self.log)
            yield TriggerEvent({"status": outcome, "message": message, "data": data})
        except SmsNotFoundError as exc:  # deleted at the provider while we waited: fatal, named
            yield TriggerEvent(error_event(not_found(self.kind, self.object_id, base_url, exc), data=None))
        except SmsProviderError as exc:
            yield TriggerEvent(error_event(exc, data=None))


class MobizonTaskTrigger(_MobizonPollTrigger):
    """Waits for a background task (taskqueue/getStatus) to complete or be rejected."""

    module, method = "taskqueue", "getStatus"
    kind = "background task"
    # The API asks for at most one status request per second.
    min_interval = proto.TASKQUEUE_MIN_POLL_INTERVAL

    def decide(self, data: Mapping[str, Any]) -> tuple[str, str]:
        return proto.task_outcome(data)


class MobizonCampaignTrigger(_MobizonPollTrigger):
    """Waits for a campaign (campaign/get) to reach a target status or a failed one."""

    module, method = "campaign", "get"
    kind = "campaign"

    def __init__(
        self,
        mobizon_conn_id: str,
        object_id: int,
        poll_interval: float = 30.0,
        target_statuses: tuple[str, ...] | list[str] = (proto.CAMPAIGN_DONE,),
        failed_statuses: tuple[str, ...] | list[str] = (proto.CAMPAIGN_DECLINED,),
    ) -> None:
        super().__init__(mobizon_conn_id, object_id, poll_interval)
        self.target_statuses = list(target_statuses)
        self.failed_statuses = list(failed_statuses)

    def _kwargs(self) -> dict[str, Any]:
        return {
            **super()._kwargs(),
            "target_statuses": self.target_statuses,
            "failed_statuses": self.failed_statuses,
        }

    def decide(self, data: Mapping[str, Any]) -> tuple[str, str]:
        return proto.campaign_outcome(data, self.target_statuses, self.failed_statuses)
