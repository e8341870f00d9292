"""A sensor that waits until every BSG campaign in a list is done.

It works in ``poke``, ``reschedule`` and deferrable mode; the decision on the answers is
one function in the protocol module, shared with the trigger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import PokeReturnValue

from airflow_sms_provider.campaigns.events import not_found, raise_for_error
from airflow_sms_provider.exceptions import SmsCampaignFailedError, SmsNotFoundError, SmsProviderError
from airflow_sms_provider.hooks.bsg import BsgHook
from airflow_sms_provider.links import BsgCampaignLink
from airflow_sms_provider.protocols import bsg as proto
from airflow_sms_provider.sensors.base import CampaignWaitSensor
from airflow_sms_provider.triggers.bsg import BsgCampaignsTrigger


class BsgCampaignSensor(CampaignWaitSensor):
    """Waits until every campaign is ``done``; fails as soon as one is stopped or spam.

    :param campaign_ids: one id, several (``[1, 2]``, ``"1,2"``), or an upstream BSG campaign
        operator's summary, whose ``campaign_ids`` are all watched (templated).
    :param failed_statuses: statuses that fail the task with their reason
        (default ``["stopped", "spam"]``).
    :param bsg_conn_id: the ``bsg`` connection.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param poke_interval: seconds between checks.

    Returns ``{"campaign_ids": [...], "campaigns": {id: {"status", "sent", "delivered"}}}``.
    """

    template_fields: Sequence[str] = ("campaign_ids", "failed_statuses", "bsg_conn_id")
    operator_extra_links = (BsgCampaignLink(),)

    def __init__(
        self,
        *,
        campaign_ids: Any,
        failed_statuses: Sequence[str] = proto.DEFAULT_FAILED_STATUSES,
        bsg_conn_id: str = BsgHook.default_conn_name,
        poke_interval: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.campaign_ids = campaign_ids
        self.failed_statuses = list(failed_statuses)
        self.bsg_conn_id = bsg_conn_id
        self._latest: dict[int, dict[str, Any]] = {}

    def _ids(self) -> list[int]:
        return proto.campaign_ids(self.campaign_ids)

    def _result(self, ids: list[int], data: dict[str, Any]) -> dict[str, Any]:
        return {"campaign_ids": ids, "campaigns": data}

    def poke(self, context: Any) -> PokeReturnValue:
        ids = self._ids()
        hook = BsgHook(self.bsg_conn_id)
        try:
            for campaign_id in ids:
                # A done campaign stays done: in poke mode it is not asked again.
                if self._latest.get(campaign_id, {}).get("status") != proto.STATUS_DONE:
                    try:
                        self._latest[campaign_id] = hook.get_campaign(campaign_id)
                    except SmsNotFoundError as err:  # deleted at the provider: fatal, named
                        raise not_found("campaign", campaign_id, hook.settings.http.base_url, err) from err
        finally:
            hook.close()
        outcome, message = proto.campaigns_outcome({i: self._latest[i] for i in ids}, self.failed_statuses)
        self.log.info(message)
        if outcome == proto.FAILED:
            raise SmsCampaignFailedError(message, provider=proto.PROVIDER, details=self._short(ids))
        if outcome == proto.WAITING:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._result(ids, self._short(ids)))

    def _short(self, ids: list[int]) -> dict[str, Any]:
        return {str(i): proto.short_status(self._latest[i]) for i in ids}

    def link_target(self) -> tuple[str, Any]:
        return self.bsg_conn_id, self.campaign_ids  # the first campaign's page

    def trigger(self) -> BsgCampaignsTrigger:
        return BsgCampaignsTrigger(self.bsg_conn_id, self._ids(), self.poke_interval, self.failed_statuses)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: succeed, or fail with the provider's reason."""
        status, message = event.get("status"), event.get("message", "")
        waiting = f"waiting for campaign(s) {', '.join(map(str, self._ids()))}"
        raise_for_error(event, waiting, proto.PROVIDER)
        if status == proto.FAILED:
            raise SmsCampaignFailedError(message, provider=proto.PROVIDER, details=event.get("data"))
        if status != proto.SUCCEEDED:
            raise SmsProviderError(f"bsg: {waiting} failed: {message}", provider=proto.PROVIDER)
        self.log.info(message)
        return self._result(self._ids(), event.get("data") or {})
