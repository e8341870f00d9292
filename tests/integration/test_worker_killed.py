"""The worker is really killed (SIGKILL) mid-campaign, and the retry resumes the same campaign.

Each test runs a one-task DAG of tests/worker_kill_dags.py through Airflow's LocalExecutor
(tests/worker_kill.py), parks the task at a chosen request with a sandbox fault, SIGKILLs the
task process there, and lets Airflow fail the try and run the retry in the same DAG run. Then
it checks the provider's side: one campaign (or the same set of campaigns), each recipient in
it exactly once, no second send, and the task's outcome on try 2.

Where the kill lands, by fault: ``delay`` holds a request before the provider acts (the
worker dies with the request unanswered, nothing done); ``timeout_after`` lets the provider
act and holds the answer (the worker dies not knowing it succeeded).

Airflow < 3.1 does not retry a killed task (it fails it): there the harness reruns the same
DAG run, as someone clearing the task would, and the provider-side recovery (tagged
Mobizon campaign names, BSG reference_ids) is what is tested. Ogangi has none, so its tests
need the durable state of Airflow >= 3.3.
"""

from __future__ import annotations

import csv
import functools
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import airflow
import httpx
import pytest
from packaging.version import Version

from tests.helpers import add_faults
from tests.worker_kill import Harness, Run, wait_until
from tests.worker_kill_dags import (
    BSG_CHUNK,
    BSG_PHONES,
    MOBIZON_NUMBERS,
    MOBIZON_PORTIONS,
    OGANGI_NUMBERS,
    REPORT_MESSAGES,
)

# Airflow >= 3.3 keeps the task's progress in its durable state (task_state_store); older
# versions have none, and recovery rests on what the provider can be asked.
DURABLE = Version(airflow.__version__).release >= (3, 3)
# Airflow < 3.1 fails a SIGKILLed task without retrying it (apache/airflow#55753): there the
# harness reruns the same DAG run instead, as someone clearing the failed task would.
RETRIES_KILLED = Version(airflow.__version__).release >= (3, 1)
HOLD = 5.0  # seconds a fault holds a request; the kill comes within a fraction of that
CONNECTIONS = ("AIRFLOW_CONN_MOBIZON_DEFAULT", "AIRFLOW_CONN_BSG_DEFAULT", "AIRFLOW_CONN_OGANGI_DEFAULT")

pytestmark = pytest.mark.usefixtures("airflow_db")


@functools.cache
def _admin() -> httpx.Client:
    return httpx.Client(timeout=15)  # one client for the many polls: a new one per call costs a TLS context


def admin_get(url: str, what: str) -> Any:
    response = _admin().get(f"{url}/_sandbox/{what}")
    response.raise_for_status()
    return response.json()


def calls(url: str, path: str) -> list[dict[str, Any]]:
    """Logged provider requests whose path matches the regex ``path``, any answer (or none)."""
    return [r for r in admin_get(url, "requests")["items"] if re.search(path, r["path"], re.IGNORECASE)]


def fault_hit(url: str) -> bool:
    """Whether the (one) fault rule of the test has caught its request."""
    return admin_get(url, "faults")["faults"][0]["hits"] >= 1


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """One harness process for the module (starting Airflow's execution API costs seconds)."""
    worker = Harness(tmp_path_factory.mktemp("worker-kill"))
    worker.start()
    yield worker
    worker.stop()


def start(harness: Harness, dag_id: str, tmp_path: Path, **extra_env: str) -> Run:
    env = {name: os.environ[name] for name in CONNECTIONS if name in os.environ}
    return harness.submit(dag_id, {**env, **extra_env}, tmp_path, rerun=not RETRIES_KILLED)


def kill_when(run: Run, ready: Callable[[], bool], what: str) -> None:
    """SIGKILL try 1's task process as soon as ``ready()`` (the task is parked where wanted)."""
    wait_until(lambda: ready() or not run.check_alive(), 90, what, interval=0.05)
    assert run.check_alive(), f"the run ended before {what}\n{run.log()}"
    run.kill()


def settle(url: str) -> None:
    """Wait until every held request is over, so nothing the dead worker sent lands after the checks."""
    held = {rule["id"] for rule in admin_get(url, "faults")["faults"] if rule["hits"]}

    def over() -> bool:  # a request is logged when it ends; rule ids are unique across resets
        return held <= {r["fault"] for r in admin_get(url, "requests")["items"]}

    wait_until(over, HOLD + 30, "the held request to end", interval=0.2)


