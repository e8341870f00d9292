"""Ogangi create and send paths when the world is hostile (issue 11): a retry in a new process without durable
state, a reordered audience, the first try after a clear. Ogangi cannot read a broadcast or an upload back,
so what cannot be known stops without retry, naming what may exist.

Loopback HTTP to the sandbox; the kill is the chaos harness's (tests/chaos/harness.py).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_sms_provider.exceptions import SmsFatalError
from tests.helpers import DurableStore, sandbox_state, set_clock

NUMBERS = ["14155500101", "14155500102", "14155500103"]


def _schedule(kind: str, kill_at: int, *, durable: bool = False, form: str = "list") -> Any:
    from tests.chaos.harness import Schedule

    return Schedule(seed=0, kind=kind, size=5, form=form, duplicates=0, durable=durable, retry_attempts=1,
                    faults=[], kill_at=kill_at, kill_after=True, overlap=False)  # fmt: skip


# The create/send request is the N-th provider request: og_file and the neutral operator read the
# short codes first (a sender is given), the broadcast operator without a short code does not.
@pytest.mark.parametrize(("kind", "kill_at"), [("og_file", 2), ("og_broadcast", 1), ("neutral_ogangi", 2)])
def test_ogangi_worker_killed_after_the_create_without_durable_state_is_not_sent_again(
    kind: str, kill_at: int, sandbox: Any, tmp_path: Path
) -> None:
    """The worker dies after Ogangi carried out the upload / the create, with no durable state (Airflow < 3.3).
    Try 2 knew nothing of try 1 and sent every SMS again (a second broadcast). Now a retry without durable
    state stops without retry before sending, saying what may exist."""
    from tests.chaos.harness import run_guarded

    result = run_guarded(sandbox.url, _schedule(kind, kill_at), tmp_path)
    assert result.killed and result.outcome == "fatal", result.line()
    assert result.survived, result.line()
    assert "without durable task state" in result.error


@pytest.mark.parametrize("kind", ["og_file", "og_broadcast"])
def test_ogangi_worker_killed_with_durable_state_and_a_reordered_audience_is_not_sent_again(
    kind: str, sandbox: Any, tmp_path: Path
) -> None:
    """With durable state the same kill stops the retry naming what may exist (reordered audience included)."""
    from tests.chaos.harness import run_guarded

    result = run_guarded(sandbox.url, _schedule(kind, 2 if kind == "og_file" else 1, durable=True, form="shuffled"),
                         tmp_path)  # fmt: skip
    assert result.killed and result.outcome == "fatal" and result.survived, result.line()


def _ti(try_number: int, max_tries: int, retries: int) -> SimpleNamespace:
    return SimpleNamespace(dag_id="dag", task_id="send", run_id="manual__og", map_index=-1, try_number=try_number,
                           max_tries=max_tries, task=SimpleNamespace(retries=retries), xcom_push=lambda **kw: None)


def test_ogangi_first_try_after_a_clear_without_durable_state_creates_the_broadcast(
    ogangi_conn: str, sandbox_url: str
) -> None:
    """Airflow raises max_tries on a clear (last try + retries): try 3 after a clear of a task with one retry
    is the cycle's first try and creates; try 2 of the first cycle is a retry and stops."""
    from airflow_sms_provider.operators.ogangi import OgangiCreateBroadcastOperator

    set_clock(sandbox_url, speed=0)

    def op() -> OgangiCreateBroadcastOperator:
        return OgangiCreateBroadcastOperator(task_id="send", text="Hello", recipients=NUMBERS, campaign_name="Clr")

    with pytest.raises(SmsFatalError, match=r"try 2 of this task .*broadcast 'Clr' .*may exist"):
        op().execute({"ti": _ti(2, 1, 1)})
    assert sandbox_state(sandbox_url, "ogangi")["broadcasts"] == []
    op().execute({"ti": _ti(3, 3, 1)})  # cleared after try 2: max_tries = 2 + 1
    assert len(sandbox_state(sandbox_url, "ogangi")["broadcasts"]) == 1


def test_ogangi_send_by_file_retry_with_durable_state_and_a_reordered_audience_reuses_the_summary(
    ogangi_conn: str, sandbox_url: str
) -> None:
    """Durable state, the audience read back in another order on a retry: the earlier summary, nothing sent."""
    from airflow_sms_provider.operators.ogangi import OgangiSendSmsByFileOperator

    store = DurableStore()
    first = OgangiSendSmsByFileOperator(task_id="send", recipients=NUMBERS, text="Hi", sender="24365").execute(
        {"ti": _ti(1, 1, 1), "task_state_store": store})
    again = OgangiSendSmsByFileOperator(task_id="send", recipients=NUMBERS[::-1], text="Hi", sender="24365").execute(
        {"ti": _ti(2, 1, 1), "task_state_store": store})
    assert again == first and len(sandbox_state(sandbox_url, "ogangi")["messages"]) == len(NUMBERS)
