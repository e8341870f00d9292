"""A Mobizon template campaign: create, fill from a CSV, send, wait for DONE, report.

Against the sandbox (``make demo``) nothing is sent to real phones. Point the
``mobizon_default`` connection at your API domain to run it for real.
"""

from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_sms_provider.operators.mobizon import (
    MobizonAddRecipientsOperator,
    MobizonCampaignStatsOperator,
    MobizonCreateCampaignOperator,
    MobizonSendCampaignOperator,
)
from airflow_sms_provider.sensors.mobizon import MobizonCampaignSensor

RECIPIENTS_CSV = Path(__file__).parent / "data" / "mobizon_recipients.csv"
# Files every worker must reach (docs/deployment.md, "Shared storage"): under SMS_EXAMPLE_STORAGE
# (s3://bucket/prefix, gs://…, or file:// on a mount every worker shares), else AIRFLOW_HOME. Each
# run writes its reject report into its own folder, so runs never overwrite each other's.
STORAGE = os.environ.get("SMS_EXAMPLE_STORAGE") or (
    Path(os.environ.get("AIRFLOW_HOME") or "~/airflow").expanduser().resolve() / "sms_examples"
).as_uri()
REJECT_REPORT = STORAGE.rstrip("/") + "/{{ dag.dag_id }}/{{ run_id }}/rejected.csv"

with DAG(
    dag_id="example_mobizon_campaign",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "sms", "mobizon"],
    params={"recipients_csv": str(RECIPIENTS_CSV)},
) as dag:
    create = MobizonCreateCampaignOperator(
        task_id="create_campaign",
        name="Welcome codes {{ dag_run.run_after | ds }}",
        text="Hello {name}! Your welcome code is {code}.",
        campaign_type=3,
        validity=720,
    )
    fill = MobizonAddRecipientsOperator(
        task_id="add_recipients",
        campaign_id=create.output,
        recipients="{{ params.recipients_csv }}",
        on_invalid="skip",
        reject_report_path=REJECT_REPORT,
        placeholders_flag=3,
    )
    send = MobizonSendCampaignOperator(task_id="send_campaign", campaign_id=create.output)
    wait = MobizonCampaignSensor(
        task_id="wait_for_done",
        campaign_id=create.output,
        deferrable=True,
        poke_interval=2,
        timeout=3600,
    )
    stats = MobizonCampaignStatsOperator(task_id="campaign_stats", campaign_id=create.output)

    @task
    def report(upload: dict, stats: dict) -> dict:
        """What a real DAG would load into a table; here it is printed and returned."""
        counters = stats["counters"]
        outcome = {
            "campaign_id": stats["campaign_id"],
            "status": stats["status"],
            "accepted": upload["added"],
            "rejected_by_provider": upload["rejected"],
            "invalid_rows": upload["invalid"]["rejected"],
            "delivered": counters.get("totalDelivrdMsgNum", 0),
            "undelivered": counters.get("totalUndelivMsgNum", 0),
            "expired": counters.get("totalExpiredMsgNum", 0),
            "total_cost": counters.get("totalCost", 0),
        }
        print(f"Campaign outcome: {outcome}")
        return outcome

    fill >> send >> wait >> stats
    report(fill.output, stats.output)
