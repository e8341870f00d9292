"""The examples against the sandbox as ``make sandbox`` serves it (wall clock, its campaign timings).

Nothing holds the clock here: the deferrable sensors defer because the CLI's campaigns
take about ten seconds, longer than the hand-off from the send task to the sensor (seconds
under a real scheduler; less under dag.test()). Ogangi's example relies on the clock
being the wall clock instead (tests/sandbox/test_cli_and_config.py), and would take its
full two minutes here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from airflow_sms_provider.sandbox import SandboxServer
from airflow_sms_provider.sandbox.server import CLI_DEFAULTS, connection_lines
from airflow_sms_provider.triggers.bsg import BsgCampaignsTrigger
from airflow_sms_provider.triggers.mobizon import MobizonCampaignTrigger
from tests.e2e.deferral import spy_on_trigger
from tests.helpers import load_example, task_states

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A sandbox with the command line's defaults; the *_default connections point at it as it prints them."""
    with SandboxServer(clock_speed=1.0, **CLI_DEFAULTS) as sandbox:
        for line in connection_lines(sandbox.url):
            name, value = line.removeprefix("export ").split("=", 1)
            conn = json.loads(value.strip("'"))
            conn.setdefault("extra", {})["retry_base_delay"] = 0.01
            monkeypatch.setenv(name, json.dumps(conn))
        yield sandbox.url


@pytest.mark.parametrize(
    ("filename", "dag_id", "trigger"),
    [
        ("example_mobizon_campaign.py", "example_mobizon_campaign", MobizonCampaignTrigger),
        ("example_bsg_campaign.py", "example_bsg_campaign", BsgCampaignsTrigger),
    ],
)
def test_sensor_defers_against_make_sandbox(
    airflow_db: None, cli_sandbox: str, monkeypatch: pytest.MonkeyPatch, filename: str, dag_id: str, trigger: type
) -> None:
    events = spy_on_trigger(monkeypatch, trigger)
    dag = load_example(filename, dag_id)

    run = dag.test(logical_date=None)

    assert str(run.state).endswith("success"), task_states(run)
    assert [e["status"] for e in events] == ["succeeded"]
