"""One vocabulary for campaign statuses: pending, running, done, failed.

Each provider has ONE table from its own campaign statuses to the vocabulary, here;
the neutral sensor, its trigger and the neutral operator all decide with
:func:`describe` and :func:`overall`, so they cannot disagree.

* ``pending``: accepted, not sending now (new, in moderation, scheduled, paused or suspended)
* ``running``: sending, or sent and waiting for delivery reports
* ``done``: finished; the provider will do nothing more
* ``failed``: finished without sending (all of) it: declined, stopped, spam, deleted

A status a table does not know (the provider added one) counts as ``pending``: the
wait goes on, and the provider's own word is kept as ``provider_status``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow_sms_provider.protocols import mobizon as mobizon_proto
from airflow_sms_provider.protocols import ogangi as ogangi_proto

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
STATUSES = (PENDING, RUNNING, DONE, FAILED)
FINAL = frozenset({DONE, FAILED})

# Mobizon campaign/get ``commonStatus``. SENT: every message left, delivery reports still come.
MOBIZON: Mapping[str, str] = {
    "NEW": PENDING,
    "MODERATION": PENDING,
    "READY_FOR_SEND": PENDING,
    "AUTO_READY_FOR_SEND": PENDING,
    "RUNNING": RUNNING,
    "SENT": RUNNING,
    "DONE": DONE,
    "DECLINED": FAILED,
}

# BSG GET /api/campaigns/{id} ``status``.
BSG: Mapping[str, str] = {
    "creation": PENDING,
    "moderation": PENDING,
    "scheduled": PENDING,
    "paused": PENDING,
    "sending": RUNNING,
    "done": DONE,
    "stopped": FAILED,
    "spam": FAILED,
}

# Ogangi getBroadcast status names (protocols.ogangi.BROADCAST_STATUSES).
OGANGI: Mapping[str, str] = {
    "SCHEDULED": PENDING,
    "SUSPENDED": PENDING,
    "RUNNING": RUNNING,
    "FINISHED": DONE,
    "STOPPED": FAILED,
    "DELETED": FAILED,
}

TABLES: Mapping[str, Mapping[str, str]] = {"mobizon": MOBIZON, "bsg": BSG, "ogangi": OGANGI}


def provider_status(provider: str, data: Mapping[str, Any] | None) -> str:
    """The provider's own status word in one read answer (campaign/get, campaigns/{id}, getBroadcast).

    ``None`` is an Ogangi broadcast that no longer exists: ``DELETED``. Ogangi publishes no
    status table, so a broadcast whose ``endDate`` is set or whose expected messages are
    all sent is ``FINISHED`` whatever its code says, the rule of ``OgangiBroadcastSensor``.
    """
    if provider == "ogangi":
        if data is None:
            return ogangi_proto.DELETED
        outcome, _ = ogangi_proto.broadcast_outcome(data)
        if outcome == ogangi_proto.SUCCEEDED:
            return ogangi_proto.FINISHED
        return str(ogangi_proto.status_name(data) or "")
    if data is None:
        return ""
    return str(data.get("commonStatus" if provider == "mobizon" else "status") or "")


def neutral_status(provider: str, native: str) -> str:
    """The vocabulary word for a provider's status (``pending`` when the table does not know it)."""
    return TABLES[provider].get(native, PENDING)


def reached(provider: str, native: str, targets: Iterable[str]) -> bool:
    """Whether a provider status reached or passed one of ``targets``.

    Mobizon's statuses are ordered (:func:`protocols.mobizon.status_reached`, the one place
    that order lives); the other providers' are compared for equality.
    """
    if provider == "mobizon":
        return mobizon_proto.status_reached(native, targets)
    return native in set(targets)


def describe(provider: str, data: Mapping[str, Any] | None) -> dict[str, str]:
    """``{"status": <vocabulary>, "provider_status": <the provider's word>}`` for one read answer."""
    native = provider_status(provider, data)
    return {"status": neutral_status(provider, native), "provider_status": native}


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
    "BSG", "DONE", "FAILED", "FINAL", "MOBIZON", "OGANGI", "PENDING", "RUNNING", "STATUSES", "TABLES",
    "describe", "neutral_status", "overall", "provider_status", "reached",
]
