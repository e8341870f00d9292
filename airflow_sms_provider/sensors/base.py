"""What every campaign sensor of this package does the same way: link, poke or defer.

A sensor here pokes in the worker (``poke`` and ``reschedule`` mode) or, when deferrable,
pokes once in the worker (a campaign that is already done does not cost a trigger) and
then hands the wait to a trigger. Subclasses say how to poke (returning a
``PokeReturnValue`` whose ``xcom_value`` is the task's result), which trigger to defer to,
and how to read the trigger's event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.providers.common.compat.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_sms_provider.links import persist_campaign_link
from airflow_sms_provider.templating import DataFieldsMixin


def default_deferrable(deferrable: bool | None) -> bool:
    """``deferrable`` as given, else Airflow's ``[operators] default_deferrable``."""
    return conf.getboolean("operators", "default_deferrable", fallback=False) if deferrable is None else deferrable


class CampaignWaitSensor(DataFieldsMixin, BaseSensorOperator):
    """The shared execute of the campaign sensors; see the module docstring.

    Ids in a list (``campaign_ids``) are data like every audience field: never rendered
    (airflow_sms_provider/templating.py).
    """

    def __init__(self, *, deferrable: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deferrable = default_deferrable(deferrable)

    def poke(self, context: Any) -> PokeReturnValue:
        raise NotImplementedError

    def trigger(self) -> Any:
        """The trigger that waits in the triggerer."""
        raise NotImplementedError

    def defer_kwargs(self) -> dict[str, Any] | None:
        """Extra keyword arguments for ``execute_complete``."""
        return None

    def link_target(self) -> tuple[str, Any] | None:
        """(connection id, campaign id or ids) for the extra link, or None for no link."""
        return None

    def execute(self, context: Any) -> Any:
        target = self.link_target()
        if target is not None:
            # Before the first poke: the link is there while the sensor waits, defers or reschedules.
            persist_campaign_link(context, target[0], target[1], self.log)
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        self.defer(
            trigger=self.trigger(),
            method_name="execute_complete",
            kwargs=self.defer_kwargs(),
            timeout=dt.timedelta(seconds=self.timeout) if self.timeout else None,
        )
        return None
