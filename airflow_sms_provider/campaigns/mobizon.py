"""Mobizon campaign work reached through the neutral interface (``MobizonHook.campaign_module``)."""

from __future__ import annotations

from typing import Any

from airflow_sms_provider.campaigns.run import count, invalid_rows, neutral_summary, run_operator
from airflow_sms_provider.hooks.base import CampaignParams
from airflow_sms_provider.recipients import placeholders


def run_campaign(hook: Any, params: CampaignParams, context: Any, log: Any) -> dict[str, Any]:
    """Create, fill and send one campaign (a template campaign when the text has ``{placeholders}``)."""
    from airflow_sms_provider.operators.mobizon import MobizonCampaignOperator

    personalised = isinstance(params.text, str) and bool(placeholders(params.text))
    args = {"mobizon_conn_id": params.conn_id, "text": params.text, "recipients": params.recipients,
            "sender": params.sender, "name": params.name, "deferred_to": params.send_at,
            "campaign_type": 3 if personalised else 2, "wait_for_completion": False}
    details = run_operator(MobizonCampaignOperator, args, params, context, log)
    return summarize(hook, params.conn_id, details)


def summarize(hook: Any, conn_id: str, details: dict[str, Any]) -> dict[str, Any]:
    campaign_id = int(details["campaign_id"])
    accepted = count(details.get("added")) + count(details.get("duplicates"))  # duplicates: an earlier try's
    rejected = invalid_rows(details) + count(details.get("rejected"))
    return neutral_summary(hook, conn_id, [campaign_id], accepted, rejected, {campaign_id: details.get("status")},
                           details)
