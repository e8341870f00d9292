"""Async polling for the deferrable Ogangi broadcast sensor.

The trigger builds the same signed request and parses the answer with the same
protocol module and retry policy as the hook (through :class:`OgangiSettings`),
and reads the connection with the async helper, never the sync connection API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.common.compat.connection import get_async_connection
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_sms_provider.campaigns.events import error_event
from airflow_sms_provider.campaigns.watch import Outcome, apoll_until
from airflow_sms_provider.exceptions import SmsNotFoundError, SmsProviderError
from airflow_sms_provider.hooks.ogangi import OgangiHook, OgangiSettings
from airflow_sms_provider.protocols import ogangi as proto
from airflow_sms_provider.redaction import redact_text
from airflow_sms_provider.transport import origin


class OgangiBroadcastTrigger(BaseTrigger):
    """Polls getBroadcast until :func:`proto.broadcast_outcome` says the wait is over.

    Events: ``{"status": "succeeded"|"failed", "message", "data"}``, or
    ``{"status": "error", "message", "fatal": bool, "data": None}`` when a call failed.
    A broadcast that no longer exists (deleted) is ``failed``.
    """

    def __init__(self, ogangi_conn_id: str, broadcast_id: int, poll_interval: float = 30.0) -> None:
        super().__init__()
        self.ogangi_conn_id = ogangi_conn_id
        self.broadcast_id = int(broadcast_id)
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "ogangi_conn_id": self.ogangi_conn_id,
                "broadcast_id": self.broadcast_id,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        base_url = ""
        try:
            conn = await get_async_connection(self.ogangi_conn_id, OgangiHook)
            settings = OgangiSettings.from_connection(conn)
            base_url = settings.http.base_url
            async with settings.async_client() as client:

                async def poll() -> Outcome:
                    data = await settings.aget_broadcast(client, self.broadcast_id)
                    return (*proto.broadcast_outcome(data), data)

                outcome, message, data = await apoll_until(
                    poll, lambda outcome: outcome != proto.WAITING, self.poll_interval, self.log, changes_only=True)
            yield TriggerEvent({"status": outcome, "message": message, "data": data})
        except SmsNotFoundError as exc:
            message = (f"broadcast {self.broadcast_id} not found at {origin(base_url)}: deleted? "
                       f"({redact_text(str(exc))})")
            yield TriggerEvent({"status": proto.FAILED, "message": message, "data": None})
        except SmsProviderError as exc:
            yield TriggerEvent(error_event(exc, data=None))
