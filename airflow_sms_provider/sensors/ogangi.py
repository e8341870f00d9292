"""A sensor that waits for an Ogangi broadcast to finish.

Works in ``poke``, ``reschedule`` and deferrable mode; the decision on a
getBroadcast answer is one function in the protocol module, shared with the trigger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import PokeReturnValue

from airflow_sms_provider.campaigns.events import raise_for_error
from airflow_sms_provider.exceptions import SmsCampaignFailedError, SmsNotFoundError
from airflow_sms_provider.hooks.ogangi import OgangiHook
from airflow_sms_provider.links import OgangiBroadcastLink
from airflow_sms_provider.protocols import ogangi as proto
from airflow_sms_provider.sensors.base import CampaignWaitSensor
from airflow_sms_provider.transport import origin
from airflow_sms_provider.triggers.ogangi import OgangiBroadcastTrigger
from airflow_sms_provider.validation import as_int


class OgangiBroadcastSensor(CampaignWaitSensor):
    """Waits until an Ogangi broadcast has finished sending.

    :param broadcast_id: the broadcast (templated; e.g. ``create.output["broadcast_id"]``).
    :param ogangi_conn_id: the ``ogangi`` connection.
    :param deferrable: wait in the triggerer instead of a worker slot
        (default: ``[operators] default_deferrable``).
    :param poke_interval: seconds between getBroadcast calls.

    Finished means ``endDate`` set, ``sentMessages >= expectedMessages``, or status
    FINISHED; a STOPPED or DELETED (or no longer existing) broadcast fails the task
    without retry. A SUSPENDED one keeps the sensor waiting. Returns the broadcast
    (id, counts, dates, status) from getBroadcast.
    """

    template_fields: Sequence[str] = ("broadcast_id", "ogangi_conn_id")
    operator_extra_links = (OgangiBroadcastLink(),)

    def __init__(
        self,
        *,
        broadcast_id: int | str,
        ogangi_conn_id: str = OgangiHook.default_conn_name,
        poke_interval: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.broadcast_id = broadcast_id
        self.ogangi_conn_id = ogangi_conn_id

    def _id(self) -> int:
        return as_int(self.broadcast_id, "broadcast_id")

    @staticmethod
    def _finish(outcome: str, message: str, data: Any) -> Any:
        if outcome != proto.SUCCEEDED:
            raise SmsCampaignFailedError(message, provider=proto.PROVIDER, details=data)
        return data

    def poke(self, context: Any) -> PokeReturnValue:
        broadcast_id = self._id()
        hook = OgangiHook(self.ogangi_conn_id)
        try:
            data = hook.get_broadcast(broadcast_id)
        except SmsNotFoundError as exc:
            where = origin(hook.settings.http.base_url)
            raise SmsCampaignFailedError(
                f"broadcast {broadcast_id} not found at {where}: deleted? ({exc})", provider=proto.PROVIDER
            ) from exc
        finally:
            hook.close()
        outcome, message = proto.broadcast_outcome(data)
        self.log.info(message)
        if outcome == proto.WAITING:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._finish(outcome, message, data))

    def link_target(self) -> tuple[str, Any]:
        return self.ogangi_conn_id, self.broadcast_id

    def trigger(self) -> OgangiBroadcastTrigger:
        return OgangiBroadcastTrigger(self.ogangi_conn_id, self._id(), self.poke_interval)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired: succeed, or fail with the reason."""
        status = event.get("status")
        message = str(event.get("message") or "")
        raise_for_error(event, f"waiting for broadcast {self.broadcast_id}", proto.PROVIDER)
        self.log.info(message)
        return self._finish(str(status or proto.FAILED), message, event.get("data"))
