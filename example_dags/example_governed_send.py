"""A governed send: a person approves the campaign after seeing its size, SMS parts and cost.

``SmsApprovalOperator`` estimates the send (nothing is sent: the audience is validated and
de-duplicated as the send will do it, each row's text filled and its SMS parts counted, the cost
asked of BSG's price endpoint or computed from the ``price_per_part`` / ``currency`` extras of a
Mobizon or Ogangi connection) and waits for "Approve" or "Reject" in Airflow's Required Actions
page (or ``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approve_send/-1/hitlDetails``
with ``{"chosen_options": ["Approve"]}``). Approve: ``SmsCampaignOperator`` sends and waits.
Reject: the send and the wait are skipped, nothing is sent. Needs Airflow 3.1+.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_sms_provider.operators.approval import SmsApprovalOperator
from airflow_sms_provider.operators.campaign import SmsCampaignOperator

TEXT = "Hi {name}! Your order is ready for pickup until Friday."
SENDER = {"mobizon": "MyShop", "bsg": "MyShop", "ogangi": "24365"}

with DAG(
    dag_id="example_governed_send",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "sms", "approval"],
    params={"sms_conn_id": "bsg_default"},
) as dag:

    @task
    def load_audience() -> list[dict[str, str]]:
        """Stand-in for a query: one row per customer, with what personalises their SMS."""
        return [
            {"phone": "+380 66 123 0101", "name": "Olena"},
            {"phone": "380661230102", "name": "Taras"},
            {"phone": "380661230101", "name": "Olena again"},  # a duplicate: sent once, first row wins
            {"phone": "12", "name": "Typo"},  # not a number: reported, not sent
            {"phone": "380661230103", "name": "{{ 7 * 7 }}"},  # data, never a template: shown and sent as is
        ]

    audience = load_audience()
    approve = SmsApprovalOperator(
        task_id="approve_send",
        conn_id="{{ params.sms_conn_id }}",
        text=TEXT,
        recipients=audience,
        sender=SENDER,
        body="Pickup reminders for today's orders.",
        max_recipients=10_000,  # larger audiences fail here, unasked and unsent
        response_timeout=dt.timedelta(hours=4),  # no answer by then: the task fails, nothing is sent
    )
    send = SmsCampaignOperator(
        task_id="send",
        conn_id="{{ params.sms_conn_id }}",
        text=TEXT,
        recipients=audience,
        sender=SENDER,
        on_invalid="skip",
        wait_for_completion=True,
        poll_interval=2,  # seconds; 30-60 for real campaigns
    )
    approve >> send
