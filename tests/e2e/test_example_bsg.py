"""The BSG example DAG, end to end on Airflow (SQLite) against the sandbox."""

from __future__ import annotations

import httpx
import pytest

from airflow_sms_provider.triggers.bsg import BsgCampaignsTrigger
from tests.e2e.deferral import spy_on_trigger
from tests.helpers import load_example, sandbox_state, set_clock, task_states, xcom

pytestmark = pytest.mark.e2e

# In the example: 7 rows, one without a country code (rejected before sending), one
# ending in 13 (undelivered in the sandbox) and one in 66 (expired).
VALID_ROWS = 6


def test_example_campaign_reaches_done_and_survives_token_expiry(
    airflow_db: None, bsg_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tokens live 4 simulated seconds (1 s real) and the campaign takes ~13 (3 s real);
    # the deferred wait polls every 2 s real, so its token expires between polls. The clock
    # stands still until the trigger starts: the sensor's own check always finds the
    # campaign unfinished and defers, on any machine.
    httpx.post(f"{sandbox_url}/_sandbox/bsg/config", json={"jwt_ttl": 4, "send_rate": 1}).raise_for_status()
    set_clock(sandbox_url, speed=0)
    events = spy_on_trigger(monkeypatch, BsgCampaignsTrigger, lambda: set_clock(sandbox_url, speed=4))
    dag = load_example("example_bsg_campaign.py", "example_bsg_campaign")

    run = dag.test(logical_date=None)  # as a run triggered from the UI, CLI or REST API

    assert str(run.state).endswith("success"), task_states(run)
    assert [e["status"] for e in events] == ["succeeded"]  # the sensor deferred, the trigger ended the wait
    outcome = xcom(run, "report")
    state = sandbox_state(sandbox_url, "bsg")
    campaigns = state["campaigns"]
    assert outcome == {
        "campaign_ids": [campaigns[0]["id"]],
        "phones": VALID_ROWS,
        "invalid_rows": 1,
        "delivered": 4,
        "undelivered": 1,
        "expired": 1,
        "message_statuses": {"delivered": 4, "undelivered": 1, "expired": 1},
        "total_price": "0.0900",
        "currency": "USD",
    }

    # The provider's side: one personalised campaign, each valid row once, texts and
    # senders per row, and every token that expired mid-run was replaced by a new login.
    assert len(campaigns) == 1
    campaign = campaigns[0]
    assert campaign["kind"] == "send-individual" and campaign["status"] == "done"
    messages = {m["phone"]: m for m in campaign["messages"]}
    assert len(messages) == VALID_ROWS and 661230006 not in messages
    assert messages[380661230001]["text"] == "Hi Olena! Your welcome code is A-1001."
    assert (messages[380661230005]["text"], messages[380661230005]["sender"]) == (
        "Oksana, your order has shipped.", "MyShop UA")
    assert messages[380661230007]["sender"] == "MyShop"
    assert all(m["reference_id"] for m in campaign["messages"])
    # Tokens expired mid-run and were renewed: a refusal answered by a new login, or a token
    # seen to be expiring and renewed first (which of the two depends on timing, so either counts).
    auth = state["auth"]
    assert auth["logins"] + auth["refreshes"] > 3  # a login per task is 3: more means renewals
    assert auth["logins"] >= 3 + auth["unauthorized"]  # every refusal led to a login
