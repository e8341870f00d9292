"""Issue 12, item 1: audience data is data. Hostile customer names reach the phones byte for byte.

Every audience-taking operator of each provider, the provider-neutral operator and the
notifier run under ``dag.test()`` against the sandbox, with recipients whose names are Jinja
(``{{ conn.<id>.password }}``, ``{{ 7 * 7 }}``, a ``{% for %}`` loop, ``{{ var.value.x }}``),
inline and from an upstream task's XCom. The sandbox is then asked for the exact texts it
delivered. A top-level string (a path from ``params``, an XCom template) is still a template.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG, task

from airflow_sms_provider.notifications.sms import SmsNotifier
from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator, BsgIndividualCampaignOperator
from airflow_sms_provider.operators.campaign import SmsCampaignOperator
from airflow_sms_provider.operators.mobizon import (
    MobizonAddRecipientsOperator,
    MobizonCampaignOperator,
    MobizonCreateCampaignOperator,
)
from airflow_sms_provider.operators.ogangi import OgangiCreateBroadcastOperator, OgangiSendSmsByFileOperator
from airflow_sms_provider.sandbox import SANDBOX_MOBIZON_API_KEY
from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY
from airflow_sms_provider.sandbox.ogangi import SANDBOX_OGANGI_PRIVATE_KEY
from tests.helpers import run_dag, sandbox_state, task_states

START = pendulum.datetime(2026, 1, 1, tz="UTC")
SECRETS = {"mobizon": SANDBOX_MOBIZON_API_KEY, "bsg": SANDBOX_BSG_API_KEY, "ogangi": SANDBOX_OGANGI_PRIVATE_KEY}
VARIABLE = "value-of-variable-x"  # what {{ var.value.x }} would print
ON_CALL, ON_CALL_BY_VARIABLE = "77011199001", "77011199002"


def names(conn_id: str) -> list[str]:
    return [f"{{{{ conn.{conn_id}.password }}}}", "{{ 7 * 7 }}", "{% for x in range(3) %}x{% endfor %}",
            "{{ var.value.x }}"]


def number(slot: int, row: int) -> str:
    """A distinct phone per task (slot) and row, so each text is traced to the task that sent it."""
    return f"770111{slot:02d}{row:03d}"


def rows(conn_id: str, slot: int) -> list[dict[str, str]]:
    return [{"recipient": number(slot, i), "name": name} for i, name in enumerate(names(conn_id), 1)]


def greetings(conn_id: str, slot: int) -> dict[str, str]:
    """What each phone of ``rows(conn_id, slot)`` must receive: the name as written."""
    return {row["recipient"]: f"Hi {row['name']}" for row in rows(conn_id, slot)}


def delivered(url: str, provider: str) -> list[tuple[str, str]]:
    """(number, text) of every message the sandbox's ``provider`` holds: campaigns, single SMS, broadcasts."""
    state = sandbox_state(url, provider)
    if provider == "mobizon":
        found = [(m["to"], m["text"]) for c in state["campaigns"] for m in c["messages"]]
    elif provider == "bsg":
        found = [(str(m["phone"]), m["text"]) for c in state["campaigns"] for m in c["messages"]]
    else:
        found = [(str(m["to"]), m["text"]) for m in state["messages"]]
        found += [(str(r["to"]), r["text"]) for b in state["broadcasts"] for r in b["recipients"]]
    return sorted(found)


