"""A personalised BSG One-API campaign: rows in, one SMS each, wait for done, load statistics.

Against the sandbox (``make demo``) nothing is sent to real phones. Point the
``bsg_default`` connection (Password: your ``live_…`` key, Host empty) at BSG to run it
for real.
"""

from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_sms_provider.operators.bsg import BsgCampaignStatsOperator, BsgIndividualCampaignOperator
from airflow_sms_provider.sensors.bsg import BsgCampaignSensor

# Files every worker must reach (docs/deployment.md, "Shared storage"): under SMS_EXAMPLE_STORAGE
# (s3://bucket/prefix, gs://…, or file:// on a mount every worker shares), else AIRFLOW_HOME. Each
# run writes its reject report into its own folder, so runs never overwrite each other's.
STORAGE = os.environ.get("SMS_EXAMPLE_STORAGE") or (
    Path(os.environ.get("AIRFLOW_HOME") or "~/airflow").expanduser().resolve() / "sms_examples"
).as_uri()
REJECT_REPORT = STORAGE.rstrip("/") + "/{{ dag.dag_id }}/{{ run_id }}/rejected.csv"

with DAG(
    dag_id="example_bsg_campaign",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "sms", "bsg"],
) as dag:

    @task
    def load_rows() -> list[dict[str, str]]:
        """Stand-in for a query: one row per customer, with what personalises their SMS."""
        return [
            {"phone": "+380 66 123 0001", "name": "Olena", "code": "A-1001"},
            {"phone": "+380 66 123 0002", "name": "Taras", "code": "A-1002"},
            {"phone": "380661230013", "name": "Iryna", "code": "A-1003"},  # sandbox: undelivered
            {"phone": "380661230066", "name": "Petro", "code": "A-1004"},  # sandbox: expires
            # A row may bring its own text and sender instead of the template's.
            {"phone": "380661230005", "name": "Oksana", "text": "Oksana, your order has shipped.",
             "sender": "MyShop UA"},
            {"phone": "0661230006", "name": "Bohdan", "code": "A-1006"},  # no country code: rejected, reported
            {"phone": "380661230007", "name": "Marta", "code": "A-1007"},
        ]

    send = BsgIndividualCampaignOperator(
        task_id="send_personalised",
        recipients=load_rows(),
        text="Hi {name}! Your welcome code is {code}.",
        sender="MyShop",
        validity=24,
        on_invalid="skip",
        reject_report_path=REJECT_REPORT,
    )
    wait = BsgCampaignSensor(
        task_id="wait_for_done",
        campaign_ids=send.output,  # the summary: every campaign it created is watched
        deferrable=True,
        poke_interval=2,  # seconds; real campaigns take minutes, so 30-60 is plenty there
        timeout=3600,
    )
    stats = BsgCampaignStatsOperator(task_id="load_statistics", campaign_ids=send.output, include_messages=True)

    @task
    def report(sent: dict, stats: dict) -> dict:
        """What a real DAG would load into a table; here it is printed and returned."""
        statistics = stats["statistics"]
        outcome = {
            "campaign_ids": stats["campaign_ids"],
            "phones": sent["phones"],
            "invalid_rows": sent["invalid"]["rejected"],
            "delivered": statistics.get("delivered", 0),
            "undelivered": statistics.get("undelivered", 0),
            "expired": statistics.get("expired", 0),
            "message_statuses": stats["messages"]["counts"],
            "total_price": stats["total_price"],
            "currency": stats["currency"],
        }
        print(f"Campaign outcome: {outcome}")
        return outcome

    send >> wait >> stats
    report(send.output, stats.output)