@pytest.fixture(autouse=True)
def _settled(sandbox_url: str) -> Iterator[None]:
    """Also after a failed test: its held request must not end inside the next test."""
    yield
    settle(sandbox_url)


def retried_outcome(run: Run) -> str:
    """The task's state after the killed try and the one after it (try 2 of the same DAG run)."""
    result = run.result()
    processes = run.pids()
    assert len(processes) == 2, f"expected two task processes, one per try: {processes}\n{run.log()}"
    assert processes[0][1] == run.killed[0] and processes[1][1] != run.killed[0]
    final = result["runs"][-1]
    (ti,) = final["task_instances"]
    if RETRIES_KILLED:  # Airflow's own retry
        assert len(result["runs"]) == 1 and [t for t, _ in processes] == [1, 2] and ti["try_number"] == 2
    else:  # the rerun of the same DAG run (same run id, so the same tags)
        assert len(result["runs"]) == 2 and final["run_id"] == result["runs"][0]["run_id"]
    return str(ti["state"])


def duplicates(values: list[Any]) -> list[Any]:
    return [value for value, n in Counter(values).items() if n > 1]


# ------------------------------------------------------------------ Mobizon


def mobizon_campaign(url: str) -> dict[str, Any]:
    campaigns = admin_get(url, "mobizon/state")["campaigns"]
    assert len(campaigns) == 1, f"expected one campaign, found {[c['id'] for c in campaigns]}"
    campaign: dict[str, Any] = campaigns[0]
    numbers = [m["to"] for m in campaign["messages"]]
    assert not duplicates(numbers), f"recipients added twice: {duplicates(numbers)[:5]}"
    assert sorted(numbers) == MOBIZON_NUMBERS
    return campaign


class TestMobizon:
    DAG = "worker_killed_mobizon"

    def test_killed_after_create_the_retry_finds_the_campaign(
        self, harness: Harness, mobizon_conn: str, sandbox_url: str, tmp_path: Path
    ) -> None:
        add_faults(sandbox_url, {"provider": "mobizon", "path": "campaign/create$", "action": "timeout_after",
                                 "seconds": HOLD})  # fmt: skip
        run = start(harness, self.DAG, tmp_path)
        kill_when(run, lambda: bool(admin_get(sandbox_url, "mobizon/state")["campaigns"]),
                  "campaign/create to have created the campaign")  # fmt: skip
        assert retried_outcome(run) == "success"
        settle(sandbox_url)
        campaign = mobizon_campaign(sandbox_url)
        assert campaign["sendCalls"] == 1 and campaign["status"] != "NEW"
        assert len(calls(sandbox_url, "campaign/create$")) == 1  # the retry looked it up instead
        assert campaign["addRecipientsCalls"] == MOBIZON_PORTIONS

    def test_killed_between_portions_the_retry_uploads_the_rest(
        self, harness: Harness, mobizon_conn: str, sandbox_url: str, tmp_path: Path
    ) -> None:
        # Portions 1-3 answered, portion 4 held before Mobizon reads it: the worker dies mid-upload.
        add_faults(sandbox_url, {"provider": "mobizon", "path": "campaign/addRecipients$", "skip": 3,
                                 "action": "delay", "seconds": HOLD})  # fmt: skip
        run = start(harness, self.DAG, tmp_path)
        kill_when(run, lambda: fault_hit(sandbox_url), "the 4th addRecipients portion")
        assert retried_outcome(run) == "success"
        settle(sandbox_url)
        campaign = mobizon_campaign(sandbox_url)
        assert campaign["sendCalls"] == 1 and campaign["status"] != "NEW"
        assert len(calls(sandbox_url, "campaign/create$")) == 1
        # With durable state the retry resumes after the 3 recorded portions; without it, it finds the
        # campaign by its tag, reads back which numbers it holds (message/list) and uploads the rest.
        # The held portion is not counted: the dead worker's request may still be read once the hold ends
        # (on a loaded machine the server can notice the closed connection late, as a real one may), and
        # then it adds no number twice (mobizon_campaign) or is refused, the campaign being sent.
        uploads = [c for c in calls(sandbox_url, "campaign/addRecipients$") if c["fault"] is None]
        assert len(uploads) == 3 + 3, uploads
        assert campaign["addRecipientsCalls"] - len(uploads) <= 1  # the held one, if it was read at all

    def test_killed_right_after_send_the_retry_does_not_send_again(
        self, harness: Harness, mobizon_conn: str, sandbox_url: str, tmp_path: Path
    ) -> None:
        add_faults(sandbox_url, {"provider": "mobizon", "path": "campaign/send$", "action": "timeout_after",
                                 "seconds": HOLD})  # fmt: skip
        run = start(harness, self.DAG, tmp_path)

        def sent() -> bool:
            campaigns = admin_get(sandbox_url, "mobizon/state")["campaigns"]
            return bool(campaigns) and campaigns[0]["sendCalls"] >= 1

        kill_when(run, sent, "campaign/send to have sent the campaign")
        assert retried_outcome(run) == "success"
        settle(sandbox_url)
        campaign = mobizon_campaign(sandbox_url)
        assert campaign["sendCalls"] == 1 and campaign["status"] != "NEW"
        assert len(calls(sandbox_url, "campaign/send$")) == 1
        assert campaign["addRecipientsCalls"] == MOBIZON_PORTIONS  # nothing uploaded again


