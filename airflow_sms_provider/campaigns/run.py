"""What every provider's ``run_campaign`` shares: the neutral summary, and (for now) running
the provider's own campaign operator's work in the calling task.

The provider operators still hold their campaign bodies (validation, streaming, ledger,
lease, windows); :func:`run_operator` runs one of them with the caller's context and
durable state so a retry resumes where it left off. Moving those bodies into plain
functions here is the next step (README, Design).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from airflow_sms_provider import status_map
from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.hooks.base import CampaignParams


def count(value: Any) -> int:
    return int(value or 0)


def run_operator(cls: type[Any], args: Mapping[str, Any], params: CampaignParams, context: Any, log: Any
                 ) -> dict[str, Any]:
    """Build ``cls`` from the neutral parameters plus ``args`` and run its work in this task."""
    common = {"task_id": params.task_id, "on_invalid": params.on_invalid,
              "reject_report_path": params.reject_report_path}
    try:
        inner = cls(**{**common, **args, **params.options})
    except TypeError as err:
        raise SmsValidationError(
            f"provider_options ({cls.__name__}): {err}", field="provider_options", value=sorted(params.options),
        ) from None
    log.info("Sending through %s (connection %r)", cls.__name__, params.conn_id)
    # Called unwrapped: Airflow's guard against one task calling another operator's execute()
    # would only log a misleading warning here (the context and durable state are this task's).
    return dict(inspect.unwrap(cls.execute)(inner, context))


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


__all__ = ["count", "invalid_rows", "neutral_summary", "run_operator"]
