"""SMS alerts from callbacks: a task that fails on purpose, and the on-call phone hears about it.

``SmsNotifier`` works with a ``mobizon``, ``bsg`` or ``ogangi`` connection (the type
picks the provider); the DAG's ``sms_conn_id`` param names the one to use. Run it
against the sandbox (``make sandbox``) to see the texts without sending real SMS:
``load`` raises, its failure callback texts the exception, the DAG's failure
callback texts that the run failed, and ``extract``'s success callback texts how
many rows it found.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_sms_provider.notifications.sms import SmsNotifier

# Sender IDs differ per provider (Ogangi sends from a short code): one entry per connection type.
SENDER = {"mobizon": "Airflow", "bsg": "Airflow", "ogangi": "24365"}

# One notifier object can serve many callbacks: each call renders its own copy.
alert = SmsNotifier(conn_id="{{ params.sms_conn_id }}", recipients="{{ params.on_call }}", sender=SENDER)

with DAG(
    dag_id="example_sms_notifier",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "sms", "notifier"],
    params={"sms_conn_id": "bsg_default", "on_call": "+380501234567, +380501234568", "fail_load": True},
    on_failure_callback=alert,  # the default text names the DAG, the reason and the run
) as dag:

    @task(
        on_success_callback=SmsNotifier(
            conn_id="{{ params.sms_conn_id }}",
            recipients="{{ params.on_call }}",
            sender=SENDER,
            message="{{ dag.dag_id }}: extract found {{ ti.xcom_pull(task_ids='extract') }} rows",
        )
    )
    def extract() -> int:
        return 42

    @task(on_failure_callback=alert, retries=0)
    def load(rows: int, params: dict | None = None) -> None:
        """Fails on purpose (param ``fail_load``) to show the alert."""
        if (params or {}).get("fail_load"):
            raise ValueError(f"row {rows} is malformed")

    load(extract())
