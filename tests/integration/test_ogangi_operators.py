"""Ogangi operators and the broadcast sensor against the sandbox over HTTP (some run by ``dag.test()``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pendulum
import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.hooks.ogangi import OgangiHook
from airflow_sms_provider.operators.ogangi import (
    OgangiBroadcastActionOperator,
    OgangiCreateBroadcastOperator,
    OgangiDeleteBroadcastOperator,
    OgangiResumeBroadcastOperator,
    OgangiSendSmsByFileOperator,
    OgangiStopBroadcastOperator,
    OgangiSuspendBroadcastOperator,
)
from airflow_sms_provider.sandbox import ogangi as sb
from airflow_sms_provider.sensors.ogangi import OgangiBroadcastSensor
from tests.helpers import (
    DurableStore,
    add_faults,
    run_dag,
    sandbox_requests,
    sandbox_state,
    set_clock,
    task_states,
    xcom,
)

NUMBERS = ["14155550100", "14155550101", "584125550102"]
_ids = itertools.count()



def ogangi_requests(url: str) -> list[dict[str, Any]]:
    return sandbox_requests(url, "ogangi")


def methods_called(url: str) -> list[str]:
    return [r["path"].split("/")[4] for r in ogangi_requests(url)]


def state(url: str) -> dict[str, Any]:
    return sandbox_state(url, "ogangi")


@contextlib.contextmanager
def advance_after_first_poll(url: str, seconds: float) -> Iterator[None]:
    """Keep the (frozen) clock still until the first getBroadcast, then jump: the sensor must wait once."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.02):
            if "getBroadcast" in methods_called(url):
                set_clock(url, advance=seconds)
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(timeout=5)


def fault(url: str, **rule: Any) -> None:
    add_faults(url, {"provider": "ogangi", **rule})


def run_tasks(*factories: Any, **dag_kwargs: Any) -> Any:
    """A one-off DAG of operators made by ``factories`` (chained in order), run by dag.test()."""
    from airflow.providers.common.compat.sdk import DAG

    with DAG(dag_id=f"ogangi_it_{next(_ids)}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
             **dag_kwargs) as dag:
        tasks = [factory() for factory in factories]
        for upstream, downstream in itertools.pairwise(tasks):
            upstream >> downstream
    return run_dag(dag)


def task_state(run: Any, task_id: str) -> str:
    return task_states(run)[task_id]


@pytest.fixture
def frozen(ogangi_conn: str, sandbox_url: str) -> str:
    """The sandbox with its clock stopped; tests move it."""
    set_clock(sandbox_url, speed=0)
    return sandbox_url


def new_broadcast(count: int = 3, **kw: Any) -> int:
    hook = OgangiHook()
    try:
        return int(hook.create_broadcast(NUMBERS[:count], text="Hi", **kw)["id"])
    finally:
        hook.close()


# ------------------------------------------------------------------ send by file