@pytest.fixture
def hostile_world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Variables the names refer to, and a CSV of hostile rows (a file is data too)."""
    monkeypatch.setenv("AIRFLOW_VAR_X", VARIABLE)
    monkeypatch.setenv("AIRFLOW_VAR_ON_CALL", ON_CALL_BY_VARIABLE)
    return tmp_path


def write_csv(path: Path, conn_id: str, slot: int) -> str:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["recipient", "name"])
        writer.writeheader()
        writer.writerows(rows(conn_id, slot))
    return str(path)


def alert(conn_id: str) -> SmsNotifier:
    """A notifier whose second number would be the variable's if nested strings were rendered.

    Its message is a template by design: the task's id, rendered.
    """
    sender = "24365" if conn_id.startswith("ogangi") else "MyShop"
    return SmsNotifier(conn_id=conn_id, recipients=[ON_CALL, "{{ var.value.on_call }}"], sender=sender,
                       message="{{ ti.task_id }} done")


def neutral(conn_id: str, export: Any) -> dict[str, str]:
    """The provider-neutral operator, inline (slot 20) and from XCom (slot 21)."""
    sender = {"mobizon": "MyShop", "bsg": "MyShop", "ogangi": "24365"}
    SmsCampaignOperator(task_id="neutral_inline", conn_id=conn_id, text="Hi {name}", recipients=rows(conn_id, 20),
                        sender=sender)
    SmsCampaignOperator(task_id="neutral_xcom", conn_id=conn_id, text="Hi {name}", recipients=export(21),
                        sender=sender)
    return {**greetings(conn_id, 20), **greetings(conn_id, 21)}


def exporter(conn_id: str) -> Callable[[int], Any]:
    @task
    def export(slot: int) -> list[dict[str, str]]:
        return rows(conn_id, slot)

    return lambda slot: export.override(task_id=f"export_{slot}")(slot)


def mobizon_dag(conn_id: str, csv_path: str) -> tuple[DAG, dict[str, str]]:
    with DAG(dag_id="hostile_mobizon", schedule=None, start_date=START,
             params={"path": csv_path}) as dag:
        export = exporter(conn_id)
        one_step = {"text": "Hi {name}", "campaign_type": 3, "sender": "MyShop", "wait_for_completion": False}
        MobizonCampaignOperator(task_id="one_step_inline", recipients=rows(conn_id, 1), **one_step,
                                on_success_callback=alert(conn_id))
        MobizonCampaignOperator(task_id="one_step_xcom", recipients=export(2), **one_step)
        MobizonCampaignOperator(task_id="one_step_file", recipients="{{ params.path }}", **one_step)
        create = MobizonCreateCampaignOperator(task_id="create", text="Hi {name}", campaign_type=3, sender="MyShop")
        add_inline = MobizonAddRecipientsOperator(task_id="add_inline", campaign_id=create.output,
                                                  recipients=rows(conn_id, 4))
        add_inline >> MobizonAddRecipientsOperator(task_id="add_xcom", campaign_id=create.output,
                                                   recipients=export(5))
        expected = neutral(conn_id, export)
    for slot in (1, 2, 3, 4, 5):
        expected |= greetings(conn_id, slot)
    return dag, {**expected, ON_CALL: "one_step_inline done"}


def bsg_dag(conn_id: str, csv_path: str) -> tuple[DAG, dict[str, str]]:
    with DAG(dag_id="hostile_bsg", schedule=None, start_date=START, params={"path": csv_path}) as dag:
        export = exporter(conn_id)
        BsgIndividualCampaignOperator(task_id="individual_inline", text="Hi {name}", sender="MyShop",
                                      recipients=rows(conn_id, 1), on_success_callback=alert(conn_id))
        BsgIndividualCampaignOperator(task_id="individual_xcom", text="Hi {name}", sender="MyShop",
                                      recipients=export(2))
        BsgIndividualCampaignOperator(task_id="individual_file", text="Hi {name}", sender="MyShop",
                                      recipients="{{ params.path }}")
        # Bulk takes numbers: one that is a template stays a (rejected) template, not a second phone.
        BsgBulkCampaignOperator(task_id="bulk_inline", text="Sale", sender="MyShop", on_invalid="skip",
                                recipients=[number(4, 1), f"{{{{ '{number(4, 2)[:6]}' ~ '{number(4, 2)[6:]}' }}}}"])
        # A mapped task renders on its unmapped copy: the rule holds there too.
        BsgIndividualCampaignOperator.partial(task_id="mapped", sender="MyShop", recipients=rows(conn_id, 6)).expand(
            text=["Hi {name}"])
        expected = neutral(conn_id, export)
    for slot in (1, 2, 3, 6):
        expected |= greetings(conn_id, slot)
    return dag, {**expected, number(4, 1): "Sale", ON_CALL: "individual_inline done"}


def ogangi_dag(conn_id: str, csv_path: str) -> tuple[DAG, dict[str, str]]:
    with DAG(dag_id="hostile_ogangi", schedule=None, start_date=START, params={"path": csv_path}) as dag:
        export = exporter(conn_id)
        by_file = {"text": "Hi {0}", "sender": "24365", "template_params": ["name"]}
        OgangiSendSmsByFileOperator(task_id="by_file_inline", recipients=rows(conn_id, 1), **by_file,
                                    on_success_callback=alert(conn_id))
        OgangiSendSmsByFileOperator(task_id="by_file_xcom", recipients=export(2), **by_file)
        OgangiSendSmsByFileOperator(task_id="by_file_csv", recipients="{{ params.path }}", **by_file)
        OgangiCreateBroadcastOperator(task_id="broadcast_inline", text="Hi {name}", recipients=rows(conn_id, 4))
        OgangiCreateBroadcastOperator(task_id="broadcast_xcom", text="Hi {name}", recipients=export(5))
        expected = neutral(conn_id, export)
    for slot in (1, 2, 3, 4, 5):
        expected |= greetings(conn_id, slot)
    return dag, {**expected, ON_CALL: "by_file_inline done"}


DAGS = {"mobizon": mobizon_dag, "bsg": bsg_dag, "ogangi": ogangi_dag}


@pytest.mark.parametrize("provider", sorted(DAGS))
def test_hostile_names_are_delivered_as_written(
    provider: str, airflow_db: None, sandbox_url: str, hostile_world: Path, request: pytest.FixtureRequest,
) -> None:
    conn_id = request.getfixturevalue(f"{provider}_conn")
    csv_path = write_csv(hostile_world / "audience.csv", conn_id, slot=3)
    dag, expected = DAGS[provider](conn_id, csv_path)

    run = run_dag(dag)

    assert set(task_states(run).values()) == {"success"}, task_states(run)
    assert delivered(sandbox_url, provider) == sorted(expected.items())
    texts = [text for _, text in delivered(sandbox_url, provider)]
    assert f"Hi {{{{ conn.{conn_id}.password }}}}" in texts and "Hi {{ 7 * 7 }}" in texts
    assert not [t for t in texts if SECRETS[provider] in t or "49" in t or "xxx" in t or VARIABLE in t]


def test_an_xcom_template_renders_once_in_native_mode(
    airflow_db: None, sandbox_url: str, bsg_conn: str, hostile_world: Path,
) -> None:
    """``"{{ ti.xcom_pull(...) }}"`` is a template; the rows it brings are not."""
    with DAG(dag_id="hostile_native", schedule=None, start_date=START, render_template_as_native_obj=True) as dag:
        export = exporter(bsg_conn)(7)
        send = BsgIndividualCampaignOperator(task_id="send", text="Hi {name}", sender="MyShop",
                                             recipients="{{ ti.xcom_pull(task_ids='export_7') }}")
        export >> send

    run = run_dag(dag)

    assert task_states(run) == {"export_7": "success", "send": "success"}
    assert delivered(sandbox_url, "bsg") == sorted(greetings(bsg_conn, 7).items())