# ------------------------------------------------------------------ BSG


def bsg_campaigns(url: str) -> list[dict[str, Any]]:
    campaigns: list[dict[str, Any]] = admin_get(url, "bsg/state")["campaigns"]
    phones = [str(m["phone"]) for c in campaigns for m in c["messages"]]
    assert not duplicates(phones), f"phones sent twice: {duplicates(phones)[:5]}"
    assert sorted(phones) == BSG_PHONES
    assert len(campaigns) == len(BSG_PHONES) // BSG_CHUNK, f"campaigns: {[c['id'] for c in campaigns]}"
    return campaigns


class TestBsg:
    def test_killed_between_chunk_creations_the_retry_creates_the_rest(
        self, harness: Harness, bsg_conn: str, sandbox_url: str, tmp_path: Path
    ) -> None:
        # One campaign at a time: chunk 1 created, chunk 2 held before BSG reads it.
        add_faults(sandbox_url, {"provider": "bsg", "path": "campaigns/sms/send$", "skip": 1, "action": "delay",
                                 "seconds": HOLD})  # fmt: skip
        run = start(harness, "worker_killed_bsg_sequential", tmp_path)
        kill_when(run, lambda: fault_hit(sandbox_url), "the 2nd campaign creation")
        assert retried_outcome(run) == "success"
        settle(sandbox_url)
        bsg_campaigns(sandbox_url)
        # Try 1: chunk 1, chunk 2 (held, never read). The retry skips the recorded chunk 1; without
        # durable state Airflow's try 2 (3.1+) looks the audience's reference_ids up first and finds
        # chunk 1's campaign; 3.0's rerun is a try 1 again, which sends chunk 1 again and BSG refuses
        # its reference_ids (429), which it reads as "exists".
        assert len(calls(sandbox_url, "campaigns/sms/send$")) == (2 + 2 if DURABLE or RETRIES_KILLED else 2 + 3)

    def test_killed_with_a_creation_unanswered_the_retry_finds_it(
        self, harness: Harness, bsg_conn: str, sandbox_url: str, tmp_path: Path
    ) -> None:
        # Three creations at once; BSG creates all three, one answer is held: the worker dies
        # not knowing that campaign exists. The retry must find it by reference_id.
        add_faults(sandbox_url, {"provider": "bsg", "path": "campaigns/sms/send$", "skip": 1,
                                 "action": "timeout_after", "seconds": HOLD})  # fmt: skip
        run = start(harness, "worker_killed_bsg_concurrent", tmp_path)
        expected = len(BSG_PHONES) // BSG_CHUNK
        kill_when(run, lambda: len(admin_get(sandbox_url, "bsg/state")["campaigns"]) == expected,
                  "BSG to have created every campaign")  # fmt: skip
        assert retried_outcome(run) == "success"
        settle(sandbox_url)
        bsg_campaigns(sandbox_url)
        # The retry sends nothing. With durable state two chunks are recorded, the third is pending
        # and found by its reference_id; without, Airflow's try 2 (3.1+) looks the audience's
        # reference_ids up before creating and finds all three; 3.0's rerun is a try 1 again, which
        # sends all three again, each refused (429).
        assert len(calls(sandbox_url, "campaigns/sms/send$")) == (3 if DURABLE or RETRIES_KILLED else 3 + 3)


# ------------------------------------------------------------------ Ogangi