class TestSendByFile:
    def test_csv_audience_with_template_columns_via_dag_test(
        self, airflow_db: None, frozen: str, tmp_path: Any
    ) -> None:
        csv_path = tmp_path / "audience.csv"
        csv_path.write_text(
            "phone,name,code,carrier\n"
            "+1 415 555 0100,Ana,A-1,movistar\n"
            "not-a-number,Bo,B-2,\n"
            "14155550101,Cy,C-3,\n"
        )
        rejects = tmp_path / "rejects.csv"
        run = run_tasks(
            lambda: OgangiSendSmsByFileOperator(
                task_id="send", recipients="{{ params.audience }}", text="Hi {0}, code {1}", sender="24365",
                template_params=["name", "code"], on_invalid="skip", reject_report_path=str(rejects),
            ),
            params={"audience": str(csv_path)},
        )
        assert task_state(run, "send").endswith("success")
        summary = xcom(run, "send")
        assert summary["total"] == 2 and summary["status_counts"] == {"SENT_TO_CARRIER": 2}
        assert summary["invalid"]["rejected"] == 1 and rejects.exists()
        assert all(set(m) == {"id", "status"} for m in summary["messages"])
        assert "14155550100" not in json.dumps(summary)  # never the audience
        sent = {m["to"]: m for m in state(frozen)["messages"]}
        assert sent["14155550100"]["text"] == "Hi Ana, code A-1" and sent["14155550100"]["carrier"] == "movistar"
        assert sent["14155550101"]["text"] == "Hi Cy, code C-3"

    def test_a_file_in_ogangi_format_is_uploaded_as_is(self, frozen: str, tmp_path: Any) -> None:
        path = tmp_path / "ready.csv"
        path.write_text("14155550100,24365,,Ready {0},UTF-8,UTC,go\n123,24365,,x,UTF-8,UTC\n")
        summary = OgangiSendSmsByFileOperator(task_id="t", file_path=str(path), max_reported=1).execute({})
        assert (summary["total"], summary["failed"], len(summary["messages"])) == (2, 1, 1)
        assert summary["status_counts"] == {"SENT_TO_CARRIER": 1, "BAD_TO": 1}
        assert state(frozen)["messages"][0]["text"] == "Ready go"

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"recipients": NUMBERS, "file_path": "/tmp/x.csv", "text": "Hi"}, "exactly one of"),
            ({"recipients": [{"number": NUMBERS[0], "a": "1"}], "text": "Hi {0} {1}"}, "row 1: the text uses {1}"),
            ({"recipients": [NUMBERS[0], "12"], "text": "Hi"}, "row 2: invalid phone number"),
            ({"recipients": NUMBERS}, "row 1: no 'text'"),
            ({"recipients": NUMBERS, "text": "Hi", "timezone": "Mars/Base"}, "timezone='Mars/Base'"),
            ({"recipients": [{"number": NUMBERS[0]}], "text": "Hi {0}", "template_params": ["name"]},
             "row 1: no value for template parameter"),
            ({"file_path": "/nonexistent/file.csv"}, "cannot be read"),
        ],
    )
    def test_bad_input_fails_before_any_request(self, frozen: str, kwargs: dict, match: str) -> None:
        with pytest.raises(exc.SmsValidationError, match=match):
            OgangiSendSmsByFileOperator(task_id="t", **kwargs).execute({})
        assert ogangi_requests(frozen) == []

    def test_a_retry_after_success_does_not_send_again(self, frozen: str) -> None:
        context = {"task_state_store": DurableStore()}
        operator = OgangiSendSmsByFileOperator(task_id="t", recipients=NUMBERS, text="Hi")
        first = operator.execute(context)
        assert operator.execute(context) == first
        assert methods_called(frozen) == ["tools"]

    def test_an_ambiguous_upload_is_never_repeated(self, frozen: str) -> None:
        fault(frozen, path="sendSMSByFile", action="http_status", status=502)
        context = {"task_state_store": DurableStore()}
        operator = OgangiSendSmsByFileOperator(task_id="t", recipients=NUMBERS, text="Hi")
        with pytest.raises(exc.SmsAmbiguousError):
            operator.execute(context)
        with pytest.raises(exc.SmsFatalError, match="may have been sent"):
            operator.execute(context)
        assert len(ogangi_requests(frozen)) == 1


# ------------------------------------------------------------------ create broadcast


