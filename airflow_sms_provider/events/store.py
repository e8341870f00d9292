"""Durable record of received webhook events: one SQLite file, deduplicated by event id.

Why SQLite and not Airflow's metadata database or Variables: a table in the metadata database
needs a migration Airflow's upgrade path does not run for providers, and Variables have no
"insert if absent", so two API-server workers could both count a retried event. SQLite gives
an atomic ``INSERT OR IGNORE`` on the primary key (the dedup), survives restarts (events not
yet turned into asset events are picked up again) and costs one file. Several API-server
workers on one host share it safely; several hosts need one shared store (see docs/events.md).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow_sms_provider.events.payload import DeliveryReport, WebhookEvent

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sms_events (
    source TEXT NOT NULL,            -- who sent it: "mobizon/<connection id>"
    event_id INTEGER NOT NULL,       -- the provider's id, the same on every retry
    event_type TEXT NOT NULL,
    campaign_id INTEGER,
    message_id INTEGER,
    status TEXT,
    seg_num INTEGER,
    status_update_ts TEXT,
    event_create_ts TEXT NOT NULL,
    attempt INTEGER NOT NULL,        -- the attempt that was accepted
    received_at REAL NOT NULL,       -- unix time
    data TEXT NOT NULL,              -- the event's data object, as JSON
    batch INTEGER,                   -- the asset event that counted it (NULL: not yet)
    grp TEXT,                        -- counted under (DeliveryReport.group_key); NULL: not a report
    PRIMARY KEY (source, event_id)
);
CREATE TABLE IF NOT EXISTS sms_batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    campaign_id INTEGER NOT NULL,    -- 0: none or several (the extra lists them)
    created_at REAL NOT NULL,
    extra TEXT NOT NULL,
    grp TEXT
);
"""
# Files written before ``grp`` existed (a report was a row with a campaign id) gain it here.
_MIGRATE = (
    ("sms_events", "ALTER TABLE sms_events ADD COLUMN grp TEXT",
     "UPDATE sms_events SET grp = CAST(campaign_id AS TEXT) WHERE grp IS NULL AND campaign_id IS NOT NULL"),
    ("sms_batches", "ALTER TABLE sms_batches ADD COLUMN grp TEXT",
     "UPDATE sms_batches SET grp = CAST(campaign_id AS TEXT) WHERE grp IS NULL"),
)  # fmt: skip
_INDEXES = """
CREATE INDEX IF NOT EXISTS sms_events_pending_grp ON sms_events (batch, source, grp);
CREATE INDEX IF NOT EXISTS sms_events_message ON sms_events (source, grp, message_id);
"""
# Per message, its latest report of the group (a BSG message may report "delivered" then "read";
# a Mobizon message reports once): a message is counted once, under its newest final status.
_LATEST = """
SELECT e.status, e.seg_num, e.status_update_ts FROM sms_events e
WHERE e.source = ? AND e.grp = ? AND NOT EXISTS (
    SELECT 1 FROM sms_events f WHERE f.source = e.source AND f.grp = e.grp AND f.message_id = e.message_id
    AND (f.status_update_ts > e.status_update_ts
         OR (f.status_update_ts = e.status_update_ts AND f.event_id > e.event_id)))
"""

Emit = Callable[[dict[str, Any]], None]


