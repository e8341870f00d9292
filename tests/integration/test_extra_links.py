"""Extra links under ``dag.test()`` against the sandbox: each campaign task's link, as its operator
reads it and as Airflow's API server shows it (the serialized DAG's link), opens the campaign."""

from __future__ import annotations

from typing import Any

import httpx
import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG

from airflow_sms_provider.links import LINK_CLASSES
from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator, BsgCampaignStatsOperator
from airflow_sms_provider.operators.campaign import SmsCampaignOperator
from airflow_sms_provider.operators.mobizon import MobizonCampaignOperator, MobizonCampaignStatsOperator
from airflow_sms_provider.operators.ogangi import OgangiCreateBroadcastOperator
from airflow_sms_provider.sensors.bsg import BsgCampaignSensor
from airflow_sms_provider.sensors.campaign import SmsCampaignSensor
from airflow_sms_provider.sensors.mobizon import MobizonCampaignSensor
from airflow_sms_provider.sensors.ogangi import OgangiBroadcastSensor
from airflow_sms_provider.triggers.bsg import BsgCampaignsTrigger
from airflow_sms_provider.triggers.campaign import SmsCampaignTrigger
from airflow_sms_provider.triggers.mobizon import MobizonCampaignTrigger
from airflow_sms_provider.triggers.ogangi import OgangiBroadcastTrigger
from tests.helpers import run_dag, set_clock, task_states, xcom

NUMBERS = ["77011112201", "77011112202", "77011112205"]
START = pendulum.datetime(2026, 1, 1, tz="UTC")
# Sensors poke fast and defer: the link must be in place before the trigger runs and after it resumes.
WAIT = {"poke_interval": 0.1, "timeout": 120, "deferrable": True}


@pytest.fixture
def deferred(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sandbox clock stands still until a trigger runs, so every sensor defers first; the triggers that ran.

    ``dag.test()`` runs triggers in its own process: their ``run`` is wrapped here.
    """
    set_clock(sandbox_url, speed=0)
    ran: list[str] = []
    for cls in (MobizonCampaignTrigger, BsgCampaignsTrigger, OgangiBroadcastTrigger, SmsCampaignTrigger):
        def run(self: Any, original: Any = cls.run) -> Any:
            ran.append(type(self).__name__)
            set_clock(sandbox_url, advance=3600, speed=3600)
            return original(self)

        monkeypatch.setattr(cls, "run", run)
    return ran


def served_dag(dag: Any) -> Any:
    """The DAG as Airflow's API server has it: deserialized, without operator code."""
    from airflow.models.serialized_dag import SerializedDagModel

    stored = SerializedDagModel.get_dag(dag.dag_id)
    if stored is not None:
        return stored
    # Airflow 3.0: dag.test() stores no serialized DAG; round-trip it as the DAG processor would.
    from airflow.serialization.serialized_objects import SerializedDAG

    return SerializedDAG.deserialize_dag(SerializedDAG.serialize_dag(dag))


def links_of(run: Any, dag: Any) -> dict[str, str]:
    """Each task's one link: the operator's get_link, checked against what the API server would show."""
    served = served_dag(dag)
    found = {}
    for ti in run.get_task_instances():
        operator = dag.get_task(ti.task_id)
        (link,) = operator.operator_extra_links
        url = link.get_link(operator, ti_key=ti.key)
        # The API server has no operator code: the serialized task shows the XCom under the link's key.
        assert served.get_task(ti.task_id).get_extra_links(ti, link.name) == url, ti.task_id
        found[ti.task_id] = url
    return found


def sandbox_page(sandbox_url: str, provider: str, campaign_id: int) -> str:
    """The URL a link must be, after checking that it opens that campaign."""
    url = f"{sandbox_url}/_sandbox/{provider}/campaigns/{campaign_id}"
    response = httpx.get(url)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["provider"], body["campaign"]["id"]) == (provider, campaign_id)
    assert "messages" not in body["campaign"] and "recipients" not in body["campaign"]
    return url


