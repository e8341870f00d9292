"""An Ogangi broadcast: schedule it, hold it, release it, wait until every message is out.

A broadcast is created to start two minutes after the task runs (Ogangi takes dates
to the minute, so one to two minutes), suspended (say a price in the text needs a last
check), resumed while it is still pending, and then watched until Ogangi has sent
every message. Against ``make sandbox``, whose clock is the wall clock, the run takes
about two minutes and the sensor defers to the triggerer. Where the provider's clock is
ahead of the worker's (a sandbox run with ``--speed 10``), the date is already past and the
broadcast starts at once: the hold then suspends what is still unsent, and a broadcast that
has already finished is left alone (suspend and resume find nothing to do), so the run
succeeds under any clock. Against the sandbox nothing reaches a phone;
point the ``ogangi_default`` connection at your Messangi MMC base URL, with your
user, keys and instance id, to run it for real.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_sms_provider.operators.ogangi import (
    OgangiCreateBroadcastOperator,
    OgangiResumeBroadcastOperator,
    OgangiSuspendBroadcastOperator,
)
from airflow_sms_provider.sensors.ogangi import OgangiBroadcastSensor

# A small audience inline; a CSV/XLSX path or an upstream XCom works the same way.
RECIPIENTS = [
    {"number": "+1 415 555 0101", "name": "Ana"},
    {"number": "+1 415 555 0102", "name": "Bruno"},
    {"number": "+58 412 555 0103", "name": "Carla"},
    {"number": "+58 412 555 0104", "name": "Diego"},
    {"number": "+1 305 555 0105", "name": "Elena"},
]
START_IN = dt.timedelta(minutes=2)  # the suspend and resume tasks run well within it

with DAG(
    dag_id="example_ogangi_broadcast",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "sms", "ogangi"],
    params={"shortcode": "24365"},  # the sandbox's short code; use one of your instance's
) as dag:
    create = OgangiCreateBroadcastOperator(
        task_id="create_broadcast",
        text="Hi {name}, our spring sale starts today!",
        recipients=RECIPIENTS,
        shortcode="{{ params.shortcode }}",
        scheduled_at=START_IN,
    )
    broadcast_id = create.output["broadcast_id"]
    suspend = OgangiSuspendBroadcastOperator(task_id="suspend_broadcast", broadcast_id=broadcast_id)
    resume = OgangiResumeBroadcastOperator(task_id="resume_broadcast", broadcast_id=broadcast_id)
    wait = OgangiBroadcastSensor(
        task_id="wait_until_finished",
        broadcast_id=broadcast_id,
        deferrable=True,
        poke_interval=5,
        timeout=3600,
    )

    @task
    def report(created: dict, finished: dict) -> dict:
        """What a real DAG would load into a table; here it is printed and returned."""
        outcome = {
            "broadcast_id": created["broadcast_id"],
            "campaign_name": created["campaign_name"],
            "status": finished["statusName"],
            "expected": finished["expectedMessages"],
            "sent": finished["sentMessages"],
            "started": finished["startDate"],
            "ended": finished.get("endDate"),
        }
        print(f"Broadcast outcome: {outcome}")
        return outcome

    create >> suspend >> resume >> wait
    report(create.output, wait.output)