class EventStore:
    """Events and the batches they were reported in, in one SQLite file (thread-safe)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # one connection, shared by the receiver's worker threads
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer (API-server workers)
        self._db.executescript(_SCHEMA)
        for table, alter, backfill in _MIGRATE:
            if "grp" not in {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}:
                self._db.execute(alter)
                self._db.execute(backfill)
        self._db.executescript(_INDEXES)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # take the write lock now: two workers never both flush
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add(self, source: str, event: WebhookEvent, report: DeliveryReport | None, now: float | None = None) -> bool:
        """Record ``event``; False if ``(source, event_id)`` was already recorded (a retry or a duplicate)."""
        row = (
            source, event.event_id, event.event_type,
            report.campaign_id if report else None, report.message_id if report else None,
            report.status if report else None, report.seg_num if report else None,
            report.status_update_ts if report else None,
            event.event_create_ts, event.attempt, time.time() if now is None else now,
            json.dumps(event.data, separators=(",", ":"), sort_keys=True),
            report.group_key if report else None,
        )  # fmt: skip
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO sms_events (source, event_id, event_type, campaign_id, message_id, status,"
                " seg_num, status_update_ts, event_create_ts, attempt, received_at, data, grp)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                row,
            )
            return cur.rowcount == 1

    def due(self, quiet_seconds: float, now: float | None = None) -> list[tuple[str, int | str]]:
        """(source, group) whose unreported reports have been quiet for ``quiet_seconds``.

        The group is the campaign id (an int) where reports carry one, else the provider's group key.
        """
        limit = (time.time() if now is None else now) - quiet_seconds
        with self._lock:
            rows = self._db.execute(
                "SELECT source, grp, MAX(campaign_id) FROM sms_events WHERE batch IS NULL AND grp IS NOT NULL"
                " GROUP BY source, grp HAVING MAX(received_at) <= ? ORDER BY MIN(received_at)",
                (limit,),
            ).fetchall()
        return [(source, int(campaign) if campaign is not None else grp) for source, grp, campaign in rows]

    def pending(self) -> int:
        """Delivery reports not yet counted in an asset event."""
        with self._lock:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM sms_events WHERE batch IS NULL AND grp IS NOT NULL"
            ).fetchone()
        return int(count)

    def report(self, source: str, group: int | str, emit: Emit, now: float | None = None) -> dict[str, Any] | None:
        """Count the group's reports, ``emit`` the extra, then mark the new ones reported.

        All in one transaction: if ``emit`` raises, nothing is marked and the next flush tries again.
        The first event of a group has ``update: false``; reports arriving after it (a late retry)
        make a follow-up event with ``update: true``, the group's full counts again (each message
        once, under its newest status) and ``new``, the counts of the reports it adds.
        """
        grp = str(group)
        with self._tx() as db:
            new = db.execute(
                "SELECT status, COUNT(*) FROM sms_events WHERE source = ? AND grp = ? AND batch IS NULL"
                " GROUP BY status ORDER BY status",
                (source, grp),
            ).fetchall()
            if not new:
                return None
            rows = db.execute(
                f"SELECT status, COUNT(*), SUM(seg_num), MIN(status_update_ts), MAX(status_update_ts)"
                f" FROM ({_LATEST}) GROUP BY status ORDER BY status",
                (source, grp),
            ).fetchall()
            campaigns = [c for (c,) in db.execute(
                "SELECT DISTINCT campaign_id FROM sms_events WHERE source = ? AND grp = ? AND campaign_id IS NOT NULL"
                " ORDER BY campaign_id", (source, grp))]  # fmt: skip
            earlier = db.execute("SELECT COUNT(*) FROM sms_batches WHERE source = ? AND grp = ?",
                                 (source, grp)).fetchone()[0]  # fmt: skip
            segments = [row[2] for row in rows if row[2] is not None]
            extra: dict[str, Any] = {
                "provider": source.split("/", 1)[0],
                "source": source,
                "campaign_ids": campaigns,
                "counts": {status: count for status, count, *_ in rows},
                "messages": sum(row[1] for row in rows),
                "segments": sum(segments) if segments else None,
                "first_status_ts": min(row[3] for row in rows),
                "last_status_ts": max(row[4] for row in rows),
                "update": earlier > 0,
            }
            if not campaigns:
                extra["group"] = grp  # no campaign id in the payload (BSG): the group it was counted under
            if earlier:
                extra["new"] = {status: count for status, count in new}
            cur = db.execute(
                "INSERT INTO sms_batches (source, campaign_id, created_at, extra, grp) VALUES (?,?,?,?,?)",
                # 0: no single campaign (files from before ``grp`` have this column NOT NULL)
                (source, campaigns[0] if len(campaigns) == 1 else 0, time.time() if now is None else now,
                 json.dumps(extra, sort_keys=True), grp),
            )  # fmt: skip
            db.execute(
                "UPDATE sms_events SET batch = ? WHERE source = ? AND grp = ? AND batch IS NULL",
                (cur.lastrowid, source, grp),
            )
            emit(extra)
            return extra

    def events(self, source: str | None = None) -> list[dict[str, Any]]:
        """Recorded events, oldest first (tests, troubleshooting)."""
        with self._lock:
            cur = self._db.execute(
                "SELECT * FROM sms_events WHERE ? IS NULL OR source = ? ORDER BY received_at, event_id",
                (source, source),
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def batches(self) -> list[dict[str, Any]]:
        """The asset events reported so far, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, source, campaign_id, grp, extra FROM sms_batches ORDER BY id"
            ).fetchall()
        return [{"id": i, "source": s, "campaign_id": c, "group": g, "extra": json.loads(e)} for i, s, c, g, e in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
