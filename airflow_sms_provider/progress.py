"""Durable progress of a campaign task, so a retry resumes instead of repeating; progress lines.

On Airflow ≥ 3.3 the values live in the task instance's durable state
(``context["task_state_store"]``, the store behind ResumableJobMixin), which
survives retries and killed workers. Where there is no such store the values
are kept in memory only, and operators fall back to asking the provider.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Checkpoint:
    """A small JSON dict under one key of the task's durable state."""

    def __init__(self, context: Any, key: str) -> None:
        self.key = key
        self._store = None
        try:
            self._store = context.get("task_state_store") if context is not None else None
        except Exception:  # a context without the key on older Airflow
            self._store = None
        self.data: dict[str, Any] = {}
        if self._store is not None:
            try:
                self.data = dict(self._store.get(key) or {})
            except Exception as exc:
                log.warning("task state store unreadable (%s); progress will not survive a crash", exc)
                self._store = None

    @property
    def durable(self) -> bool:
        return self._store is not None

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    def save(self, **values: Any) -> None:
        """Record values now (before the next step that costs money)."""
        self.data.update(values)
        if self._store is not None:
            self._store.set(self.key, self.data)


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressLog:
    """Progress lines for a long upload: done / total, rate and ETA, not one line per portion.

    A line is written when ``interval`` seconds have passed since the last one, or when
    another tenth of a known ``total`` is done, whichever comes first; :meth:`finish`
    writes the last line. ``start`` counts items done by an earlier try (a resumed
    upload): they count towards done/total, not towards the rate.
    """

    def __init__(
        self,
        log: Any,
        what: str = "recipients",
        *,
        total: int | None = None,
        interval: float = 10.0,
        start: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log, self.what, self.total, self.interval, self.clock = log, what, total, interval, clock
        self.start = self.done = start
        self.started = self._last_time = clock()
        self._last_tenth = self._tenth(start)
        self.lines = 0

    def _tenth(self, done: int) -> int:
        return done * 10 // self.total if self.total else 0

    def update(self, done: int, extra: str = "") -> None:
        """Record that ``done`` items are done; log if a line is due."""
        self.done = done
        now = self.clock()
        tenth = self._tenth(done)
        if now - self._last_time >= self.interval or tenth > self._last_tenth:
            self._emit(now, extra)

    def finish(self, extra: str = "") -> None:
        """Log the final line (always)."""
        self._emit(self.clock(), extra)

    def _emit(self, now: float, extra: str) -> None:
        self._last_time, self._last_tenth = now, self._tenth(self.done)
        self.lines += 1
        elapsed = now - self.started
        rate = (self.done - self.start) / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.done:,}"]
        if self.total:
            parts.append(f" of {self.total:,} {self.what} ({100 * self.done / self.total:.0f}%)")
        else:
            parts.append(f" {self.what}")
        parts.append(f" in {_duration(elapsed)}, {rate:,.0f}/s")
        if self.total and rate > 0 and self.done < self.total:
            parts.append(f", ETA {_duration((self.total - self.done) / rate)}")
        if extra:
            parts.append(f"; {extra}")
        self.log.info("Progress: %s", "".join(parts))