def test_mobizon_links(airflow_db: None, mobizon_conn: str, sandbox_url: str, deferred: list[str]) -> None:
    campaign = "{{ ti.xcom_pull('send')['campaign_id'] }}"
    with DAG(dag_id="links_mobizon", schedule=None, start_date=START) as dag:
        send = MobizonCampaignOperator(task_id="send", text="Spring sale", recipients=NUMBERS, sender="MyShop",
                                       wait_for_completion=False)
        wait = MobizonCampaignSensor(task_id="wait", campaign_id=campaign, **WAIT)
        stats = MobizonCampaignStatsOperator(task_id="stats", campaign_id=campaign)
        send >> wait >> stats
    run = run_dag(dag)

    assert task_states(run) == dict.fromkeys(("send", "wait", "stats"), "success")
    assert deferred == ["MobizonCampaignTrigger"]
    page = sandbox_page(sandbox_url, "mobizon", xcom(run, "send")["campaign_id"])
    assert links_of(run, dag) == dict.fromkeys(("send", "wait", "stats"), page)


def test_bsg_links_point_at_the_first_of_split_campaigns(
    airflow_db: None, bsg_conn: str, sandbox_url: str, deferred: list[str]
) -> None:
    with DAG(dag_id="links_bsg", schedule=None, start_date=START) as dag:
        send = BsgBulkCampaignOperator(task_id="send", text="Spring sale", sender="MyShop", recipients=NUMBERS,
                                       chunk_size=2)
        wait = BsgCampaignSensor(task_id="wait", campaign_ids=send.output, **WAIT)
        stats = BsgCampaignStatsOperator(task_id="stats", campaign_ids=send.output)
        wait >> stats
    run = run_dag(dag)

    assert task_states(run) == dict.fromkeys(("send", "wait", "stats"), "success")
    assert deferred == ["BsgCampaignsTrigger"]
    first, second = xcom(run, "send")["campaign_ids"]
    page = sandbox_page(sandbox_url, "bsg", first)
    sandbox_page(sandbox_url, "bsg", second)
    assert links_of(run, dag) == dict.fromkeys(("send", "wait", "stats"), page)


def test_ogangi_links(airflow_db: None, ogangi_conn: str, sandbox_url: str, deferred: list[str]) -> None:
    with DAG(dag_id="links_ogangi", schedule=None, start_date=START) as dag:
        create = OgangiCreateBroadcastOperator(task_id="create", text="Spring sale", recipients=NUMBERS,
                                               shortcode="24365")
        OgangiBroadcastSensor(task_id="wait", broadcast_id=create.output["broadcast_id"], **WAIT)
    run = run_dag(dag)

    assert task_states(run) == {"create": "success", "wait": "success"}
    assert deferred == ["OgangiBroadcastTrigger"]
    page = sandbox_page(sandbox_url, "ogangi", xcom(run, "create")["broadcast_id"])
    assert links_of(run, dag) == {"create": page, "wait": page}


@pytest.mark.parametrize("provider", ["mobizon", "bsg", "ogangi"])
def test_neutral_links_follow_the_connection_type(
    provider: str, airflow_db: None, sandbox_url: str, deferred: list[str], request: pytest.FixtureRequest
) -> None:
    conn_id = request.getfixturevalue(f"{provider}_conn")
    sender = {"mobizon": "MyShop", "bsg": "MyShop", "ogangi": "24365"}
    with DAG(dag_id=f"links_neutral_{provider}", schedule=None, start_date=START) as dag:
        send = SmsCampaignOperator(task_id="send", conn_id=conn_id, text="Spring sale", recipients=NUMBERS,
                                   sender=sender)
        SmsCampaignSensor(task_id="wait", conn_id=conn_id, campaign_ids=send.output, **WAIT)
    run = run_dag(dag)

    assert task_states(run) == {"send": "success", "wait": "success"}
    assert deferred == ["SmsCampaignTrigger"]
    (campaign_id,) = xcom(run, "send")["campaign_ids"]
    page = sandbox_page(sandbox_url, provider, campaign_id)
    assert links_of(run, dag) == {"send": page, "wait": page}


def test_sandbox_campaign_page_answers_404_for_what_it_does_not_hold(sandbox_url: str) -> None:
    assert httpx.get(f"{sandbox_url}/_sandbox/mobizon/campaigns/999999").status_code == 404
    assert httpx.get(f"{sandbox_url}/_sandbox/nobody/campaigns/1").status_code == 404


def test_providers_manager_lists_the_links() -> None:
    from airflow.providers_manager import ProvidersManager

    names = set(ProvidersManager().extra_links_class_names)
    assert {f"{cls.__module__}.{cls.__qualname__}" for cls in LINK_CLASSES} <= names
