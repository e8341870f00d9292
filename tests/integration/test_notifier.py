"""SmsNotifier against the sandbox: rendering, masking, and what happens when sending fails.

The callbacks of a real DAG run are covered by tests/e2e/test_example_notifier.py; here
the notifier is called the way Airflow calls it (``notifier(context)``), which is fast.
"""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG, mask_secret

from airflow_sms_provider.notifications.sms import DEFAULT_MESSAGE, SmsNotifier, clean_text
from tests.conftest import mobizon_conn_uri
from tests.e2e.test_example_notifier import received
from tests.helpers import sandbox_requests, sandbox_state

DAG_ = DAG(dag_id="alerts", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"))
NUMBER = "380501234567"


def task_context(run_id: str = "manual__1", error: BaseException | None = None, state: str = "failed") -> dict:
    ti = SimpleNamespace(task_id="load", dag_id="alerts", run_id=run_id, state=state)
    return {"dag": DAG_, "ti": ti, "run_id": run_id, "exception": error}


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="airflow_sms_provider.notifications.sms")
    return caplog


def test_one_notifier_renders_each_call_afresh(bsg_conn: str, sandbox_url: str) -> None:
    notifier = SmsNotifier(conn_id=bsg_conn, recipients=[f"+{NUMBER}"], sender="MyShop")

    notifier(task_context("manual__1", ValueError("row 7 is malformed")))
    notifier(task_context("manual__2", KeyError("customer_id")))

    assert received(sandbox_url, "bsg") == [
        (NUMBER, "Airflow: alerts.load FAILED: KeyError: 'customer_id' (run manual__2)"),
        (NUMBER, "Airflow: alerts.load FAILED: ValueError: row 7 is malformed (run manual__1)"),
    ]
    assert notifier.message == DEFAULT_MESSAGE  # the object itself stays a template


def test_dag_level_and_success_texts(mobizon_conn: str, sandbox_url: str) -> None:
    notifier = SmsNotifier(conn_id=mobizon_conn, recipients=NUMBER)
    failing_task = SimpleNamespace(task_id="load", state="failed")

    notifier({"dag": DAG_, "ti": failing_task, "run_id": "r1", "reason": "task_failure"})
    notifier({"dag": DAG_, "run_id": "r2", "reason": "success"})  # a DAG run with no task instance
    notifier(task_context("r3", state="failed"))  # a failure callback without the exception

    assert received(sandbox_url, "mobizon") == [
        (NUMBER, "Airflow: alerts FAILED: task_failure in load (run r1)"),
        (NUMBER, "Airflow: alerts succeeded (run r2)"),
        (NUMBER, "Airflow: alerts.load FAILED (run r3)"),
    ]


def test_text_is_masked_flattened_and_cut(ogangi_conn: str, sandbox_url: str) -> None:
    mask_secret("hunter2-db-password")
    notifier = SmsNotifier(
        conn_id=ogangi_conn,
        recipients=[NUMBER],
        message="{{ ti.task_id }}:\n  {{ exception }} {{ 'pad ' * 30 }}",
        max_length=60,
    )

    notifier(task_context(error=RuntimeError("login failed: postgres://etl:hunter2-db-password@db/warehouse")))

    ((number, text),) = received(sandbox_url, "ogangi")
    assert number == NUMBER
    assert "hunter2" not in text
    assert text.startswith("load: login failed: postgres://etl:***@db/warehouse pad")
    assert len(text) == 60 and text.endswith("...")


def test_invalid_numbers_are_skipped_and_reported(bsg_conn: str, sandbox_url: str, logs: Any) -> None:
    notifier = SmsNotifier(conn_id=bsg_conn, recipients="+380 50 123 4567, 12; call-me\n380501234567", sender="MyShop")

    notifier(task_context(error=ValueError("boom")))

    assert [number for number, _ in received(sandbox_url, "bsg")] == [NUMBER]  # once, though listed twice
    assert "2 number(s) not reached" in logs.text and "'12': too short" in logs.text


def test_per_provider_sender(ogangi_conn: str, sandbox_url: str) -> None:
    SmsNotifier(conn_id=ogangi_conn, recipients=[NUMBER], sender={"bsg": "MyShop", "ogangi": "24365"})(
        task_context(error=ValueError("boom"))
    )
    (message,) = sandbox_state(sandbox_url, "ogangi")["messages"]
    assert str(message["from"]) == "24365"


def test_a_failed_send_is_logged_without_secrets_and_never_raised(
    sandbox_url: str, monkeypatch: pytest.MonkeyPatch, logs: Any
) -> None:
    wrong_key = "f00dfeedf00dfeedf00dfeedf00dfeedf00dfeed"
    monkeypatch.setenv("AIRFLOW_CONN_SMS_ALERTS", mobizon_conn_uri(sandbox_url, api_key=wrong_key))

    SmsNotifier(conn_id="sms_alerts", recipients=[NUMBER])(task_context(error=ValueError("boom")))

    assert "not reached" in logs.text and "...4567" in logs.text  # which number, not all of it
    assert wrong_key not in logs.text and NUMBER not in logs.text
    assert [r.levelname for r in logs.records if "not reached" in r.getMessage()] == ["ERROR"]
    assert sandbox_requests(sandbox_url, "mobizon")  # it did try


@pytest.mark.parametrize(
    ("conn", "expected"),
    [
        ({"conn_type": "http", "host": "example.com"}, "not an SMS provider of this package"),
        ({"conn_type": "bsg", "password": "test_sandbox"}, "sender"),  # BSG needs a sender
    ],
)
def test_errors_before_sending_are_logged(
    sandbox_url: str, monkeypatch: pytest.MonkeyPatch, logs: Any, conn: dict, expected: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SMS_ALERTS", json.dumps({**conn, "host": conn.get("host", sandbox_url)}))

    SmsNotifier(conn_id="sms_alerts", recipients=[NUMBER])(task_context(error=ValueError("boom")))

    assert "was not sent" in logs.text and expected in logs.text
    assert not sandbox_requests(sandbox_url)


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="at least one phone number"):
        SmsNotifier(conn_id="x", recipients=[])
    with pytest.raises(ValueError, match="max_length"):
        SmsNotifier(conn_id="x", recipients=[NUMBER], max_length=3)


def test_clean_text_keeps_gsm7() -> None:
    assert clean_text("a\n\tb  c", 300) == "a b c"
    assert clean_text("é" * 20, 10) == "é" * 7 + "..."


def test_registered_with_airflow() -> None:
    from airflow_sms_provider.get_provider_info import get_provider_info

    assert "airflow_sms_provider.notifications.sms.SmsNotifier" in get_provider_info()["notifications"]
