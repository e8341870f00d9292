"""Delivery events, the receiving half: a DAG scheduled on the asset the receiver updates.

Runs once per asset event: when a campaign's delivery reports have paused (``quiet_seconds``) the
receiver records one event on ``sms://<provider>/<conn_id>`` whose extra has the counts of final
statuses and the campaign ids (docs/events.md, "Asset URIs and the event's extra"). A report that
arrives after that event makes a follow-up event with ``update: true`` and the full counts.

Pair: ``example_delivery_events_sender``.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, task
from airflow.sdk import Asset

MOBIZON_EVENTS = Asset("sms://mobizon/mobizon_default")
BSG_EVENTS = Asset("sms://bsg/bsg_default")
DELIVERED_WORDS = ("DELIVRD", "delivered", "read")  # Mobizon's and BSG's words for a delivered message


def summarize_events(events: Any) -> list[dict[str, Any]]:
    """One line per asset event: where it came from, which campaigns, the counts, whether it corrects an earlier one."""
    lines = []
    for asset_events in (events or {}).values():
        for event in asset_events:
            extra = event.extra or {}
            lines.append({
                "source": extra.get("source"), "campaign_ids": extra.get("campaign_ids"),
                "group": extra.get("group"), "counts": extra.get("counts"), "messages": extra.get("messages"),
                "update": bool(extra.get("update")),
            })  # fmt: skip
    return lines


with DAG(
    dag_id="example_delivery_events_consumer",
    schedule=(MOBIZON_EVENTS | BSG_EVENTS),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "sms", "events"],
) as dag:

    @task
    def report(*, triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """Print each campaign's outcome; a real DAG would load it into a table or alert on a low ratio."""
        lines = summarize_events(triggering_asset_events)
        for line in lines:
            counts = line["counts"] or {}
            delivered = sum(n for status, n in counts.items() if status in DELIVERED_WORDS)
            print(f"{line['source']} {line['campaign_ids'] or line['group']}: {delivered} of {line['messages']} "
                  f"delivered {line['counts']}{' (update)' if line['update'] else ''}")  # fmt: skip
        return lines

    report()
