"""The provider-neutral example DAG, end to end on Airflow (SQLite), once per provider.

The same DAG runs against each of the sandbox's three providers; only the connection
id (a DAG param) changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from airflow_sms_provider.triggers.campaign import SmsCampaignTrigger
from tests.helpers import load_example, sandbox_state, set_clock, task_states, xcom

pytestmark = pytest.mark.e2e

# In the example: 5 rows, one without a country code (rejected before sending).
VALID = {"77011112201": "Aigerim", "77011112202": "Daniyar", "77011112213": "Saule", "77011112205": "Asel"}


def sent_texts(url: str, provider: str) -> dict[str, str]:
    """number -> text of every message the sandbox's ``provider`` holds."""
    state = sandbox_state(url, provider)
    if provider == "mobizon":
        return {m["to"]: m["text"] for c in state["campaigns"] for m in c["messages"]}
    if provider == "bsg":
        return {str(m["phone"]): m["text"] for c in state["campaigns"] for m in c["messages"]}
    return {r["to"]: r["text"] for b in state["broadcasts"] for r in b["recipients"]}


@pytest.fixture
def trigger_events(monkeypatch: pytest.MonkeyPatch, sandbox_url: str) -> list[dict[str, Any]]:
    """The events the neutral trigger fired (it runs in-process under dag.test()).

    The sandbox's clock stands still until the trigger starts, then jumps an hour: the
    sensor's first check always finds the campaign unfinished and defers, on any machine,
    and the trigger's first poll finds it done.
    """
    set_clock(sandbox_url, speed=0)
    events: list[dict[str, Any]] = []
    run = SmsCampaignTrigger.run

    async def spy(self: SmsCampaignTrigger) -> AsyncIterator[Any]:
        set_clock(sandbox_url, advance=3600)
        async for event in run(self):
            events.append(event.payload)
            yield event

    monkeypatch.setattr(SmsCampaignTrigger, "run", spy)
    return events


@pytest.mark.parametrize("conn_fixture", ["mobizon_conn", "bsg_conn", "ogangi_conn"])
def test_example_sends_and_waits_through_any_provider(
    airflow_db: None, sandbox_url: str, conn_fixture: str, request: pytest.FixtureRequest,
    trigger_events: list[dict[str, Any]],
) -> None:
    conn_id = request.getfixturevalue(conn_fixture)
    provider = conn_fixture.removesuffix("_conn")
    dag = load_example("example_any_provider_campaign.py", "example_any_provider_campaign")

    run = dag.test(run_conf={"sms_conn_id": conn_id}, logical_date=None)  # as a manual run

    assert str(run.state).endswith("success"), task_states(run)
    outcome = xcom(run, "report")
    assert outcome["provider"] == provider
    assert (outcome["accepted"], outcome["rejected"], outcome["status"]) == (4, 1, "done")
    assert len(outcome["campaign_ids"]) == 1
    assert outcome["provider_statuses"] == [{"mobizon": "DONE", "bsg": "done", "ogangi": "FINISHED"}[provider]]
    # The wait happened in the triggerer: one event, "done".
    assert [e["status"] for e in trigger_events] == ["done"]

    # The provider's side: one campaign, each valid row once, its text filled per row.
    assert sent_texts(sandbox_url, provider) == {
        number: f"Hi {name}! Spring sale: -20% until Sunday." for number, name in VALID.items()
    }
