"""Delivery events, the sending half: one campaign whose delivery reports come back as asset events.

Pair: ``example_delivery_events_consumer`` runs when the reports are in (docs/events.md).

* Mobizon: the webhook is configured once in Mobizon's panel (API → Webhooks: "SMS statuses",
  json, ``https://<your-airflow>/sms-events/mobizon/<conn_id>``, the connection's
  ``webhook_secret``); nothing in this DAG refers to it.
* BSG: ``delivery_events=True`` (through ``provider_options``) puts the receiver's URL in the
  campaign's ``callback_url``, from the connection's ``events_url`` and ``callback_token`` extras.

The API server must mount the receiver (``SmsEventsPlugin``, docs/events.md). Against the sandbox,
``POST /_sandbox/mobizon/webhooks`` plays the part of Mobizon's panel.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_sms_provider.operators.campaign import SmsCampaignOperator

with DAG(
    dag_id="example_delivery_events_sender",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "sms", "events"],
    params={"sms_conn_id": "mobizon_default"},
) as dag:
    SmsCampaignOperator(
        task_id="send",
        conn_id="{{ params.sms_conn_id }}",
        text="Your order is on its way",
        recipients=["77011112401", "77011112402", "77011112413"],
        sender="MyShop",
        provider_options={"bsg": {"delivery_events": True}},
    )
