"""BSG campaign work reached through the neutral interface (``BsgHook.campaign_module``)."""

from __future__ import annotations

from typing import Any

from airflow_sms_provider.campaigns.run import count, invalid_rows, neutral_summary, run_operator
from airflow_sms_provider.hooks.base import CampaignParams
from airflow_sms_provider.recipients import placeholders


def run_campaign(hook: Any, params: CampaignParams, context: Any, log: Any) -> dict[str, Any]:
    """A bulk campaign, or an individual one when the text has ``{placeholders}`` (split in chunks)."""
    from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator, BsgIndividualCampaignOperator

    if params.name:
        log.info("BSG campaigns have no name: name=%r is not sent", params.name)
    personalised = isinstance(params.text, str) and bool(placeholders(params.text))
    cls = BsgIndividualCampaignOperator if personalised else BsgBulkCampaignOperator
    args = {"bsg_conn_id": params.conn_id, "text": params.text, "recipients": params.recipients,
            "sender": params.sender, "start_at": params.send_at}
    details = run_operator(cls, args, params, context, log)
    return summarize(hook, params.conn_id, details)


def summarize(hook: Any, conn_id: str, details: dict[str, Any]) -> dict[str, Any]:
    ids = [int(i) for i in details["campaign_ids"]]
    words = {int(c["id"]): c.get("status") for c in details.get("campaigns") or []}
    return neutral_summary(hook, conn_id, ids, count(details.get("phones")), invalid_rows(details), words, details)
