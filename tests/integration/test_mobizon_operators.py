"""Mobizon operators and sensors run by Airflow (``dag.test()``) against the sandbox over HTTP."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from typing import Any

import httpx
import pendulum
import pytest

from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.operators.mobizon import (
    MobizonAddRecipientsOperator,
    MobizonCampaignOperator,
    MobizonCampaignStatsOperator,
    MobizonCreateCampaignOperator,
    MobizonDeleteCampaignOperator,
    MobizonMessageStatusOperator,
    MobizonSendCampaignOperator,
    MobizonSendSmsOperator,
)
from airflow_sms_provider.sensors.mobizon import MobizonCampaignSensor, MobizonTaskSensor
from tests.helpers import add_faults, run_dag, sandbox_requests, sandbox_state, set_clock, task_states, xcom

_ids = itertools.count()


def run_tasks(*operators_factory: Any, **dag_kwargs: Any) -> Any:
    """Build a one-off DAG from factories ``f(dag) -> operator`` chained in order, and dag.test() it."""
    from airflow.providers.common.compat.sdk import DAG

    with DAG(
        dag_id=f"mobizon_it_{next(_ids)}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        **dag_kwargs,
    ) as dag:
        tasks = [factory() for factory in operators_factory]
        for upstream, downstream in itertools.pairwise(tasks):
            upstream >> downstream
    return run_dag(dag)


def succeeded(run: Any) -> bool:
    return str(run.state).endswith("success")


def numbers(count: int, start: int = 1) -> list[str]:
    """Valid numbers; none ends in 0000 (the sandbox's stop list)."""
    return [f"7701{start + i:07d}" for i in range(count)]


def new_campaign(text: str = "Sale today", **kw: Any) -> int:
    return MobizonHook().create_campaign(text, **kw)


class TestOneStepCampaign:
    def test_create_fill_send_and_wait_in_process(self, airflow_db: None, mobizon_conn: str, sandbox_url: str) -> None:
        set_clock(sandbox_url, speed=1000)
        audience = numbers(1234)
        run = run_tasks(lambda: MobizonCampaignOperator(
            task_id="campaign", text="Hello", name="Big one", recipients=audience, poll_interval=0.2,
        ))
        assert succeeded(run), task_states(run)
        summary = xcom(run, "campaign")
        assert summary["added"] == 1234 and summary["rejected"] == 0
        assert summary["status"] == "DONE"
        assert len(summary["message_ids"]) <= 20 or len(summary["message_ids"]) <= 100
        campaign = sandbox_state(sandbox_url, "mobizon")["campaigns"][0]
        assert campaign["sendCalls"] == 1
        assert sorted(campaign["recipients"]) == sorted(audience)
        uploads = [r for r in sandbox_requests(sandbox_url, "mobizon") if r["path"].lower().endswith("addrecipients")]
        assert len(uploads) == 3

    def test_retry_after_failed_upload_resumes_the_same_campaign(
        self, airflow_db: None, mobizon_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from tests.conftest import mobizon_conn_uri

        # Only one HTTP attempt per call, so the injected 503s fail the first task try.
        monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", mobizon_conn_uri(sandbox_url, retry_attempts=1))
        set_clock(sandbox_url, speed=1000)
        add_faults(sandbox_url, {"provider": "mobizon", "path": "(?i)addrecipients", "skip": 1, "times": 1,
                                 "action": "http_status", "status": 503})
        audience = numbers(1200)
        run = run_tasks(lambda: MobizonCampaignOperator(
            task_id="campaign", text="Hello", recipients=audience, retries=1,
            retry_delay=dt.timedelta(seconds=0), wait_for_completion=False,
        ))
        assert succeeded(run), task_states(run)
        campaigns = sandbox_state(sandbox_url, "mobizon")["campaigns"]
        assert len(campaigns) == 1, "a retry must not create a second campaign"
        assert campaigns[0]["sendCalls"] == 1
        assert sorted(campaigns[0]["recipients"]) == sorted(audience)
        assert len(campaigns[0]["messages"]) == len(audience), "each recipient exactly once"

    def test_unanswered_create_is_reconciled_not_repeated(
        self, airflow_db: None, mobizon_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from tests.conftest import mobizon_conn_uri

        # The server creates the campaign, then answers too late: the client sees a read timeout.
        monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", mobizon_conn_uri(sandbox_url, timeout=1))
        add_faults(sandbox_url, {"provider": "mobizon", "path": "(?i)campaign/create", "times": 1,
                                 "action": "timeout_after", "seconds": 3})
        audience = numbers(20)
        run = run_tasks(lambda: MobizonCampaignOperator(
            task_id="campaign", text="Hello", name="Launch", recipients=audience, wait_for_completion=False,
        ))
        assert succeeded(run), task_states(run)
        campaigns = sandbox_state(sandbox_url, "mobizon")["campaigns"]
        assert len(campaigns) == 1, "an unanswered create must be looked up, not repeated"
        assert campaigns[0]["name"].startswith("Launch [af-")
        assert campaigns[0]["sendCalls"] == 1 and sorted(campaigns[0]["recipients"]) == sorted(audience)
        # The late answer is logged when it finally goes out: wait for it, so it cannot land
        # in the next test's request log after that test's reset.
        deadline = time.monotonic() + 10
        while not any("create" in r["path"].lower() for r in sandbox_requests(sandbox_url, "mobizon")):
            assert time.monotonic() < deadline, "the delayed campaign/create answer never completed"
            time.sleep(0.1)

    def test_bad_input_fails_before_any_request(self, airflow_db: None, mobizon_conn: str, sandbox_url: str) -> None:
        past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat()
        run = run_tasks(lambda: MobizonCampaignOperator(
            task_id="campaign", text="Hi", recipients=["77011112233"], deferred_to=past, retries=2,
        ))
        assert not succeeded(run)
        assert task_states(run)["campaign"].endswith("failed")
        assert sandbox_requests(sandbox_url, "mobizon") == []


class TestStepByStep:
    def test_a_retried_create_uses_the_campaign_an_unanswered_try_made(
        self, airflow_db: None, mobizon_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from tests.conftest import mobizon_conn_uri

        # Try 1: the server creates the campaign but answers too late, and the lookup that
        # follows fails too; try 2 must find that campaign, not create a second one.
        monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", mobizon_conn_uri(sandbox_url, timeout=1, retry_attempts=1))
        add_faults(sandbox_url,
                   {"provider": "mobizon", "path": "(?i)campaign/create", "action": "timeout_after", "seconds": 2},
                   {"provider": "mobizon", "path": "(?i)campaign/list", "action": "http_status", "status": 503})
        run = run_tasks(lambda: MobizonCreateCampaignOperator(
            task_id="create", text="Steps", name="Launch", retries=1, retry_delay=dt.timedelta(seconds=0),
        ))
        assert succeeded(run), task_states(run)
        campaigns = sandbox_state(sandbox_url, "mobizon")["campaigns"]
        assert len(campaigns) == 1, "a retried create must look its campaign up, not create a second one"
        assert campaigns[0]["name"].startswith("Launch [af-")
        assert xcom(run, "create") == campaigns[0]["id"]
        deadline = time.monotonic() + 10  # the held answer lands in this test's log, not the next one's
        while not any("create" in r["path"].lower() for r in sandbox_requests(sandbox_url, "mobizon")):
            assert time.monotonic() < deadline, "the delayed campaign/create answer never completed"
            time.sleep(0.1)

    def test_template_campaign_with_rows_send_and_stats(
        self, airflow_db: None, mobizon_conn: str, sandbox_url: str
    ) -> None:
        set_clock(sandbox_url, speed=1000)
        rows = [{"recipient": "77011112201", "name": "Ana"}, {"recipient": "+7 701 111 22 02", "name": "Bo"},
                {"recipient": "77011110000", "name": "Stop"}, {"recipient": "123", "name": "Bad"}]
        run = run_tasks(
            lambda: MobizonCreateCampaignOperator(task_id="create", text="Hi {name}", campaign_type=3),
            lambda: MobizonAddRecipientsOperator(
                task_id="add", campaign_id="{{ ti.xcom_pull('create') }}", recipients=rows, on_invalid="skip",
            ),
            lambda: MobizonSendCampaignOperator(task_id="send", campaign_id="{{ ti.xcom_pull('create') }}"),
            lambda: MobizonCampaignSensor(task_id="wait", campaign_id="{{ ti.xcom_pull('create') }}",
                                          poke_interval=0.2, timeout=60),
            lambda: MobizonCampaignStatsOperator(task_id="stats", campaign_id="{{ ti.xcom_pull('create') }}"),
            lambda: MobizonMessageStatusOperator(task_id="statuses",
                                                 campaign_id="{{ ti.xcom_pull('create') }}"),
        )
        assert succeeded(run), task_states(run)
        added = xcom(run, "add")
        assert (added["added"], added["rejected"]) == (2, 1)
        assert added["rejections"][0]["code"] == 5
        assert added["invalid"]["rejected"] == 1 and added["invalid"]["examples"][0]["row"] == 4
        assert xcom(run, "send")["send_status"] == 2
        stats = xcom(run, "stats")
        assert stats["status"] == "DONE" and stats["total"] == 2 and stats["delivered"] == 2
        assert xcom(run, "statuses")["counts"] == {"DELIVRD": 2}
        recipients = sandbox_state(sandbox_url, "mobizon")["campaigns"][0]["recipients"]
        texts = sorted(r["text"] for r in recipients.values())
        assert texts == ["Hi Ana", "Hi Bo"]

    def test_send_is_not_repeated_for_a_campaign_already_sent(
        self, airflow_db: None, mobizon_conn: str, sandbox_url: str
    ) -> None:
        hook = MobizonHook()
        campaign_id = new_campaign()
        hook.add_recipients(campaign_id, ["77011112201"])
        hook.send_campaign(campaign_id)
        run = run_tasks(lambda: MobizonSendCampaignOperator(task_id="send", campaign_id=campaign_id))
        assert succeeded(run)
        assert xcom(run, "send")["send_status"] is None
        assert sandbox_state(sandbox_url, "mobizon")["campaigns"][0]["sendCalls"] == 1

    def test_file_upload_waits_for_background_task(
        self, airflow_db: None, mobizon_conn: str, sandbox_url: str, tmp_path: Any
    ) -> None:
        set_clock(sandbox_url, speed=1000)
        path = tmp_path / "audience.csv"
        path.write_text("\n".join(numbers(50)) + "\n")
        campaign_id = new_campaign()
        run = run_tasks(lambda: MobizonAddRecipientsOperator(
            task_id="add", campaign_id=campaign_id, recipients_file=str(path)))
        assert succeeded(run), task_states(run)
        summary = xcom(run, "add")
        assert summary["background_task_id"] and summary["task"]["status"] == 2
        assert len(sandbox_state(sandbox_url, "mobizon")["campaigns"][0]["recipients"]) == 50

    def test_single_sms_and_delete(self, airflow_db: None, mobizon_conn: str, sandbox_url: str) -> None:
        campaign_id = new_campaign()
        run = run_tasks(
            lambda: MobizonSendSmsOperator(task_id="sms", recipient="+7 701 111 22 33", text="Your code: 1234"),
            lambda: MobizonDeleteCampaignOperator(task_id="delete", campaign_id=campaign_id),
        )
        assert succeeded(run), task_states(run)
        sms = xcom(run, "sms")
        assert sms["messageId"] > 0 and sms["status"] in (1, 2)
        assert xcom(run, "delete") == {"campaign_id": campaign_id, "deleted": True}


class TestSensors:
    @pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
    def test_campaign_sensor_waits_for_done(
        self, mode: str, airflow_db: None, mobizon_conn: str, sandbox_url: str
    ) -> None:
        set_clock(sandbox_url, speed=500)
        hook = MobizonHook()
        campaign_id = new_campaign()
        hook.add_recipients(campaign_id, numbers(5))
        hook.send_campaign(campaign_id)
        kwargs: dict[str, Any] = {"deferrable": True} if mode == "deferrable" else {"mode": mode}
        run = run_tasks(lambda: MobizonCampaignSensor(
            task_id="wait", campaign_id=campaign_id, poke_interval=0.2, timeout=60, **kwargs))
        assert succeeded(run), task_states(run)
        assert hook.get_campaign(campaign_id)["commonStatus"] == "DONE"

    @pytest.mark.parametrize("deferrable", [False, True])
    def test_a_wait_for_sent_ends_on_a_campaign_already_done(
        self, deferrable: bool, airflow_db: None, mobizon_conn: str, sandbox_url: str
    ) -> None:
        # Statuses are ordered (RUNNING -> SENT -> DONE): DONE has passed SENT. Compared for
        # equality, this sensor waited until its timeout (7 days by default).
        hook = MobizonHook()
        campaign_id = new_campaign()
        hook.add_recipients(campaign_id, numbers(2))
        hook.send_campaign(campaign_id)
        set_clock(sandbox_url, advance=600)
        assert hook.get_campaign(campaign_id)["commonStatus"] == "DONE"
        run = run_tasks(lambda: MobizonCampaignSensor(
            task_id="wait", campaign_id=campaign_id, target_statuses=["SENT"], poke_interval=0.2, timeout=5,
            deferrable=deferrable))
        assert succeeded(run), task_states(run)

    @pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
    def test_task_sensor_waits_for_background_task(
        self, mode: str, airflow_db: None, mobizon_conn: str, sandbox_url: str
    ) -> None:
        set_clock(sandbox_url, speed=50)
        campaign_id = new_campaign()
        task_id = MobizonHook().add_recipients(campaign_id, file=("a.csv", b"\n".join(
            n.encode() for n in numbers(3000)))).task_id
        kwargs: dict[str, Any] = {"deferrable": True} if mode == "deferrable" else {"mode": mode}
        run = run_tasks(lambda: MobizonTaskSensor(
            task_id="wait", task_id_to_watch=task_id, poke_interval=1, timeout=60, **kwargs))
        assert succeeded(run), task_states(run)
        assert MobizonHook().get_task_status(task_id)["status"] == 2

    @pytest.mark.parametrize("deferrable", [False, True])
    def test_declined_campaign_fails_with_moderator_comment(
        self, deferrable: bool, airflow_db: None, mobizon_conn: str, sandbox_url: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        set_clock(sandbox_url, speed=1000)
        hook = MobizonHook()
        campaign_id = new_campaign("Please moderate and decline this")
        hook.add_recipients(campaign_id, numbers(2))
        assert hook.send_campaign(campaign_id) == 1
        run = run_tasks(lambda: MobizonCampaignSensor(
            task_id="wait", campaign_id=campaign_id, poke_interval=0.2, timeout=60, deferrable=deferrable,
            retries=3))
        assert task_states(run)["wait"].endswith("failed")
        comment = hook.get_campaign(campaign_id)["globalComment"]
        # The task log (printed by dag.test) carries the moderator's reason.
        assert comment and comment in capsys.readouterr().out


class TestConnection:
    def test_test_connection_against_the_sandbox(self, mobizon_conn: str) -> None:
        assert MobizonHook().test_connection()[0] is True

    def test_wrong_key_reports_the_reason(self, sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        from tests.conftest import mobizon_conn_uri

        monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_BAD", mobizon_conn_uri(sandbox_url, api_key="x" * 40))
        okay, message = MobizonHook("mobizon_bad").test_connection()
        assert okay is False and "code 8" in message and "x" * 40 not in message

    def test_wrong_domain_names_the_right_one(self, sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        from tests.conftest import mobizon_conn_uri

        key = "k" * 40
        httpx.post(f"{sandbox_url}/_sandbox/mobizon/accounts",
                   json={"api_key": key, "domain": "api.mobizon.com.br"}).raise_for_status()
        monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_BR", mobizon_conn_uri(sandbox_url, api_key=key))
        okay, message = MobizonHook("mobizon_br").test_connection()
        assert okay is False and "api.mobizon.com.br" in message


class TestDocumentedOutcomes:
    """Paths the sandbox now emulates from the documents: the client must take them right."""

    def test_recipient_codes_8_51_99_are_reported_with_reasons(self, mobizon_conn: str, sandbox_url: str) -> None:
        campaign_id = new_campaign("See https://shop.example/sale", shorten_links=True)
        summary = MobizonAddRecipientsOperator(
            task_id="add", campaign_id=campaign_id,
            recipients=["88812345678", "77099123456", "77051123456", "77011234567"]).execute({})  # fmt: skip
        assert (summary["added"], summary["rejected"]) == (1, 3)
        assert [(r["code"], r["reason"]) for r in summary["rejections"]] == [
            (8, "operator not supported"), (99, "system error"), (51, "short link could not be created"),
        ]

    def test_pdlivrd_is_not_final_and_deleted_is(self, mobizon_conn: str, sandbox_url: str) -> None:
        hook = MobizonHook()
        campaign_id = new_campaign("Sale " * 40, validity=60)  # two SMS parts
        hook.add_recipients(campaign_id, ["77077123456", "77055123456", "77011234567"])
        hook.send_campaign(campaign_id)
        set_clock(sandbox_url, advance=60)
        report = MobizonMessageStatusOperator(task_id="st", campaign_id=campaign_id).execute({})
        assert report["counts"] == {"DELETED": 1, "PDLIVRD": 1, "DELIVRD": 1}
        assert (report["final"], report["total"]) == (2, 3)
        # The campaign is SENT until the partial message's lifetime ends: a wait for DONE goes on.
        assert hook.get_campaign(campaign_id)["commonStatus"] == "SENT"
        set_clock(sandbox_url, advance=3600)
        assert MobizonMessageStatusOperator(task_id="st", campaign_id=campaign_id).execute({})["final"] == 3

    def test_a_campaign_with_an_unregistered_sender_goes_out_with_the_shared_one(
        self, mobizon_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from tests.conftest import mobizon_conn_uri

        httpx.post(f"{sandbox_url}/_sandbox/mobizon/accounts",
                   json={"api_key": "s" * 40, "senders": ["Shop"]}).raise_for_status()  # fmt: skip
        monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", mobizon_conn_uri(sandbox_url, api_key="s" * 40))
        hook = MobizonHook()
        campaign_id = hook.create_campaign("Hi", sender="Other")
        hook.add_recipients(campaign_id, ["77011234567"])
        assert hook.get_campaign(campaign_id)["from"] == "Other"  # the campaign keeps the chosen sender
        (message,) = hook.iter_messages({"campaignIds": [campaign_id]})
        assert message["from"] == "SMS-INFO"
