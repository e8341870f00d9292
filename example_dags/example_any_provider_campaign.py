"""One campaign, any provider: the connection id decides whether Mobizon, BSG or Ogangi sends it.

``SmsCampaignOperator`` takes the same text, audience and schedule for every provider
and runs that provider's own campaign operator; ``SmsCampaignSensor`` waits with one
status vocabulary (pending, running, done, failed). Switch providers with the DAG's
``sms_conn_id`` param (``mobizon_default``, ``bsg_default``, ``ogangi_default``) or by
editing the connection. Against the sandbox nothing reaches real phones.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_sms_provider.operators.campaign import SmsCampaignOperator
from airflow_sms_provider.sensors.campaign import SmsCampaignSensor

with DAG(
    dag_id="example_any_provider_campaign",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "sms", "mobizon", "bsg", "ogangi"],
    params={"sms_conn_id": "mobizon_default"},
) as dag:

    @task
    def load_audience() -> list[dict[str, str]]:
        """Stand-in for a query: one row per customer, with what personalises their SMS."""
        return [
            {"phone": "+7 701 111 2201", "name": "Aigerim"},
            {"phone": "+7 701 111 2202", "name": "Daniyar"},
            {"phone": "77011112213", "name": "Saule"},
            {"phone": "0701112204", "name": "Nurlan"},  # no country code: rejected before sending, reported
            {"phone": "77011112205", "name": "Asel"},
        ]

    send = SmsCampaignOperator(
        task_id="send_campaign",
        conn_id="{{ params.sms_conn_id }}",
        text="Hi {name}! Spring sale: -20% until Sunday.",  # {name} is filled per row on every provider
        recipients=load_audience(),
        # Sender IDs are per provider: an alpha name for Mobizon and BSG, a short code for Ogangi.
        sender={"mobizon": "MyShop", "bsg": "MyShop", "ogangi": "24365"},
        name="Spring sale {{ dag_run.run_after | ds }}",
        on_invalid="skip",
        provider_options={"bsg": {"validity": 24}, "mobizon": {"validity": 1440}},
    )
    wait = SmsCampaignSensor(
        task_id="wait_for_done",
        conn_id="{{ params.sms_conn_id }}",
        campaign_ids=send.output,  # the summary: every campaign it created is watched
        deferrable=True,
        poke_interval=2,  # seconds; real campaigns take minutes, so 30-60 is plenty there
        timeout=3600,
    )

    @task
    def report(sent: dict, waited: dict) -> dict:
        """What a real DAG would load into a table; here it is printed and returned."""
        outcome = {
            "provider": sent["provider"],
            "campaign_ids": sent["campaign_ids"],
            "accepted": sent["accepted"],
            "rejected": sent["rejected"],
            "status": waited["status"],
            "provider_statuses": sorted({c["provider_status"] for c in waited["campaigns"].values()}),
        }
        print(f"Campaign outcome: {outcome}")
        return outcome

    report(send.output, wait.output)
