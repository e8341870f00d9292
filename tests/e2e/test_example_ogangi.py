"""The Ogangi example DAG, end to end on Airflow (SQLite) against the sandbox."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from airflow_sms_provider.triggers.ogangi import OgangiBroadcastTrigger
from tests.e2e.deferral import spy_on_trigger
from tests.helpers import load_example, sandbox_requests, sandbox_state, set_clock, task_states, xcom

pytestmark = pytest.mark.e2e

RECIPIENTS = 5  # in the example DAG


@contextmanager
def time_flies_after_resume(url: str) -> Iterator[None]:
    """Hold the simulated clock until the broadcast is resumed, then jump past its start.

    Used by the fault and secret tests that run the Ogangi example. The example schedules
    the broadcast minutes ahead: with the clock frozen it is
    still SCHEDULED when the DAG suspends and resumes it, on any machine, however slow.
    The jump waits for the resume task's own read after its call, so that read is
    deterministic too.
    """
    set_clock(url, speed=0)
    stop = threading.Event()

    def resumed_and_read() -> bool:
        methods = [r["path"].split("/")[4] for r in sandbox_requests(url, "ogangi")]
        return "resumeBroadcast" in methods and "getBroadcast" in methods[methods.index("resumeBroadcast"):]

    def watch() -> None:
        while not stop.wait(0.02):
            if resumed_and_read():
                set_clock(url, advance=15 * 60)
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(timeout=5)


def test_example_broadcast_is_suspended_resumed_and_finishes(
    airflow_db: None, ogangi_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The example schedules the broadcast minutes ahead. The clock stands still until the
    # sensor has deferred (its trigger starts): the broadcast is still SCHEDULED when the
    # DAG suspends and resumes it and when the sensor first looks, on any machine, however
    # slow. Then time jumps past its start and the trigger sees it finish.
    set_clock(sandbox_url, speed=0)
    events = spy_on_trigger(monkeypatch, OgangiBroadcastTrigger, lambda: set_clock(sandbox_url, advance=15 * 60))
    dag = load_example("example_ogangi_broadcast.py", "example_ogangi_broadcast")

    run = dag.test(logical_date=None)  # as a run triggered from the UI, CLI or REST API

    assert str(run.state).endswith("success"), task_states(run)
    assert [e["status"] for e in events] == ["succeeded"]  # the sensor deferred, the trigger ended the wait
    suspended = xcom(run, "suspend_broadcast")
    assert (suspended["changed"], suspended["status"]) == (True, "SUSPENDED")
    resumed = xcom(run, "resume_broadcast")
    assert (resumed["changed"], resumed["status"]) == (True, "SCHEDULED")
    outcome = xcom(run, "report")
    assert outcome["status"] == "FINISHED"
    assert outcome["expected"] == outcome["sent"] == RECIPIENTS
    assert outcome["ended"]

    # The provider's side: one broadcast, suspended and resumed once, texts filled per recipient.
    (broadcast,) = sandbox_state(sandbox_url, "ogangi")["broadcasts"]
    assert broadcast["id"] == outcome["broadcast_id"]
    assert broadcast["name"] == f"example_ogangi_broadcast.create_broadcast.{run.run_id}"
    assert broadcast["calls"] == {"suspendBroadcast": 1, "resumeBroadcast": 1}
    assert broadcast["shortcode"] == "24365"
    # Filled by the operator, no params sent: the document never says the server fills them.
    assert broadcast["recipients"][0] == {"to": "14155550101", "text": "Hi Ana, our spring sale starts today!",
                                          "params": {}}
    methods = [r["path"].split("/")[4] for r in sandbox_requests(sandbox_url, "ogangi")]
    assert methods.count("createBroadcastFromJson") == 1
    assert methods.index("suspendBroadcast") < methods.index("resumeBroadcast")


def test_example_succeeds_when_the_broadcast_finished_before_the_hold(
    airflow_db: None, ogangi_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider clock ahead of the worker's (``--speed 10``) runs the broadcast before the hold.

    The example schedules by the worker's clock; here the provider's time passes the start
    just before the suspend task reads the broadcast, so it is already FINISHED. The run must
    still succeed: suspend and resume find nothing to do, the sensor sees the end.
    """
    from airflow_sms_provider.operators.ogangi import OgangiSuspendBroadcastOperator

    set_clock(sandbox_url, speed=0)
    execute = OgangiSuspendBroadcastOperator.execute

    def late_hold(self: OgangiSuspendBroadcastOperator, context: object) -> object:
        set_clock(sandbox_url, advance=15 * 60)  # the provider's clock runs past the start first
        return execute(self, context)

    monkeypatch.setattr(OgangiSuspendBroadcastOperator, "execute", late_hold)
    dag = load_example("example_ogangi_broadcast.py", "example_ogangi_broadcast")

    run = dag.test(logical_date=None)

    assert str(run.state).endswith("success"), task_states(run)
    for task_id in ("suspend_broadcast", "resume_broadcast"):
        result = xcom(run, task_id)
        assert (result["changed"], result["status"]) == (False, "FINISHED"), (task_id, result)
    outcome = xcom(run, "report")
    assert (outcome["status"], outcome["sent"]) == ("FINISHED", RECIPIENTS)
    (broadcast,) = sandbox_state(sandbox_url, "ogangi")["broadcasts"]
    assert broadcast["calls"] == {}  # no suspend or resume call reached the provider
