"""The delivery-report example end to end (dag.test over the sandbox): audience from a SQLite table through
common.sql, the campaign, the deferred wait, the report loaded into a table, the check against the
provider's statistics; on Mobizon and on BSG."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from airflow_sms_provider.triggers.campaign import SmsCampaignTrigger
from tests.helpers import load_example, set_clock, task_states, xcom

pytestmark = pytest.mark.e2e

# data/delivery_report_audience.csv: six rows, all valid.
PHONES = {"77011112301", "77011112302", "77011112313", "77011112304", "77011112305", "77011112306"}


@pytest.fixture
def reports_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_SMS_REPORTS_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


@pytest.fixture
def clock_jumps_when_the_trigger_starts(monkeypatch: pytest.MonkeyPatch, sandbox_url: str) -> list[str]:
    """The sensor always defers (the clock stands still), and the trigger's first poll finds the campaign done."""
    set_clock(sandbox_url, speed=0)
    statuses: list[str] = []
    run = SmsCampaignTrigger.run

    async def spy(self: SmsCampaignTrigger) -> AsyncIterator[Any]:
        set_clock(sandbox_url, advance=3600)
        async for event in run(self):
            statuses.append(event.payload["status"])
            yield event

    monkeypatch.setattr(SmsCampaignTrigger, "run", spy)
    return statuses


@pytest.mark.parametrize("conn_fixture", ["mobizon_conn", "bsg_conn"])
def test_example_loads_the_report_and_checks_it(
    airflow_db: None, sandbox_url: str, reports_db: Path, conn_fixture: str, request: pytest.FixtureRequest,
    clock_jumps_when_the_trigger_starts: list[str],
) -> None:
    conn_id = request.getfixturevalue(conn_fixture)
    provider = conn_fixture.removesuffix("_conn")
    dag = load_example("example_delivery_report.py", "example_delivery_report")

    run = dag.test(run_conf={"sms_conn_id": conn_id}, logical_date=None)  # as a manual run

    assert str(run.state).endswith("success"), task_states(run)
    assert clock_jumps_when_the_trigger_starts == ["done"]  # the wait was deferred
    checked = xcom(run, "check_report")
    assert checked["provider"] == provider
    # The sandbox's rules deliver five of these numbers and not the sixth, on both providers.
    assert checked["statuses"] == {"delivered": 5, "undelivered": 1}
    assert checked["statistics"] == {"total": 6, "delivered": 5}
    with sqlite3.connect(reports_db) as db:
        rows = list(db.execute("SELECT provider, campaign_id, recipient FROM sms_delivery_report"))
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {recipient for _, _, recipient in rows} == PHONES and len(rows) == 6
    assert {(p, c) for p, c, _ in rows} == {(provider, checked["campaign_ids"][0])}
    assert tables == {"sms_audience", "sms_delivery_report", "sms_report_watermarks"}  # no stage left behind


def test_the_check_fails_when_the_table_lost_a_row(
    airflow_db: None, sandbox_url: str, reports_db: Path, mobizon_conn: str, monkeypatch: pytest.MonkeyPatch,
    clock_jumps_when_the_trigger_starts: list[str],
) -> None:
    from airflow_sms_provider.reports.sql import SqlWriter

    commit_sql = SqlWriter.commit_sql
    lose_one = "DELETE FROM sms_delivery_report WHERE message_id = (SELECT MIN(message_id) FROM sms_delivery_report)"
    monkeypatch.setattr(SqlWriter, "commit_sql", lambda self, mark: [*commit_sql(self, mark), (lose_one, ())])
    dag = load_example("example_delivery_report.py", "example_delivery_report")

    run = dag.test(run_conf={"sms_conn_id": mobizon_conn}, logical_date=None)

    states = task_states(run)
    assert (states["delivery_report"], states["check_report"]) == ("success", "failed"), states


def test_a_second_run_replaces_nothing_but_its_own_campaign(
    airflow_db: None, sandbox_url: str, reports_db: Path, mobizon_conn: str,
    clock_jumps_when_the_trigger_starts: list[str],
) -> None:
    dag = load_example("example_delivery_report.py", "example_delivery_report")
    first = dag.test(run_conf={"sms_conn_id": mobizon_conn}, logical_date=None)
    second = dag.test(run_conf={"sms_conn_id": mobizon_conn}, logical_date=None)
    assert str(first.state).endswith("success") and str(second.state).endswith("success"), task_states(second)
    with sqlite3.connect(reports_db) as db:
        per_campaign = dict(db.execute("SELECT campaign_id, COUNT(*) FROM sms_delivery_report GROUP BY campaign_id"))
    assert sorted(per_campaign.values()) == [6, 6] and len(per_campaign) == 2
