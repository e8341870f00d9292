"""Async polling for the provider-neutral campaign sensor and operator.

Each provider's read call goes through that provider's own async machinery (Mobizon
``MobizonSettings.acall``, BSG ``BsgSession.acall`` with its token rules, Ogangi
``OgangiSettings.aget_broadcast``): the same requests, parsers and retry policy as the
hooks. The decision is :mod:`airflow_sms_provider.status_map`'s, shared with ``poke``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import httpx
from airflow.providers.common.compat.connection import get_async_connection
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_sms_provider import status_map
from airflow_sms_provider.exceptions import SmsNotFoundError, SmsProviderError
from airflow_sms_provider.providers import provider_named
from airflow_sms_provider.triggers.events import error_event, not_found

Reader = Callable[[httpx.AsyncClient, int], Awaitable[dict[str, Any] | None]]


def async_reader(conn_type: str, conn: Any) -> tuple[httpx.AsyncClient, Reader]:
    """An async client for connection ``conn`` and the read call of one campaign."""
    if conn_type == "mobizon":
        from airflow_sms_provider.hooks.mobizon import MobizonSettings

        mobizon = MobizonSettings.from_connection(conn)

        async def read_mobizon(client: httpx.AsyncClient, campaign_id: int) -> dict[str, Any] | None:
            return dict(await mobizon.acall(client, "campaign", "get", {"id": campaign_id}))

        return mobizon.async_client(), read_mobizon
    if conn_type == "bsg":
        from airflow_sms_provider.hooks.bsg import BsgSession, BsgSettings
        from airflow_sms_provider.protocols import bsg as bsg_proto

        bsg = BsgSettings.from_connection(conn)
        session = BsgSession(bsg)  # one token for the whole wait, renewed as it ages

        async def read_bsg(client: httpx.AsyncClient, campaign_id: int) -> dict[str, Any] | None:
            return dict(await session.acall(client, bsg_proto.get_campaign(campaign_id)))

        return bsg.async_client(), read_bsg
    from airflow_sms_provider.hooks.ogangi import OgangiSettings

    ogangi = OgangiSettings.from_connection(conn)

    async def read_ogangi(client: httpx.AsyncClient, campaign_id: int) -> dict[str, Any] | None:
        try:
            return await ogangi.aget_broadcast(client, campaign_id)
        except SmsNotFoundError:
            return None  # deleted: status_map reads it as DELETED, i.e. failed

    return ogangi.async_client(), read_ogangi


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
        provider = provider_named(self.conn_type)
        reading: int | None = None
        try:
            conn = await get_async_connection(self.conn_id, provider.hook_class())
            client, read = async_reader(self.conn_type, conn)
            latest: dict[str, dict[str, str]] = {}
            logged = None
            async with client:
                while True:
                    for campaign_id in self.campaign_ids:
                        if latest.get(str(campaign_id), {}).get("status") != status_map.DONE:
                            reading = campaign_id
                            data = await read(client, campaign_id)
                            reading = None
                            latest[str(campaign_id)] = status_map.describe(self.conn_type, data)
                    status, message = status_map.overall(latest)
                    if message != logged:  # a line per change, not per poll
                        self.log.info("%s: %s", self.conn_type, message)
                        logged = message
                    if status in status_map.FINAL:
                        yield TriggerEvent({"status": status, "message": message, "campaigns": latest})
                        return
                    await asyncio.sleep(self.poll_interval)
        except SmsNotFoundError as exc:  # deleted at the provider while we waited: fatal, named
            if reading is None:
                yield TriggerEvent(error_event(exc, campaigns=None))
            else:
                named = not_found("campaign", reading, str(client.base_url), exc)
                yield TriggerEvent(error_event(named, campaigns=None))
        except SmsProviderError as exc:
            yield TriggerEvent(error_event(exc, campaigns=None))