@pytest.mark.skipif(
    not DURABLE,
    reason="Ogangi has no way to look a broadcast or an upload up, so recovery needs the task's durable "
    "state (Airflow >= 3.3); on older versions a killed try's retry cannot know what was sent",
)
class TestOgangi:
    def test_killed_after_broadcast_create_the_retry_refuses_a_second(
        self, harness: Harness, ogangi_conn: str, sandbox_url: str, tmp_path: Path
    ) -> None:
        add_faults(sandbox_url, {"provider": "ogangi", "path": "createBroadcastFromJson", "action": "timeout_after",
                                 "seconds": HOLD})  # fmt: skip
        run = start(harness, "worker_killed_ogangi_broadcast", tmp_path)
        kill_when(run, lambda: bool(admin_get(sandbox_url, "ogangi/state")["broadcasts"]),
                  "createBroadcastFromJson to have created the broadcast")  # fmt: skip
        # The API cannot look a broadcast up: the retry stops, naming the broadcast to look for.
        assert retried_outcome(run) == "failed"
        assert "started creating broadcast 'Worker killed'" in run.log()
        settle(sandbox_url)
        (broadcast,) = admin_get(sandbox_url, "ogangi/state")["broadcasts"]
        numbers = [r["to"] for r in broadcast["recipients"]]
        assert not duplicates(numbers) and sorted(numbers) == sorted(OGANGI_NUMBERS)
        assert len(calls(sandbox_url, "/createBroadcastFromJson(/|$)")) == 1

    def test_killed_after_send_by_file_the_retry_does_not_send_again(
        self, harness: Harness, ogangi_conn: str, sandbox_url: str, tmp_path: Path
    ) -> None:
        add_faults(sandbox_url, {"provider": "ogangi", "path": "sendSMSByFile", "action": "timeout_after",
                                 "seconds": HOLD})  # fmt: skip
        run = start(harness, "worker_killed_ogangi_file", tmp_path)
        kill_when(run, lambda: bool(admin_get(sandbox_url, "ogangi/state")["messages"]),
                  "sendSMSByFile to have sent the messages")  # fmt: skip
        assert retried_outcome(run) == "failed"
        assert "the SMS may have been sent" in run.log()
        settle(sandbox_url)
        messages = admin_get(sandbox_url, "ogangi/state")["messages"]
        numbers = [str(m.get("to") or m.get("number")) for m in messages]
        assert not duplicates(numbers) and len(numbers) == len(OGANGI_NUMBERS)
        assert len(calls(sandbox_url, "/sendSMSByFile(/|$)")) == 1


# ------------------------------------------------------------------ delivery report


class TestDeliveryReport:
    DAG = "worker_killed_report"

    def test_killed_mid_export_the_retry_leaves_one_complete_file(
        self, harness: Harness, mobizon_conn: str, sandbox_url: str, tmp_path: Path
    ) -> None:
        from airflow_sms_provider.hooks.mobizon import MobizonHook

        hook = MobizonHook()
        campaign_id = hook.create_campaign("Report me")
        hook.add_recipients_in_portions(campaign_id, [f"7702{i:07d}" for i in range(1, REPORT_MESSAGES + 1)])
        hook.send_campaign(campaign_id)
        out = tmp_path / "reports"
        target = out / "report.csv"
        # Pages 1-4 answered and written (batches of 100), page 5 held: the worker dies mid-export.
        add_faults(sandbox_url, {"provider": "mobizon", "path": "message/list$", "skip": 4, "action": "delay",
                                 "seconds": HOLD})  # fmt: skip
        run = start(harness, self.DAG, tmp_path, REPORT_CAMPAIGN_IDS=str(campaign_id), REPORT_DESTINATION=str(target))
        kill_when(run, lambda: fault_hit(sandbox_url), "the 5th message/list page")
        (partial,) = [p for p in out.iterdir() if p.name.endswith(".partial")]
        # Rows of the pages before the kill (less what the dead process had not flushed), not committed.
        assert partial.read_text().count("\n") >= 100
        assert not target.exists()  # never a half report under the target's name
        assert retried_outcome(run) == "success"
        settle(sandbox_url)
        with target.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        ids = [row["message_id"] for row in rows]
        assert len(ids) == REPORT_MESSAGES and not duplicates(ids)
        assert {row["campaign_id"] for row in rows} == {str(campaign_id)}
        assert [p.name for p in out.iterdir() if p.name.endswith(".partial")] == []
