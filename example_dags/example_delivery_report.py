"""Audience from a SQL table, one campaign, the wait, then every recipient's outcome loaded back into a table.

1. ``prepare_audience`` fills the table ``sms_audience`` from ``data/delivery_report_audience.csv``
   (in a real DAG the table is already in the warehouse); ``load_audience`` reads it through the same
   ``common.sql`` connection.
2. ``SmsCampaignOperator`` sends one text through the connection in the ``sms_conn_id`` param
   (``mobizon_default`` or ``bsg_default``: Ogangi's API cannot list messages, see docs/delivery-reports.md);
   ``SmsCampaignSensor`` waits for it in the triggerer.
3. ``SmsDeliveryReportOperator`` loads one row per message into ``sms_delivery_report`` (created when
   missing; a retry or a rerun replaces the campaign's rows, never duplicates them).
4. ``check_report`` counts the table's rows and compares them with the provider's own statistics; it fails
   when they differ.

The SQL connection is ``sms_reports_db`` (any ``common.sql`` database; SQLite in the test suite, PostgreSQL
in the deployment test), e.g. ``AIRFLOW_CONN_SMS_REPORTS_DB='{"conn_type": "sqlite", "host": "/tmp/sms.db"}'``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, BaseHook, task

from airflow_sms_provider.operators.campaign import SmsCampaignOperator
from airflow_sms_provider.operators.reports import SmsDeliveryReportOperator
from airflow_sms_provider.sensors.campaign import SmsCampaignSensor

SQL_CONN_ID = "sms_reports_db"
REPORT_TABLE = "sms_delivery_report"
AUDIENCE_CSV = Path(__file__).parent / "data" / "delivery_report_audience.csv"


def sql_hook() -> Any:
    """The DbApiHook of the SQL connection, whatever database it is."""
    return BaseHook.get_connection(SQL_CONN_ID).get_hook()


with DAG(
    dag_id="example_delivery_report",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "sms", "reports", "sql"],
    params={"sms_conn_id": "mobizon_default"},
) as dag:

    @task
    def prepare_audience() -> int:
        """Stand-in for the warehouse: the audience table, filled from a CSV shipped with the examples."""
        hook = sql_hook()
        hook.run([
            "CREATE TABLE IF NOT EXISTS sms_audience (phone VARCHAR(32) NOT NULL PRIMARY KEY, name VARCHAR(64))",
            "DELETE FROM sms_audience",
        ])  # fmt: skip
        with AUDIENCE_CSV.open(newline="") as fh:
            rows = [(row["phone"], row["name"]) for row in csv.DictReader(fh)]
        hook.insert_rows("sms_audience", rows, target_fields=["phone", "name"])
        return len(rows)

    @task
    def load_audience(prepared: int) -> list[dict[str, str]]:
        """The audience query; a few thousand rows travel through XCom well, millions belong in a file."""
        records = sql_hook().get_records("SELECT phone, name FROM sms_audience ORDER BY phone")
        return [{"phone": phone, "name": name} for phone, name in records]

    send = SmsCampaignOperator(
        task_id="send_campaign",
        conn_id="{{ params.sms_conn_id }}",
        text="Hi {name}! Your order is ready for pickup.",
        recipients=load_audience(prepare_audience()),
        sender="MyShop",
        name="Pickup {{ dag_run.run_after | ds }}",
        on_invalid="skip",
    )
    wait = SmsCampaignSensor(
        task_id="wait_for_done",
        conn_id="{{ params.sms_conn_id }}",
        campaign_ids=send.output,
        deferrable=True,
        poke_interval=2,  # seconds; real campaigns take minutes, so 30-60 is plenty there
        timeout=3600,
    )
    report = SmsDeliveryReportOperator(
        task_id="delivery_report",
        conn_id="{{ params.sms_conn_id }}",
        campaign_ids="{{ ti.xcom_pull(task_ids='send_campaign')['campaign_ids'] }}",
        sql_conn_id=SQL_CONN_ID,
        table=REPORT_TABLE,
        create_table=True,
    )
    wait >> report

    @task
    def check_report(summary: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The table's counts against the provider's statistics: a report that lost or doubled rows fails."""
        from airflow_sms_provider.providers import hook_for

        provider, ids = summary["provider"], [str(i) for i in summary["campaign_ids"]]
        hook = sql_hook()
        marks = ", ".join([hook.placeholder] * len(ids))
        rows = hook.get_records(
            f"SELECT status, COUNT(*) FROM {REPORT_TABLE} WHERE provider = {hook.placeholder} "
            f"AND campaign_id IN ({marks}) GROUP BY status",
            parameters=[provider, *ids],
        )
        in_table = {str(status): int(count) for status, count in rows}
        sms = hook_for(params["sms_conn_id"] if params else "mobizon_default")
        try:
            stats = {"total": 0, "delivered": 0}
            for campaign_id in summary["campaign_ids"]:
                if provider == "mobizon":
                    counters = sms.get_campaign_info(int(campaign_id))["counters"]
                    stats["total"] += int(counters["totalMsgNum"])
                    stats["delivered"] += int(counters["totalDelivrdMsgNum"])
                elif provider == "bsg":
                    statistics = sms.get_campaign_detail(int(campaign_id))["statistics"]
                    stats["total"] += sum(int(n) for n in statistics.values())
                    stats["delivered"] += int(statistics.get("delivered", 0))
                else:
                    raise ValueError(f"no statistics to check a {provider} report against")
        finally:
            sms.close()
        table = {"total": sum(in_table.values()), "delivered": in_table.get("delivered", 0)}
        print(f"Delivery report in {REPORT_TABLE}: {in_table}; provider statistics: {stats}")
        if table != stats or summary["rows"] != stats["total"]:
            raise ValueError(f"the report disagrees with {provider}'s statistics: table {table}, provider {stats}, "
                             f"exported {summary['rows']}")
        return {"provider": provider, "campaign_ids": ids, "statuses": in_table, "statistics": stats}

    check_report(report.output)
