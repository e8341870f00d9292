"""A provider-neutral sensor: wait until campaigns of any provider are done.

The provider is the connection's type (``mobizon``, ``bsg``, ``ogangi``, or any registered
SMS provider); its hook maps its statuses to one vocabulary (pending, running, done, failed,
:mod:`airflow_sms_provider.status_map`) and :mod:`airflow_sms_provider.campaigns.watch` decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.common.compat.sdk import PokeReturnValue

from airflow_sms_provider import status_map
from airflow_sms_provider.campaigns import watch
from airflow_sms_provider.campaigns.events import raise_for_error
from airflow_sms_provider.exceptions import SmsCampaignFailedError, SmsProviderError, SmsValidationError
from airflow_sms_provider.links import SmsCampaignLink
from airflow_sms_provider.providers import provider_for
from airflow_sms_provider.sensors.base import CampaignWaitSensor
from airflow_sms_provider.validation import id_list

# Where an upstream summary keeps its ids: the neutral operator and BSG's (campaign_ids),
# Mobizon's (campaign_id), Ogangi's (broadcast_id).
_ID_KEYS = ("campaign_ids", "campaign_id", "broadcast_id")


def campaign_ids(value: Any, field: str = "campaign_ids") -> list[int]:
    """Ids from an id, ``"1,2"``, ``"[1, 2]"``, a list, or an upstream operator's summary."""
    if isinstance(value, Mapping):
        value = next((value[key] for key in _ID_KEYS if value.get(key) is not None), None)
    if value is None:  # nothing upstream reads as no ids, not as one bad id
        raise SmsValidationError(f"{field} is empty: give at least one campaign id", field=field, value=None)
    return id_list(value, field, not_an_id="a campaign id", empty="campaign id")


def raise_for_event(event: Mapping[str, Any], provider: str, ids: Sequence[int] | None = None) -> None:
    """Fail the task the way the trigger's event says (nothing when it says done); fatal ones without retry."""
    status, message = event.get("status"), str(event.get("message") or "")
    waiting = f"waiting for campaign(s) {', '.join(map(str, ids))}" if ids else "waiting for the campaigns"
    raise_for_error(event, waiting, provider)
    if status == status_map.FAILED:
        raise SmsCampaignFailedError(message, provider=provider, details=event.get("campaigns"))
    if status != status_map.DONE:
        raise SmsProviderError(f"{provider}: {waiting} failed: {message}", provider=provider)


def read_named(hook: Any, campaign_id: int) -> Mapping[str, Any] | None:
    """``hook.read_campaign``, with a campaign that is gone named with its id and host (fatal)."""
    return watch.read_named(hook, campaign_id)


class SmsCampaignSensor(CampaignWaitSensor):
    """Waits until every campaign is ``done``, on any provider; fails as soon as one has ``failed``.

    :param conn_id: a ``mobizon``, ``bsg`` or ``ogangi`` connection; its type picks the provider
        (templated).
    :param campaign_ids: one id, several (``[1, 2]``, ``"1,2"``), or an upstream operator's summary:
        :class:`~airflow_sms_provider.operators.campaign.SmsCampaignOperator`'s (``campaign_ids``),
        BSG's (``campaign_ids``), Mobizon's (``campaign_id``) or Ogangi's (``broadcast_id``)
        (templated). For Ogangi the ids are broadcast ids.
    :param deferrable: wait in the triggerer instead of a worker slot
        (default: ``[operators] default_deferrable``).
    :param poke_interval: seconds between checks.

    Statuses map to pending, running, done and failed as listed in
    :mod:`airflow_sms_provider.status_map` (failed: Mobizon DECLINED, BSG stopped or spam,
    Ogangi STOPPED or DELETED). Works in ``poke``, ``reschedule`` and deferrable mode.

    Returns ``{"provider", "campaign_ids", "status": "done", "campaigns": {id: {"status",
    "provider_status"}}}``.
    """

    template_fields: Sequence[str] = ("conn_id", "campaign_ids")
    operator_extra_links = (SmsCampaignLink(),)

    def __init__(
        self,
        *,
        conn_id: str,
        campaign_ids: Any,
        poke_interval: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.conn_id = conn_id
        self.campaign_ids = campaign_ids
        self._latest: dict[str, dict[str, str]] = {}

    def _result(self, provider: str, ids: list[int], status: str, campaigns: Any) -> dict[str, Any]:
        return {"provider": provider, "campaign_ids": ids, "status": status, "campaigns": campaigns}

    def poke(self, context: Any) -> PokeReturnValue:
        ids = campaign_ids(self.campaign_ids)
        hook = provider_for(self.conn_id).hook(self.conn_id)
        try:
            status, message, campaigns = watch.poke(hook, watch.Watch(ids, hook.describe_campaign, self._latest))
        finally:
            hook.close()
        self.log.info("%s: %s", hook.conn_type, message)
        watch.raise_if_failed(status, message, campaigns, hook.conn_type)
        if status != status_map.DONE:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._result(hook.conn_type, ids, status, campaigns))

    def link_target(self) -> tuple[str, Any]:
        return self.conn_id, self.campaign_ids  # the first campaign's page

    def trigger(self) -> Any:
        # Imported here: DAG files import this module on every parse; only a deferring task needs it.
        from airflow_sms_provider.triggers.campaign import SmsCampaignTrigger

        provider = provider_for(self.conn_id).conn_type
        return SmsCampaignTrigger(self.conn_id, provider, campaign_ids(self.campaign_ids), self.poke_interval)

    def defer_kwargs(self) -> dict[str, Any]:
        return {"provider": provider_for(self.conn_id).conn_type}

    def execute_complete(self, context: Any, event: dict[str, Any], provider: str = "") -> dict[str, Any]:
        """Resume after the trigger fired: succeed, or fail with the provider's reason."""
        provider = provider or provider_for(self.conn_id).conn_type
        raise_for_event(event, provider, campaign_ids(self.campaign_ids))
        self.log.info("%s: %s", provider, event.get("message"))
        return self._result(provider, campaign_ids(self.campaign_ids), status_map.DONE, event.get("campaigns") or {})


__all__ = ["SmsCampaignSensor", "campaign_ids"]
