"""Durable progress of a campaign task, so a retry resumes instead of repeating.

On Airflow ≥ 3.3 the values live in the task instance's durable state
(``context["task_state_store"]``, the store behind ResumableJobMixin), which
survives retries and killed workers. Where there is no such store the values
are kept in memory only, and operators fall back to asking the provider.
"""

from __future__ import annotations

import logging
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
