"""One vocabulary for campaign statuses: pending, running, done, failed.

Each provider's hook carries ONE table from its own campaign statuses to the vocabulary
(``status_vocabulary`` on :class:`~airflow_sms_provider.hooks.base.SmsHook`); the neutral
sensor, its trigger and the neutral operator all decide with :func:`describe` and
:func:`overall` (through :mod:`airflow_sms_provider.campaigns.watch`), so they cannot disagree.

* ``pending``: accepted, not sending now (new, in moderation, scheduled, paused or suspended)
* ``running``: sending, or sent and waiting for delivery reports
* ``done``: finished; the provider will do nothing more
* ``failed``: finished without sending (all of) it: declined, stopped, spam, deleted

A status a table does not know (the provider added one) counts as ``pending``: the
wait goes on, and the provider's own word is kept as ``provider_status``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
STATUSES = (PENDING, RUNNING, DONE, FAILED)
FINAL = frozenset({DONE, FAILED})


def _hook_class(provider: str) -> Any:
    # Imported here: the hooks import this module for the vocabulary.
    from airflow_sms_provider.providers import provider_named

    return provider_named(provider).hook_class()


class _Tables(Mapping[str, Mapping[str, str]]):
    """Every registered provider's table, read from its hook (``TABLES["bsg"]``)."""

    def __getitem__(self, provider: str) -> Mapping[str, str]:
        return _hook_class(provider).status_vocabulary

    def __iter__(self) -> Iterator[str]:
        from airflow_sms_provider.providers import conn_types

        return iter(conn_types())

    def __len__(self) -> int:
        return sum(1 for _ in self)


TABLES: Mapping[str, Mapping[str, str]] = _Tables()


def provider_status(provider: str, data: Mapping[str, Any] | None) -> str:
    """The provider's own status word in one read answer (the hook's ``campaign_word``)."""
    return str(_hook_class(provider).campaign_word(data))


def neutral_status(provider: str, native: str) -> str:
    """The vocabulary word for a provider's status (``pending`` when the table does not know it)."""
    return str(_hook_class(provider).neutral_word(native))


def reached(provider: str, native: str, targets: Iterable[str]) -> bool:
    """Whether a provider status reached or passed one of ``targets`` (Mobizon's are ordered)."""
    return bool(_hook_class(provider).status_reached(native, targets))


def describe(provider: str, data: Mapping[str, Any] | None) -> dict[str, str]:
    """``{"status": <vocabulary>, "provider_status": <the provider's word>}`` for one read answer."""
    return dict(_hook_class(provider).describe_campaign(data))

def overall(campaigns: Mapping[Any, Mapping[str, str]]) -> tuple[str, str]:
    """The status of a set of campaigns and a line saying why.

    ``failed`` as soon as one failed; ``done`` when all are done; else ``running`` when
    one is running, ``pending`` otherwise.
    """
    by_status: dict[str, list[str]] = {}
    for campaign_id, item in campaigns.items():
        by_status.setdefault(item["status"], []).append(f"{campaign_id} ({item.get('provider_status') or '?'})")
    if FAILED in by_status:
        return FAILED, f"campaign(s) failed: {', '.join(by_status[FAILED])}"
    total = len(campaigns)
    done = len(by_status.get(DONE, []))
    if done == total:
        return DONE, f"all {total} campaign(s) done"
    status = RUNNING if RUNNING in by_status else PENDING
    waiting = ", ".join(f"{word}: {', '.join(by_status[word])}" for word in (RUNNING, PENDING) if word in by_status)
    return status, f"{done} of {total} campaign(s) done; {waiting}"


__all__ = [
    "DONE", "FAILED", "FINAL", "PENDING", "RUNNING", "STATUSES", "TABLES", "describe", "neutral_status", "overall",
    "provider_status", "reached",
]