class TestCreateBroadcast:
    def test_templated_create_pushes_the_id_and_a_summary(self, airflow_db: None, frozen: str) -> None:
        run = run_tasks(
            lambda: OgangiCreateBroadcastOperator(
                task_id="create", text="{{ params.text }}", shortcode="{{ params.code }}",
                recipients=[{"number": n, "name": f"N{i}"} for i, n in enumerate(NUMBERS)],
                scheduled_at=dt.timedelta(hours=1),
            ),
            params={"text": "Hello {name}", "code": "0000000"},
        )
        assert task_state(run, "create").endswith("success")
        summary = xcom(run, "create")
        assert xcom(run, "create", "broadcast_id") == summary["broadcast_id"] == 1
        assert (summary["status"], summary["expected_messages"], summary["recipients"]) == ("SCHEDULED", 3, 3)
        assert summary["campaign_name"] == f"{run.dag_id}.create.{run.run_id}"
        (item,) = state(frozen)["broadcasts"]
        assert item["name"] == summary["campaign_name"] and item["shortcode"] == "0000000"
        assert [r["text"] for r in item["recipients"]] == ["Hello N0", "Hello N1", "Hello N2"]
        assert methods_called(frozen) == ["getShortcodes", "createBroadcastFromJson"]

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"text": "Hi {name}", "recipients": [{"number": NUMBERS[0]}]}, "row 1: placeholder {name}"),
            ({"text": "Hi", "recipients": NUMBERS, "scheduled_at": "2001-01-01T00:00:00Z"}, "in the past"),
            ({"text": "Hi", "recipients": NUMBERS, "scheduled_at": dt.timedelta(days=400)}, "ahead"),
            ({"text": "Hi", "recipients": NUMBERS, "broadcast_id": "abc"}, "broadcast_id='abc'"),
            ({"text": " ", "recipients": NUMBERS}, "text is empty"),
            ({"text": "Hi", "recipients": []}, "recipients is empty"),
            ({"text": "Hi", "recipients": NUMBERS, "schedule_timezone": "Nowhere"}, "schedule_timezone='Nowhere'"),
        ],
    )
    def test_bad_input_fails_before_any_request(self, frozen: str, kwargs: dict, match: str) -> None:
        with pytest.raises(exc.SmsValidationError, match=match):
            OgangiCreateBroadcastOperator(task_id="t", **kwargs).execute({})
        assert ogangi_requests(frozen) == []

    def test_an_unknown_shortcode_is_caught_by_a_read_only_call(self, frozen: str) -> None:
        with pytest.raises(exc.SmsValidationError, match="shortcode='55555' is not one of"):
            OgangiCreateBroadcastOperator(task_id="t", text="Hi", recipients=NUMBERS, shortcode="55555").execute({})
        assert methods_called(frozen) == ["getShortcodes"]

    def test_a_retry_never_creates_a_second_broadcast(self, frozen: str) -> None:
        context = {"task_state_store": DurableStore()}
        operator = OgangiCreateBroadcastOperator(task_id="t", text="Hi", recipients=NUMBERS, campaign_name="Once")
        first = operator.execute(context)
        again = operator.execute(context)
        assert again["broadcast_id"] == first["broadcast_id"]
        assert len(state(frozen)["broadcasts"]) == 1
        assert methods_called(frozen) == ["createBroadcastFromJson", "getBroadcast"]

    def test_an_ambiguous_create_stops_the_retry_with_the_name_to_look_for(self, frozen: str) -> None:
        fault(frozen, path="createBroadcastFromJson", action="http_status", status=502)
        context = {"task_state_store": DurableStore()}
        operator = OgangiCreateBroadcastOperator(task_id="t", text="Hi", recipients=NUMBERS, campaign_name="Promo 7")
        with pytest.raises(exc.SmsAmbiguousError):
            operator.execute(context)
        with pytest.raises(exc.SmsFatalError, match=r"'Promo 7'.*broadcast_id"):
            operator.execute(context)
        assert len(ogangi_requests(frozen)) == 1

    def test_a_definite_failure_lets_the_retry_create(self, frozen: str) -> None:
        context = {"task_state_store": DurableStore()}
        operator = OgangiCreateBroadcastOperator(
            task_id="t", text="Hi", recipients=NUMBERS, shortcode="55555", check_shortcode=False
        )
        with pytest.raises(exc.SmsValidationError, match="Invalid shortcode"):
            operator.execute(context)
        operator.shortcode = "24365"
        assert operator.execute(context)["broadcast_id"] == 1

    def test_edit_a_scheduled_broadcast(self, frozen: str) -> None:
        bid = new_broadcast(scheduled_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
        summary = OgangiCreateBroadcastOperator(
            task_id="t", text="New text", recipients=NUMBERS[:1], broadcast_id=str(bid)
        ).execute({})
        assert (summary["broadcast_id"], summary["edited"], summary["expected_messages"]) == (bid, True, 1)
        assert state(frozen)["broadcasts"][0]["edits"] == 1


# ------------------------------------------------------------------ lifecycle


class TestLifecycle:
    def test_suspend_resume_stop_delete(self, frozen: str) -> None:
        bid = new_broadcast()
        suspend = OgangiSuspendBroadcastOperator(task_id="s", broadcast_id=bid)
        assert suspend.execute({})["changed"] is True
        again = suspend.execute({})
        assert (again["changed"], again["status"]) == (False, "SUSPENDED")
        resumed = OgangiResumeBroadcastOperator(task_id="r", broadcast_id=bid).execute({})
        assert (resumed["changed"], resumed["status"]) == (True, "SCHEDULED")
        stopped = OgangiStopBroadcastOperator(task_id="x", broadcast_id=bid).execute({})
        assert (stopped["changed"], stopped["status"]) == (True, "STOPPED")
        with pytest.raises(exc.SmsConflictError, match="cannot be resumed: it is STOPPED"):
            OgangiResumeBroadcastOperator(task_id="r", broadcast_id=bid).execute({})
        delete = OgangiDeleteBroadcastOperator(task_id="d", broadcast_id=bid)
        assert delete.execute({})["changed"] is True
        assert delete.execute({})["changed"] is False  # already gone: a retry succeeds
        with pytest.raises(exc.SmsNotFoundError):
            OgangiDeleteBroadcastOperator(task_id="d", broadcast_id=bid, missing_ok=False).execute({})

    def test_suspend_leaves_a_finished_broadcast_alone(
        self, frozen: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # A hold that comes after the start (a provider clock ahead of the worker's) must not fail the run.
        caplog.set_level(logging.INFO)  # Airflow >= 3.1 logs through structlog to stdout, 3.0 through logging
        bid = new_broadcast()
        set_clock(frozen, advance=3600)
        result = OgangiSuspendBroadcastOperator(task_id="s", broadcast_id=bid).execute({})
        assert (result["changed"], result["status"], result["sent_messages"]) == (False, "FINISHED", 3)
        logged = caplog.text + capsys.readouterr().out
        assert "already FINISHED (3 of 3 messages sent): nothing left to suspend" in logged
        assert methods_called(frozen) == ["createBroadcastFromJson", "getBroadcast"]  # no suspendBroadcast
        with pytest.raises(exc.SmsConflictError, match="cannot be stopped: it is FINISHED"):
            OgangiStopBroadcastOperator(task_id="x", broadcast_id=bid).execute({})  # stop still says so

    def test_a_lost_answer_then_conflict_is_reconciled(
        self, frozen: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from tests.integration.test_ogangi_hook import use_connection

        use_connection(monkeypatch, frozen, extra={"timeout": 0.2})
        bid = new_broadcast()
        # The first suspend acts but its answer comes too late; the retry is told "already SUSPENDED".
        fault(frozen, path="suspendBroadcast", action="timeout_after", seconds=0.5)
        result = OgangiSuspendBroadcastOperator(task_id="s", broadcast_id=bid).execute({})
        assert (result["changed"], result["status"]) == (False, "SUSPENDED")
        assert state(frozen)["broadcasts"][0]["calls"] == {"suspendBroadcast": 1}
        # Wait for the held answer to be logged, so it cannot land in the next test's log.
        deadline = time.monotonic() + 5
        while methods_called(frozen).count("suspendBroadcast") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert methods_called(frozen).count("suspendBroadcast") == 2  # the lost one and its retry

    def test_unknown_action_is_rejected(self, frozen: str) -> None:
        with pytest.raises(exc.SmsValidationError, match="action='pause'"):
            OgangiBroadcastActionOperator(task_id="a", action="pause", broadcast_id=1).execute({})
        assert ogangi_requests(frozen) == []


# ------------------------------------------------------------------ sensor


class TestSensor:
    @pytest.mark.parametrize(
        "mode", [{"mode": "poke"}, {"mode": "reschedule"}, {"deferrable": True}], ids=["poke", "reschedule", "defer"]
    )
    def test_waits_until_finished(self, airflow_db: None, ogangi_conn: str, sandbox_url: str, mode: dict) -> None:
        set_clock(sandbox_url, speed=0)
        bid = new_broadcast()
        with advance_after_first_poll(sandbox_url, seconds=60):
            run = run_tasks(lambda: OgangiBroadcastSensor(task_id="wait", broadcast_id=str(bid), poke_interval=0.1,
                                                        timeout=60, **mode))
        assert task_state(run, "wait").endswith("success")
        result = xcom(run, "wait")
        assert (result["statusName"], result["sentMessages"], result["expectedMessages"]) == ("FINISHED", 3, 3)
        assert methods_called(sandbox_url).count("getBroadcast") >= 2  # it did wait

    @pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "defer"])
    def test_fails_on_a_stopped_broadcast(self, airflow_db: None, frozen: str, deferrable: bool) -> None:
        bid = new_broadcast()
        hook = OgangiHook()
        hook.suspend_broadcast(bid)  # suspended: the sensor would keep waiting
        hook.stop_broadcast(bid)
        run = run_tasks(lambda: OgangiBroadcastSensor(task_id="wait", broadcast_id=bid, poke_interval=0.2,
                                                    timeout=30, deferrable=deferrable, retries=2))
        assert task_state(run, "wait").endswith("failed")
        assert methods_called(frozen).count("getBroadcast") == 1  # failed without retry

    def test_fails_on_a_deleted_broadcast(self, frozen: str) -> None:
        bid = new_broadcast()
        OgangiHook().delete_broadcast(bid)
        gone = r"broadcast \d+ not found at http://127.0.0.1:\d+: deleted\?"
        with pytest.raises(exc.SmsCampaignFailedError, match=gone):
            OgangiBroadcastSensor(task_id="wait", broadcast_id=bid).poke({})

    def test_a_suspended_broadcast_keeps_it_waiting(self, frozen: str) -> None:
        bid = new_broadcast()
        OgangiHook().suspend_broadcast(bid)
        set_clock(frozen, advance=3600)
        assert OgangiBroadcastSensor(task_id="wait", broadcast_id=bid).poke({}).is_done is False

    def test_wrong_key_fails_the_sensor_at_once(
        self, frozen: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from tests.integration.test_ogangi_hook import use_connection

        use_connection(monkeypatch, frozen, password="WRONG-PRIVATE-KEY-0000")
        with pytest.raises(exc.SmsAuthError):
            OgangiBroadcastSensor(task_id="wait", broadcast_id=1).poke({})
        assert len(ogangi_requests(frozen)) == 1


def test_sandbox_constants_match_the_test_connection(ogangi_conn: str) -> None:
    account = OgangiHook().account
    assert (account.instance_id, account.user, account.public_key) == (
        sb.SANDBOX_OGANGI_INSTANCE_ID, sb.SANDBOX_OGANGI_USER, sb.SANDBOX_OGANGI_PUBLIC_KEY,
    )
