"""Sensors that wait for a Mobizon background task or for a campaign's final status.

Each works in ``poke``, ``reschedule`` and deferrable mode; the decision on an
answer is one function in the protocol module, shared with the triggers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import PokeReturnValue

from airflow_sms_provider.campaigns.events import not_found, raise_for_error
from airflow_sms_provider.exceptions import SmsCampaignFailedError, SmsNotFoundError
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.links import MobizonCampaignLink
from airflow_sms_provider.protocols import mobizon as proto
from airflow_sms_provider.sensors.base import CampaignWaitSensor
from airflow_sms_provider.triggers.mobizon import MobizonCampaignTrigger, MobizonTaskTrigger


class _MobizonWaitSensor(CampaignWaitSensor):
    """Shared poke/complete logic; subclasses say what to read and how to decide."""

    kind = "object"  # what the sensor waits for, in errors

    def __init__(self, *, mobizon_conn_id: str = MobizonHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mobizon_conn_id = mobizon_conn_id

    def object_id(self) -> Any:
        raise NotImplementedError

    def read(self, hook: MobizonHook) -> dict[str, Any]:
        raise NotImplementedError

    def decide(self, data: dict[str, Any]) -> tuple[str, str]:
        raise NotImplementedError

    def trigger(self) -> Any:
        raise NotImplementedError

    def _finish(self, outcome: str, message: str, data: Any) -> Any:
        if outcome == proto.FAILED:
            raise SmsCampaignFailedError(message, provider=proto.PROVIDER, details=data)
        return data

    def poke(self, context: Any) -> PokeReturnValue:
        hook = MobizonHook(self.mobizon_conn_id)
        try:
            data = self.read(hook)
        except SmsNotFoundError as err:  # deleted at the provider: fatal, named
            raise not_found(self.kind, self.object_id(), hook.settings.http.base_url, err) from err
        finally:
            hook.close()
        outcome, message = self.decide(data)
        self.log.info(message)
        if outcome == proto.WAITING:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._finish(outcome, message, data))

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired: succeed, or fail with the provider's reason."""
        status = event.get("status")
        raise_for_error(event, f"waiting for {self.kind} {self.object_id()}", proto.PROVIDER)
        self.log.info(event.get("message"))
        return self._finish(status or proto.FAILED, event.get("message", ""), event.get("data"))


class MobizonTaskSensor(_MobizonWaitSensor):
    """Waits until a Mobizon background task (e.g. a recipients file upload) completes.

    :param task_id_to_watch: the background task id (templated; e.g. from an upstream XCom).
    :param mobizon_conn_id: the ``mobizon`` connection.
    :param deferrable: wait in the triggerer instead of a worker slot
        (default: ``[operators] default_deferrable``).
    :param poke_interval: seconds between checks; at least 1 (the API's limit).

    Status 2 succeeds and returns ``{"progress", "status"}``; status 3 (rejected) fails.
    """

    template_fields: Sequence[str] = ("task_id_to_watch", "mobizon_conn_id")

    def __init__(self, *, task_id_to_watch: int | str, poke_interval: float = 5.0, **kwargs: Any) -> None:
        super().__init__(poke_interval=max(poke_interval, proto.TASKQUEUE_MIN_POLL_INTERVAL), **kwargs)
        self.task_id_to_watch = task_id_to_watch

    kind = "background task"

    def object_id(self) -> Any:
        return self.task_id_to_watch

    def read(self, hook: MobizonHook) -> dict[str, Any]:
        return hook.get_task_status(int(self.task_id_to_watch))

    def decide(self, data: dict[str, Any]) -> tuple[str, str]:
        return proto.task_outcome(data)

    def trigger(self) -> MobizonTaskTrigger:
        return MobizonTaskTrigger(self.mobizon_conn_id, int(self.task_id_to_watch), self.poke_interval)


class MobizonCampaignSensor(_MobizonWaitSensor):
    """Waits until a Mobizon campaign reaches its final status (DONE by default).

    :param campaign_id: the campaign id (templated).
    :param target_statuses: statuses that end the wait successfully (default ``["DONE"]``;
        add ``"SENT"`` to stop waiting before the last delivery reports).
    :param failed_statuses: statuses that fail the task (default ``["DECLINED"]``, whose
        moderator comment is quoted in the error).
    :param mobizon_conn_id: the ``mobizon`` connection.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param poke_interval: seconds between checks (default 30).

    Returns the campaign's data from campaign/get.
    """

    template_fields: Sequence[str] = ("campaign_id", "target_statuses", "failed_statuses", "mobizon_conn_id")
    operator_extra_links = (MobizonCampaignLink(),)

    def __init__(
        self,
        *,
        campaign_id: int | str,
        target_statuses: Sequence[str] = (proto.CAMPAIGN_DONE,),
        failed_statuses: Sequence[str] = (proto.CAMPAIGN_DECLINED,),
        poke_interval: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.campaign_id = campaign_id
        self.target_statuses = list(target_statuses)
        self.failed_statuses = list(failed_statuses)

    def link_target(self) -> tuple[str, Any]:
        return self.mobizon_conn_id, self.campaign_id

    kind = "campaign"

    def object_id(self) -> Any:
        return self.campaign_id

    def read(self, hook: MobizonHook) -> dict[str, Any]:
        return hook.get_campaign(int(self.campaign_id))

    def decide(self, data: dict[str, Any]) -> tuple[str, str]:
        return proto.campaign_outcome(data, self.target_statuses, self.failed_statuses)

    def trigger(self) -> MobizonCampaignTrigger:
        return MobizonCampaignTrigger(
            self.mobizon_conn_id,
            int(self.campaign_id),
            self.poke_interval,
            target_statuses=self.target_statuses,
            failed_statuses=self.failed_statuses,
        )
