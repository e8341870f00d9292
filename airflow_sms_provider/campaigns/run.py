"""What every provider's campaign work shares: the task runtime it is given, the parameters
plumbing, and the neutral summary.

A campaign's work (validation, streaming, ledger, lease, reconcile, windows, send) is a
plain class in this package (``MobizonCampaignWork``, ``BsgAudienceWork``, ...) built from a
typed parameters dataclass and a :class:`TaskRuntime`. A provider operator's ``execute``
builds the parameters from its own (rendered) attributes and runs the work; the neutral
operator's ``run_campaign`` builds the same parameters from its own arguments and runs the
same work: no operator is instantiated inside another's task.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from airflow_sms_provider import status_map
from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.links import persist_campaign_link
from airflow_sms_provider.progress import Checkpoint

P = TypeVar("P")


@dataclasses.dataclass(frozen=True)
class TaskRuntime:
    """What campaign work needs from the running task, and nothing of ``BaseOperator``.

    ``context`` carries the task instance (its identity tags campaigns and keys the lease)
    and the durable state store; ``log`` is the task's logger (the same lines either way);
    ``dag_id`` names the run when the context has no task instance (a direct ``execute``).
    """

    context: Any
    log: Any
    task_id: str
    dag_id: str = "adhoc_airflow"  # what an operator outside a DAG calls its DAG (adhoc_<owner>)

    def checkpoint(self, key: str) -> Checkpoint:
        """This task instance's durable state under ``key`` (a retry resumes from it)."""
        return Checkpoint(self.context, key)

    def persist_link(self, conn_id: str, campaign_ids: Any) -> None:
        """Record the campaign(s) for the task's extra link (read by the UI)."""
        persist_campaign_link(self.context, conn_id, campaign_ids, self.log)


class Work:
    """Campaign work over a parameters dataclass: ``self.text`` reads ``params.text``.

    Reading the parameters as attributes keeps the work's code the one the operators ran
    (``self.recipients``, ``self.on_invalid``) while the parameters stay one typed value.
    """

    params: Any

    def __init__(self, params: Any, runtime: TaskRuntime) -> None:
        self.params = params
        self.runtime = runtime
        self.log = runtime.log
        self.task_id, self.dag_id = runtime.task_id, runtime.dag_id

    def __getattr__(self, name: str) -> Any:
        params = self.__dict__.get("params")
        if params is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(params, name)


def params_of(cls: type[P], source: Any) -> P:
    """``cls`` (a parameters dataclass) from ``source``'s attributes of the same names (an operator's)."""
    return cls(**{f.name: getattr(source, f.name) for f in dataclasses.fields(cls)})  # type: ignore[arg-type]


def build_params(cls: type[P], operator_name: str, task_id: str, args: Mapping[str, Any]) -> P:
    """``cls`` from the neutral operator's arguments and ``provider_options``; unknown options are refused
    with the message the provider operator gives for an unknown argument."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = {k: v for k, v in args.items() if k not in names}
    if unknown:
        raise SmsValidationError(
            f"provider_options ({operator_name}): Invalid arguments were passed to {operator_name} (task_id: "
            f"{task_id}). Invalid arguments were:\n**kwargs: {unknown}",
            field="provider_options", value=sorted(unknown),
        )
    return cls(**args)


def count(value: Any) -> int:
    return int(value or 0)


def neutral_summary(hook: Any, conn_id: str, ids: list[int], accepted: int, rejected: int,
                    words: Mapping[int, Any], details: Mapping[str, Any]) -> dict[str, Any]:
    """The neutral operator's summary (no extra API calls): ``words`` are the provider's statuses."""
    campaigns = {str(campaign_id): {"status": hook.neutral_word(str(word or "")), "provider_status": str(word or "")}
                 for campaign_id, word in words.items()}
    status, _ = status_map.overall(campaigns) if campaigns else (status_map.PENDING, "")
    return {
        "provider": hook.conn_type,
        "conn_id": conn_id,
        "campaign_ids": ids,
        "accepted": accepted,
        "rejected": rejected,
        # The audience rule: rows whose number an earlier row of the audience had (sent once).
        "duplicates": count((details.get("audience_duplicates") or {}).get("count")),
        "status": status,
        "campaigns": campaigns,
        "details": dict(details),
    }


def invalid_rows(details: Mapping[str, Any]) -> int:
    return count((details.get("invalid") or {}).get("rejected"))


__all__ = [
    "TaskRuntime", "Work", "build_params", "count", "invalid_rows", "neutral_summary", "params_of",
]
