"""The Celery half of the deployment test: one Mobizon campaign whose files live in object storage.

The audience CSV and the reject report are ``ObjectStoragePath`` objects under
``DEPLOY_SHARED_STORAGE`` (``file:///…`` in the test; ``s3://…`` or ``gs://…`` in production),
so whichever Celery worker runs a try reads the same audience and writes the same report.
Each try records "<try> <pid> <worker>" (``DEPLOY_WORKER``) so the test can kill exactly
that task process and see where the retry ran.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow.providers.common.compat.sdk import DAG, ObjectStoragePath

from airflow_sms_provider.campaigns import mobizon_upload
from airflow_sms_provider.operators.mobizon import MobizonCampaignOperator

# Progress saved after every portion: the retry's resume point is exact, so the test can count.
mobizon_upload.CHECKPOINT_INTERVAL = 0.0

SHARED = os.environ.get("DEPLOY_SHARED_STORAGE", "file:///tmp/airflow-sms-deploy-shared")
TRIES_FILE = os.environ.get("DEPLOY_TRIES_FILE", "")


def record_try(context: Any) -> None:
    """Append "<try number> <pid> <worker>" of this task process (the test kills exactly this pid)."""
    if TRIES_FILE:
        with open(TRIES_FILE, "a", encoding="ascii") as out:
            out.write(f"{context['ti'].try_number} {os.getpid()} {os.environ.get('DEPLOY_WORKER', '?')}\n")


with DAG(
    dag_id="deploy_object_storage_campaign",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    # The pause before the retry lets the test stop the first worker: the retry must run on the other.
    default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=15), "pre_execute": record_try},
) as dag:
    MobizonCampaignOperator(
        task_id="campaign",
        name="Object storage",
        text="Hello from a shared audience",
        recipients=ObjectStoragePath(f"{SHARED}/audience.csv"),
        on_invalid="skip",
        reject_report_path=ObjectStoragePath(f"{SHARED}/rejected.csv"),
        wait_for_completion=False,
    )
