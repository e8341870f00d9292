"""Ogangi broadcast work reached through the neutral interface (``OgangiHook.campaign_module``)."""

from __future__ import annotations

from typing import Any

from airflow_sms_provider.campaigns.run import count, invalid_rows, neutral_summary, run_operator
from airflow_sms_provider.hooks.base import CampaignParams


def run_campaign(hook: Any, params: CampaignParams, context: Any, log: Any) -> dict[str, Any]:
    """One broadcast (placeholders filled by Ogangi); ``sender`` is the short code."""
    from airflow_sms_provider.operators.ogangi import OgangiCreateBroadcastOperator

    args = {"ogangi_conn_id": params.conn_id, "text": params.text, "recipients": params.recipients,
            "shortcode": params.sender, "campaign_name": params.name, "scheduled_at": params.send_at}
    details = run_operator(OgangiCreateBroadcastOperator, args, params, context, log)
    return summarize(hook, params.conn_id, details)


def summarize(hook: Any, conn_id: str, details: dict[str, Any]) -> dict[str, Any]:
    broadcast_id = int(details["broadcast_id"])
    return neutral_summary(hook, conn_id, [broadcast_id], count(details.get("recipients")), invalid_rows(details),
                           {broadcast_id: details.get("status")}, details)
