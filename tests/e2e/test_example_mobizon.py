"""The Mobizon example DAG, end to end on Airflow (SQLite) against the sandbox."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_sms_provider.triggers.mobizon import MobizonCampaignTrigger
from tests.e2e.deferral import spy_on_trigger
from tests.helpers import load_example, sandbox_state, set_clock, task_states, xcom

pytestmark = pytest.mark.e2e

# In the example CSV: 12 rows, one too short (skipped before upload), one on the
# sandbox's stop list (rejected by Mobizon, code 5), and two that end undelivered/expired.
VALID_ROWS = 11
STOP_LISTED = "77011110000"


def test_example_campaign_reaches_done_and_reports(
    airflow_db: None, mobizon_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The clock stands still until the trigger starts: the sensor's check finds the campaign
    # sending and defers; then campaign minutes pass in real seconds.
    set_clock(sandbox_url, speed=0)
    events = spy_on_trigger(monkeypatch, MobizonCampaignTrigger, lambda: set_clock(sandbox_url, speed=600))
    dag = load_example("example_mobizon_campaign.py", "example_mobizon_campaign")

    run = dag.test(logical_date=None)  # as a run triggered from the UI, CLI or REST API

    assert str(run.state).endswith("success"), task_states(run)
    assert [e["status"] for e in events] == ["succeeded"]  # the sensor deferred, the trigger ended the wait
    outcome = xcom(run, "report")
    assert outcome["status"] == "DONE"
    assert outcome["accepted"] == VALID_ROWS - 1
    assert outcome["rejected_by_provider"] == 1
    assert outcome["invalid_rows"] == 1
    assert outcome["undelivered"] == 1 and outcome["expired"] == 1
    assert outcome["delivered"] == VALID_ROWS - 1 - 2
    # The reject report: in the run's own folder under AIRFLOW_HOME (the example's default), not /tmp.
    report_path = xcom(run, "add_recipients")["invalid"]["report_path"]
    home = Path(os.environ["AIRFLOW_HOME"]).resolve()
    assert report_path == f"file://{home}/sms_examples/example_mobizon_campaign/{run.run_id}/rejected.csv"
    report = home / "sms_examples" / "example_mobizon_campaign" / run.run_id / "rejected.csv"
    assert report.read_text().splitlines()[0] == "row,value,reason" and len(report.read_text().splitlines()) == 2

    # The provider's side: one campaign, sent exactly once, each valid recipient once,
    # placeholders filled per row.
    state = sandbox_state(sandbox_url, "mobizon")
    campaigns = state["campaigns"]
    assert len(campaigns) == 1
    campaign = campaigns[0]
    assert campaign["sendCalls"] == 1
    recipients = campaign["recipients"]
    assert len(recipients) == len(campaign["messages"]) == VALID_ROWS - 1
    assert STOP_LISTED not in recipients
    assert recipients["77011112201"]["text"] == "Hello Aigerim! Your welcome code is A-1001."
