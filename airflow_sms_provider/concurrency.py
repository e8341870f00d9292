"""Small, bounded concurrency helpers for the sync hooks (threads, not asyncio).

Hooks run inside an ordinary operator, so a few threads sharing one keep-alive
``httpx.Client`` are the least intrusive way to overlap network waits:

* :func:`prefetch` prepares the next items (read, normalise, encode) in a worker
  thread while the caller waits for the answer to the previous request; it is at
  most ``depth`` items ahead, so memory stays flat.
* :func:`ordered_map` runs independent calls (status reads, list pages) with at
  most ``concurrency`` in flight and yields their results in input order.
* :class:`Gate` makes every worker pause when one of them is told to slow down.
* :class:`Throttle` bounds calls in flight and halves that bound when the provider
  says "slow down", growing it back as calls succeed (BSG campaign creation).

With ``depth=0`` / ``concurrency=1`` nothing runs in another thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)

_POLL = 0.1  # seconds between checks of the stop flag while a queue is full


class Gate:
    """A pause shared by the workers of one bounded-concurrent job.

    Pass :meth:`pause` as the retry ``sleep`` of :func:`airflow_sms_provider.transport.send`
    and call :meth:`wait` before every request: when one worker gets a rate-limit (or
    server-error) answer, the others hold back their next request for as long as it waits.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._until = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every worker back for ``seconds`` from now (longer pauses win), and wait."""
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)
        self.wait()

    def wait(self) -> None:
        """Return once no pause is in force."""
        while True:
            with self._lock:
                left = self._until - self._clock()
            if left <= 0:
                return
            self._sleep(left)


class ThrottleClosed(Exception):
    """The job using a :class:`Throttle` is ending: a call still waiting for a slot is not sent."""


class Throttle:
    """At most ``limit`` calls in flight; the limit halves on "slow down" and grows back to ``bound``.

    A worker holds a slot for each unit of work (``with throttle.slot(): ...``). Pass
    :meth:`pause` as the transport's retry ``sleep``: the transport sleeps only before
    repeating a call, after a rate-limit answer, a connection that never opened or (reads
    only) a server error or timeout: each a sign to go slower. The worker then gives its slot back,
    every worker holds back for the pause (a shared :class:`Gate`), the limit is halved
    (once per burst: answers to calls that started before the last cut do not cut it
    again), and the worker waits for a slot under the new limit before its retry. Each
    ``limit`` calls that end well in a row raise the limit by one, up to ``bound``.
    """

    def __init__(self, bound: int, gate: Gate | None = None) -> None:
        if bound < 1:
            raise ValueError("bound must be at least 1")
        self.bound = self.limit = bound
        self.gate = gate or Gate()
        self.peak = 0  # most slots held at once, for tests and logs
        self.cuts = 0
        self._cond = threading.Condition()
        self._busy = 0
        self._epoch = 0  # bumped by each cut
        self._streak = 0  # slots ended well since the limit last changed
        self._closed = False
        self._local = threading.local()  # per worker: holding a slot? since which epoch?

    def _acquire(self) -> None:
        self.gate.wait()
        with self._cond:
            while self._busy >= self.limit and not self._closed:
                self._cond.wait()
            if self._closed:
                raise ThrottleClosed("the job is ending; this call was not sent")
            self._busy += 1
            self.peak = max(self.peak, self._busy)
            self._local.epoch, self._local.held = self._epoch, True

    def _release(self, ok: bool) -> None:
        with self._cond:
            self._busy -= 1
            self._local.held = False
            if ok:
                self._streak += 1
                if self.limit < self.bound and self._streak >= self.limit:
                    self.limit, self._streak = self.limit + 1, 0
            self._cond.notify_all()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the block (waits while ``limit`` are taken or a pause is on)."""
        self._acquire()
        ok = False
        try:
            yield
            ok = True
        finally:
            if getattr(self._local, "held", False):  # a pause that ended in ThrottleClosed gave it back
                self._release(ok)

    def pause(self, seconds: float) -> None:
        """The retry ``sleep`` of every call made under this throttle (see the class docstring)."""
        if not getattr(self._local, "held", False):  # not inside a slot (e.g. the caller's thread)
            self.gate.pause(seconds)
            return
        with self._cond:
            if self._local.epoch == self._epoch:
                self.limit, self._epoch, self._streak = max(1, self.limit // 2), self._epoch + 1, 0
                self.cuts += 1
                log.warning("Slowing down: at most %d call(s) in flight for now (pause %.1fs)", self.limit, seconds)
            self._busy -= 1
            self._local.held = False
            self._cond.notify_all()
        self.gate.pause(seconds)
        self._acquire()  # the retry waits for a slot under the new limit

    def close(self) -> None:
        """Wake every waiting worker with :class:`ThrottleClosed` (calls in flight go on)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def ordered_map(
    func: Callable[[T], R], items: Iterable[T], concurrency: int, *, window: int | None = None
) -> Iterator[R]:
    """``map(func, items)`` with at most ``concurrency`` calls in flight, results in input order.

    ``items`` is consumed lazily (only ``window`` ahead, default ``concurrency``), so it may be a
    long generator. A ``window`` above ``concurrency`` keeps every worker busy while the caller is
    busy with a result (finished results wait, up to ``window`` of them). The first exception is
    raised in the caller; calls not yet started are cancelled.
    """
    if concurrency <= 1:
        yield from map(func, items)
        return
    window = max(concurrency, window or concurrency)
    pending: deque[Future[R]] = deque()
    it = iter(items)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sms-io") as pool:
        try:
            for item in it:
                pending.append(pool.submit(func, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def yield_gil(items: Iterable[T], every: int = 32) -> Iterator[T]:
    """Pass ``items`` through, letting other threads run every ``every`` items.

    For the producer side of :func:`prefetch`: it prepares the next requests while the
    caller waits for an answer, and when the answer arrives the caller should get the
    interpreter at once, not after the producer's switch interval (5 ms by default).
    """
    for index, item in enumerate(items, 1):
        if index % every == 0:
            time.sleep(0)  # releases the GIL: a waiting thread takes it now
        yield item


class _End:
    """End-of-stream marker put on a prefetch queue (with the producer's error, if any)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def prefetch(items: Iterable[T], depth: int) -> Generator[T, None, None]:
    """Iterate ``items`` in a worker thread, at most ``depth`` items ahead of the caller.

    Exceptions raised while producing are re-raised in the caller at the position where
    they happened, so what came before is still delivered. Closing the returned
    iterator early stops the worker after the item it is producing.
    """
    if depth <= 0:
        yield from items
        return
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(value: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(value, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    break
            else:
                offer(_End())
        except BaseException as exc:  # delivered to the consumer, which re-raises it
            offer(_End(exc))
        finally:
            close = getattr(items, "close", None)
            if stop.is_set() and close is not None:
                close()  # a generator left half-way: run its finally blocks in its own thread

    worker = threading.Thread(target=produce, name="sms-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            value = ready.get()
            if isinstance(value, _End):
                if value.error is not None:
                    raise value.error
                return
            yield value
    finally:
        stop.set()
        worker.join(timeout=5)


__all__ = ["Gate", "Throttle", "ThrottleClosed", "ordered_map", "prefetch", "yield_gil"]
