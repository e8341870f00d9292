"""Everything the sandbox remembers: clock, request log, fault rules, per-provider state.

Provider modules register themselves (:meth:`SandboxState.register`) with the path
prefixes they serve and a factory for their state, so :meth:`SandboxState.reset`
can rebuild every provider without knowing any of them.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_sms_provider.sandbox.clock import SimClock
from airflow_sms_provider.sandbox.faults import FaultBook

MASK = "***"
# Query parameters whose values are credentials (compared case-insensitively).
SECRET_QUERY_KEYS = frozenset({"apikey", "api_key", "key", "token", "access_token", "password", "secret"})

FRAMEWORK_DEFAULTS: dict[str, Any] = {
    "clock_speed": 1.0,  # simulated seconds per real second
    "log_limit": 10_000,  # request log entries kept (oldest dropped first)
    "latency_ms": 0.0,  # simulated round trip before each provider request (sandbox/latency.py)
    "connect_latency_ms": 0.0,  # and before the first request of each new connection (handshakes)
}
_NON_NEGATIVE = ("latency_ms", "connect_latency_ms")


@dataclass(frozen=True)
class ProviderSpec:
    """How the framework knows a provider emulation."""

    name: str
    prefixes: tuple[str, ...]
    factory: Callable[[SandboxState], Any]


_SECRET_IN_URL = re.compile(r"(?i)([?&](?:" + "|".join(sorted(SECRET_QUERY_KEYS)) + r")=)[^&#\s]*")


def redact_url(url: str) -> str:
    """``url`` with credential query values replaced by ``***``."""
    return _SECRET_IN_URL.sub(rf"\1{MASK}", url)


def mask_query(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Query parameters for the log, credential values replaced by ``***``."""
    return {key: MASK if key.lower() in SECRET_QUERY_KEYS else value for key, value in pairs}


class SandboxState:
    """The sandbox's in-memory state; one per server."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = {**FRAMEWORK_DEFAULTS, **(config or {})}
        self._initial_config = dict(self.config)
        self.known_config_keys: set[str] = set(FRAMEWORK_DEFAULTS)
        self._config_owner: dict[str, str] = {}  # config key -> provider that declared it
        self.clock = SimClock(self.config["clock_speed"])
        self.faults = FaultBook()
        self.providers: dict[str, Any] = {}
        self._specs: dict[str, ProviderSpec] = {}
        self._log_lock = threading.Lock()
        self._log: deque[dict[str, Any]] = deque(maxlen=int(self.config["log_limit"]))
        self._seq = 0
        self._epoch = 0
        self._in_flight = 0

    # ------------------------------------------------------------ providers

    def register(
        self,
        name: str,
        prefixes: Iterable[str],
        factory: Callable[[SandboxState], Any],
        defaults: Mapping[str, Any] | None = None,
    ) -> Any:
        """Add a provider emulation (its config defaults under any explicit values); returns its state."""
        for key in defaults or {}:
            owner = self._config_owner.setdefault(key, name)
            if owner != name or key in FRAMEWORK_DEFAULTS:
                raise ValueError(f"config key {key!r} of {name!r} is already used by {owner!r}")
        for key, value in (defaults or {}).items():
            self.config.setdefault(key, value)
            self._initial_config.setdefault(key, value)
        self.known_config_keys.update(defaults or {})
        self._specs[name] = ProviderSpec(name, tuple(prefixes), factory)
        if name not in self.providers:
            self.providers[name] = factory(self)
        return self.providers[name]

    @property
    def provider_names(self) -> set[str]:
        return set(self._specs)

    def provider_for(self, path: str) -> str | None:
        """The provider whose API ``path`` belongs to (longest prefix wins)."""
        best: tuple[int, str | None] = (0, None)
        for spec in self._specs.values():
            for prefix in spec.prefixes:
                if path.startswith(prefix) and len(prefix) > best[0]:
                    best = (len(prefix), spec.name)
        return best[1]

    # ------------------------------------------------------------ config

    def set_defaults(self, config: Mapping[str, Any]) -> None:
        """Make ``config`` values the ones in force now and after every reset."""
        self.configure(config)
        self._initial_config.update(config)
        if "clock_speed" in config:
            self.clock.set_default_speed(config["clock_speed"])

    def configure(self, changes: Mapping[str, Any]) -> None:
        """Change config values at run time (known keys only)."""
        unknown = set(changes) - self.known_config_keys
        if unknown:
            raise KeyError(f"unknown sandbox config keys: {sorted(unknown)}")
        for key in _NON_NEGATIVE:
            value = changes.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{key!r} must be a number >= 0")
        if "clock_speed" in changes:
            self.clock.set_speed(changes["clock_speed"])
        if "log_limit" in changes:
            with self._log_lock:
                self._log = deque(self._log, maxlen=max(1, int(changes["log_limit"])))
        self.config.update(changes)

    # ------------------------------------------------------------ request log

    def arrived(self) -> int:
        """Count one provider request as in flight; the reset epoch it started in."""
        with self._log_lock:
            self._in_flight += 1
            return self._epoch

    @property
    def in_flight(self) -> int:
        """Provider requests arrived and not yet logged (an answer held by a fault is logged when it goes out)."""
        with self._log_lock:
            return self._in_flight

    @property
    def epoch(self) -> int:
        """How many resets so far; a request remembers the one it started in."""
        return self._epoch

    def record(self, entry: dict[str, Any], epoch: int | None = None) -> None:
        """Append one request to the log, numbering it.

        A request that started before the last reset (an answer held past a client's timeout) belongs to the
        forgotten past: logging it afterwards would put a stranger at the head of the new log.
        """
        with self._log_lock:
            if epoch is not None:
                self._in_flight = max(0, self._in_flight - 1)
                if epoch != self._epoch:
                    return
            self._seq += 1
            self._log.append({"seq": self._seq, **entry})

    def requests(self, provider: str | None = None) -> list[dict[str, Any]]:
        """The logged requests, oldest first, optionally of one provider."""
        with self._log_lock:
            items = list(self._log)
        return [item for item in items if provider is None or item.get("provider") == provider]

    # ------------------------------------------------------------ reset

    def reset(self) -> None:
        """Forget everything: provider state, faults, log; config and clock back to their defaults."""
        self.config.clear()
        self.config.update(self._initial_config)
        self.clock.reset()
        self.faults.clear()
        with self._log_lock:
            self._log.clear()
            self._seq = 0
            self._epoch += 1
        for spec in self._specs.values():
            self.providers[spec.name] = spec.factory(self)

    def now(self) -> datetime:
        """The simulated time."""
        return self.clock.now()


def utc_now() -> datetime:
    """Real time, for log timestamps."""
    return datetime.now(timezone.utc)
