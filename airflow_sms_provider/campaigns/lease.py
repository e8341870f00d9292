"""A lease that fences overlapping tries of one task instance.

Airflow may start a second try while the first is still running: a worker presumed dead
(a missed heartbeat) keeps its request in flight while its replacement starts. Both read
the same durable state; without a fence both create and send. Before the work that costs
money (create, fill, send) a try records a lease in the task's durable state: who holds it
(try number, host, pid, a token unique to this execution), when it started, and until when
its current request may still be answered (``deadline``). The holder renews the deadline
before each such request and releases the lease when done.

A try that finds another's lease whose deadline has not passed does not send blindly: it
waits (polling, at most ``max_wait`` seconds) until the holder releases it or lets its
deadline pass without renewing it, then re-reads the durable state and continues through
the operator's existing look-up paths (a campaign id recorded, a tagged campaign found, a
send recorded). If the holder is still renewing after ``max_wait``, :meth:`Lease.acquire`
raises :class:`LeaseBusy` naming it; the operator turns that into an error.

The store is not transactional (no compare-and-set): two tries starting within the same
instant can both see "free". The fence is for what Airflow does — a replacement try
starting while the first one's request is in flight — not for two schedulers racing.
Without durable state (Airflow < 3.3) nothing is shared between tries and nothing is fenced.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from airflow_sms_provider.exceptions import SmsFatalError, SmsProviderError
from airflow_sms_provider.progress import Checkpoint

#: Seconds between two looks at another try's lease while waiting for it.
POLL_INTERVAL = 0.2


class LeaseBusy(Exception):
    """Another try holds the lease and is still renewing it after the bounded wait."""

    def __init__(self, holder: dict[str, Any], waited: float) -> None:
        self.holder = holder
        self.waited = waited
        super().__init__(
            f"{describe(holder)} is still working on this task instance (lease renewed "
            f"{max(0.0, time.time() - float(holder.get('renewed') or 0)):.0f}s ago, waited {waited:.0f}s)"
        )


def describe(holder: dict[str, Any]) -> str:
    """``try 1 (host web-1, pid 4242), started 2026-03-01T09:00:00Z``."""
    started = holder.get("started")
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(started))) if started else "?"
    return f"try {holder.get('try')} (host {holder.get('host')}, pid {holder.get('pid')}), started {when}"


def _try_number(context: Any) -> Any:
    ti = context.get("ti") if context is not None else None
    return getattr(ti, "try_number", None)


def _may_be_alive(record: dict[str, Any]) -> bool:
    """False only when the holder ran on this host and its process no longer runs (or is a zombie).

    A holder on another host cannot be asked: it is taken as alive until its deadline.
    """
    if record.get("host") != socket.gethostname():
        return True
    try:
        pid = int(record.get("pid") or 0)
    except (TypeError, ValueError):
        return True
    if pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")  # killed, not yet reaped by its parent


class Lease:
    """One task instance's lease on ``name`` (its own key in the durable state).

    ``ttl``: how long a request may stay unanswered (the connection's timeout plus its
    retries): the deadline a holder sets before each request. ``max_wait``: how long a
    try waits for a live holder before :class:`LeaseBusy`.
    """

    def __init__(
        self, context: Any, name: str, *, ttl: float, max_wait: float | None = None,
        clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.context, self.key = context, f"{name}_lease"
        self.ttl = float(ttl)
        self.max_wait = float(max_wait) if max_wait is not None else 3 * self.ttl
        self.clock, self.sleep = clock, sleep
        self.token = uuid.uuid4().hex
        self.me = {"try": _try_number(context), "host": socket.gethostname(), "pid": os.getpid(),
                   "token": self.token}
        self.held = False

    @property
    def durable(self) -> bool:
        return Checkpoint(self.context, self.key).durable

    def holder(self) -> dict[str, Any] | None:
        """The live lease of another execution, or None (free, expired, released, or ours)."""
        record = Checkpoint(self.context, self.key).get("holder")
        if not record or record.get("token") == self.token:
            return None
        if float(record.get("deadline") or 0) <= self.clock():
            return None  # its holder let the deadline pass without renewing: presumed dead
        if not _may_be_alive(record):
            return None  # its process on this host is gone (killed): nothing of it is in flight
        return dict(record)

    def acquire(self, log: Any = None) -> bool:
        """Take the lease, first waiting out another try's live one; True if we waited.

        After a wait the caller must re-read its durable state: the other try may have
        created or sent meanwhile.
        """
        waited_since = self.clock()
        waited = False
        other = self.holder()
        while other is not None:
            if not waited and log is not None:
                log.warning("%s holds this task's lease until %.0fs from now: waiting for it before sending "
                            "anything", describe(other), float(other["deadline"]) - self.clock())
            waited = True
            if self.clock() - waited_since >= self.max_wait:
                raise LeaseBusy(other, self.clock() - waited_since)
            self.sleep(POLL_INTERVAL)
            other = self.holder()
        if waited and log is not None:
            log.info("The other try's lease ended after %.1fs: reading the durable state again",
                     self.clock() - waited_since)
        now = self.clock()
        self._write({**self.me, "started": now, "renewed": now, "deadline": now + self.ttl})
        self.held = True
        return waited

    def renew(self, ttl: float | None = None) -> None:
        """Before a request: it may stay unanswered until now + ``ttl`` (default: the lease's)."""
        if not self.held:
            return
        record = Checkpoint(self.context, self.key).get("holder") or {}
        if record.get("token") not in (None, self.token):
            return  # taken over after ours expired: that try reconciles; do not overwrite it
        now = self.clock()
        started = record.get("started", now)
        self._write({**self.me, "started": started, "renewed": now, "deadline": now + (ttl or self.ttl)})

    def release(self) -> None:
        """Done (or failed with nothing in flight): the next try need not wait."""
        if not self.held:
            return
        self.held = False
        ckpt = Checkpoint(self.context, self.key)
        record = ckpt.get("holder") or {}
        if record.get("token") == self.token:
            ckpt.save(holder=None)

    def _write(self, record: dict[str, Any]) -> None:
        Checkpoint(self.context, self.key).save(holder=record)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def request_budget(hook: Any, slack: float = 5.0) -> float:
    """How long one create/send of ``hook`` may stay unanswered: the connection's timeout for
    each of its attempts, plus slack (what the lease's deadline is set to before a request)."""
    settings = getattr(hook, "settings", None)
    http = getattr(settings, "http", None) or getattr(hook, "http", None)
    timeout = float(getattr(http, "timeout", None) or 30.0)
    retry = getattr(settings, "retry", None) or getattr(hook, "retry", None)
    attempts = int(getattr(retry, "max_attempts", None) or 1)
    return timeout * max(1, attempts) + slack


def fence(
    context: Any, name: str, hook: Any, log: Any, *, provider: str, lookup: bool = True, max_wait: float | None = None
) -> tuple[Lease, bool]:
    """Take this task instance's lease on ``name``; returns it and whether another try was waited for.

    Another try still renewing its lease after the bounded wait: a retryable error when a
    later try can look up what that one made (``lookup``), else a fatal one naming it.
    """
    lease = Lease(context, name, ttl=request_budget(hook), max_wait=max_wait)
    try:
        waited = lease.acquire(log)
    except LeaseBusy as busy:
        if lookup:
            raise SmsProviderError(
                f"{busy}; not creating or sending alongside it. A later try finds what it made and resumes",
                provider=provider,
            ) from None
        raise SmsFatalError(
            f"{busy}; not creating or sending alongside it, and {provider} offers no way to look up what it "
            "made. Check the provider's account once it has finished, then clear this task if needed",
            provider=provider,
        ) from None
    return lease, waited


__all__ = ["POLL_INTERVAL", "Lease", "LeaseBusy", "describe", "fence", "request_budget"]
