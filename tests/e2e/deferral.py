"""Proof that a deferrable sensor really deferred under ``dag.test()``: its trigger ran and fired."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest


def spy_on_trigger(
    monkeypatch: pytest.MonkeyPatch, trigger_cls: type, on_start: Callable[[], None] | None = None
) -> list[dict[str, Any]]:
    """The payloads of the events ``trigger_cls`` fires; ``on_start`` runs when a trigger starts.

    dag.test() runs a deferred task's trigger in-process, as the triggerer would: an event
    here means the sensor's own check found the campaign unfinished and handed the wait over.
    Tests hold the sandbox's clock still until ``on_start`` moves it, so that happens on any
    machine, however slow.
    """
    events: list[dict[str, Any]] = []
    run = trigger_cls.run

    async def spy(self: Any) -> AsyncIterator[Any]:
        if on_start is not None:
            on_start()
        async for event in run(self):
            events.append(event.payload)
            yield event

    monkeypatch.setattr(trigger_cls, "run", spy)
    return events
