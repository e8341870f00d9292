"""DAGs of tests/integration/test_worker_killed.py: one campaign task each, with one retry.

The harness in tests/worker_kill.py runs them with ``dag.test(use_executor=True)``: each
try of a task is a process of its own, which parses this file again, records its pid
(``record_pid``) and may then be killed by the test. Connections come from the
``AIRFLOW_CONN_*`` variables the harness is given.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow.providers.common.compat.sdk import DAG

from airflow_sms_provider.campaigns import mobizon_upload
from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator
from airflow_sms_provider.operators.mobizon import MobizonCampaignOperator
from airflow_sms_provider.operators.ogangi import OgangiCreateBroadcastOperator, OgangiSendSmsByFileOperator
from airflow_sms_provider.operators.reports import SmsDeliveryReportOperator

PID_FILE_ENV = "WORKER_KILL_PID_FILE"

# Save upload progress after every portion (the default, every 5 s, is longer than this whole
# upload): then where a retry resumes is exact and the test can count the portions sent again.
mobizon_upload.CHECKPOINT_INTERVAL = 0.0

MOBIZON_NUMBERS = [f"7701{i:07d}" for i in range(1, 3001)]  # 6 portions of 500
MOBIZON_PORTIONS = 6
BSG_CHUNK = 100  # phones per campaign: 10,000 in production, smaller here for speed
BSG_PHONES = [str(380500000000 + i) for i in range(3 * BSG_CHUNK)]  # 3 campaigns
OGANGI_NUMBERS = [f"1415555{i:04d}" for i in range(40)]
REPORT_MESSAGES = 1000  # 10 message/list pages of 100


def record_pid(context: Any) -> None:
    """Append "<try number> <pid>" of this task process: the test kills exactly this process."""
    path = os.environ.get(PID_FILE_ENV)
    if path:
        with open(path, "a", encoding="ascii") as out:
            out.write(f"{context['ti'].try_number} {os.getpid()}\n")


DEFAULT_ARGS: dict[str, Any] = {
    "retries": 1,
    "retry_delay": dt.timedelta(0),  # the retry starts as soon as the killed try is failed
    "pre_execute": record_pid,
}


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
               catchup=False, default_args=DEFAULT_ARGS)  # fmt: skip


with _dag("worker_killed_mobizon") as mobizon_dag:
    MobizonCampaignOperator(
        task_id="campaign", name="Worker killed", text="Hello from the sandbox",
        recipients=MOBIZON_NUMBERS, wait_for_completion=False,
    )  # fmt: skip

with _dag("worker_killed_bsg_sequential") as bsg_sequential_dag:
    BsgBulkCampaignOperator(
        task_id="campaign", text="Hello", sender="MyShop", recipients=BSG_PHONES, chunk_size=BSG_CHUNK,
        max_concurrent_creates=1,
    )  # fmt: skip

with _dag("worker_killed_bsg_concurrent") as bsg_concurrent_dag:
    BsgBulkCampaignOperator(
        task_id="campaign", text="Hello", sender="MyShop", recipients=BSG_PHONES, chunk_size=BSG_CHUNK,
        max_concurrent_creates=3,
    )  # fmt: skip

with _dag("worker_killed_ogangi_broadcast") as ogangi_broadcast_dag:
    OgangiCreateBroadcastOperator(
        task_id="campaign", text="Hello", recipients=OGANGI_NUMBERS, campaign_name="Worker killed",
    )  # fmt: skip

with _dag("worker_killed_ogangi_file") as ogangi_file_dag:
    OgangiSendSmsByFileOperator(task_id="campaign", text="Hello", sender="24365", recipients=OGANGI_NUMBERS)

# The campaign and the file come from the test (the harness passes them as environment variables):
# rendered in the task process, which has them.
with DAG("worker_killed_report", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
         catchup=False, default_args=DEFAULT_ARGS, user_defined_macros={"env": os.environ.get}) as report_dag:
    SmsDeliveryReportOperator(
        task_id="report", conn_id="mobizon_default", campaign_ids="{{ env('REPORT_CAMPAIGN_IDS') }}",
        destination="{{ env('REPORT_DESTINATION') }}", concurrency=1, batch_size=100,
    )  # fmt: skip
