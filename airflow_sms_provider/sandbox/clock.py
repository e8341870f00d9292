"""The sandbox's simulated clock: campaign progress, deferred sends and tasks follow it.

``now() = real start time + elapsed real seconds * speed + manual offset``. Speed 0
freezes time (tests move it with :meth:`SimClock.advance`); speed 60 turns a real
minute into a simulated hour (the demo).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any


class SimClock:
    """A thread-safe simulated UTC clock."""

    def __init__(self, speed: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._default_speed = _check_speed(speed)
        self._restart(self._default_speed)

    def _restart(self, speed: float) -> None:
        self._start = datetime.now(timezone.utc)
        self._real_start = time.monotonic()
        self._sim_elapsed = 0.0  # simulated seconds accumulated before the last speed change
        self._speed = speed
        self._offset = 0.0

    def _elapsed(self) -> float:
        # Caller holds the lock.
        return self._sim_elapsed + (time.monotonic() - self._real_start) * self._speed

    def now(self) -> datetime:
        """The simulated time, timezone-aware UTC."""
        with self._lock:
            return self._start + timedelta(seconds=self._elapsed() + self._offset)

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        with self._lock:
            return self._speed

    def advance(self, seconds: float) -> datetime:
        """Jump ``seconds`` (>= 0) ahead; returns the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += float(seconds)
        return self.now()

    def advance_to(self, when: datetime) -> datetime:
        """Jump to ``when`` (timezone-aware, not before now): a fixed instant makes runs comparable."""
        if when.tzinfo is None:
            raise ValueError("give the instant with its offset, e.g. 2030-01-01T00:00:00+00:00")
        with self._lock:
            gap = (when - (self._start + timedelta(seconds=self._elapsed() + self._offset))).total_seconds()
            if gap < 0:
                raise ValueError("the clock only moves forward")
            self._offset += gap
        return self.now()

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on, without a jump in time."""
        speed = _check_speed(speed)
        with self._lock:
            # Fold what has elapsed at the old speed into the base so now() stays continuous.
            self._sim_elapsed = self._elapsed()
            self._real_start = time.monotonic()
            self._speed = speed

    def set_default_speed(self, speed: float) -> None:
        """The speed :meth:`reset` returns to; also applied now."""
        self._default_speed = _check_speed(speed)
        self.set_speed(speed)

    def reset(self) -> None:
        """Back to real time at the default speed."""
        with self._lock:
            self._restart(self._default_speed)

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /_sandbox/clock`` answers."""
        with self._lock:
            now = self._start + timedelta(seconds=self._elapsed() + self._offset)
            return {"now": now.isoformat(), "speed": self._speed, "offset": self._offset}


def _check_speed(speed: float) -> float:
    speed = float(speed)
    if speed < 0:
        raise ValueError("clock speed must be >= 0")
    return speed
