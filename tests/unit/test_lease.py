"""campaigns/lease.py: a fence between overlapping tries, over a shared durable store."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.campaigns.lease import Lease, LeaseBusy, fence
from tests.helpers import DurableStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def context(store: DurableStore | None, try_number: int) -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="d", task_id="t", run_id="r", map_index=-1, try_number=try_number)
    return {"ti": ti, **({"task_state_store": store} if store is not None else {})}


def lease(store: DurableStore | None, try_number: int, clock: Clock, **kw: Any) -> Lease:
    return Lease(context(store, try_number), "job", ttl=10, clock=clock, sleep=clock.sleep, **kw)


def test_a_free_lease_is_taken_at_once_and_released() -> None:
    store, clock = DurableStore(), Clock()
    first = lease(store, 1, clock)
    assert first.acquire() is False
    holder = store.values["job_lease"]["holder"]
    assert holder["try"] == 1 and holder["deadline"] == clock.now + 10
    first.release()
    assert store.values["job_lease"]["holder"] is None


def test_a_second_try_waits_until_the_first_releases() -> None:
    store, clock = DurableStore(), Clock()
    first, second = lease(store, 1, clock), lease(store, 2, clock)
    first.acquire()
    real_sleep = clock.sleep

    def sleep(seconds: float) -> None:  # the first try finishes 3 s into the wait
        real_sleep(seconds)
        if clock.now >= 1_000_003.0 and first.held:
            first.release()

    second.sleep = sleep
    assert second.acquire() is True
    assert 3.0 <= clock.now - 1_000_000.0 < 3.5
    assert store.values["job_lease"]["holder"]["try"] == 2


def test_a_lease_not_renewed_past_its_deadline_is_taken_over() -> None:
    store, clock = DurableStore(), Clock()
    lease(store, 1, clock).acquire()  # then the worker dies: no renewal, no release
    second = lease(store, 2, clock)
    assert second.acquire() is True
    assert 10.0 <= clock.now - 1_000_000.0 < 10.5


def test_a_holder_still_renewing_after_the_bounded_wait_is_named() -> None:
    store, clock = DurableStore(), Clock()
    first, second = lease(store, 1, clock), lease(store, 2, clock, max_wait=30)
    first.acquire()
    real_sleep = clock.sleep

    def sleep(seconds: float) -> None:
        real_sleep(seconds)
        first.renew()  # alive and working

    second.sleep = sleep
    with pytest.raises(LeaseBusy, match=r"try 1 \(host .*, pid \d+\), started .* is still working"):
        second.acquire()


def test_renew_does_not_overwrite_a_try_that_took_over() -> None:
    store, clock = DurableStore(), Clock()
    first = lease(store, 1, clock)
    first.acquire()
    clock.now += 11
    second = lease(store, 2, clock)
    second.acquire()
    first.renew()
    first.release()
    assert store.values["job_lease"]["holder"]["try"] == 2


def test_without_durable_state_nothing_is_fenced() -> None:
    clock = Clock()
    lease(None, 1, clock).acquire()
    assert lease(None, 2, clock).acquire() is False


def test_fence_fails_without_retry_where_nothing_can_be_looked_up() -> None:
    store = DurableStore()
    hook = SimpleNamespace(settings=SimpleNamespace(http=SimpleNamespace(timeout=5),
                                                    retry=SimpleNamespace(max_attempts=1)))
    fence(context(store, 1), "job", hook, None, provider="ogangi", lookup=False)
    with pytest.raises(exc.SmsFatalError, match=r"try 1 .* no way to look up"):
        fence(context(store, 2), "job", hook, None, provider="ogangi", lookup=False, max_wait=0.3)
    with pytest.raises(exc.SmsProviderError, match="A later try finds what it made") as err:
        fence(context(store, 2), "job", hook, None, provider="mobizon", max_wait=0.3)
    assert not isinstance(err.value, exc.SmsFatalError)


def test_a_holder_whose_process_is_gone_is_not_waited_for() -> None:
    import subprocess
    import sys

    store, clock = DurableStore(), Clock()
    first = lease(store, 1, clock)
    first.acquire()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store.values["job_lease"]["holder"]["pid"] = gone.pid  # the first try's process, killed
    assert lease(store, 2, clock).acquire() is False
