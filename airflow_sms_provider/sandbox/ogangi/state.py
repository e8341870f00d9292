"""Ogangi sandbox state: the instance's broadcasts, messages sent by file, counters."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_sms_provider.sandbox.ogangi.wire import (
    DELETED,
    FINISHED,
    RUNNING,
    SANDBOX_OGANGI_INSTANCE_ID,
    SANDBOX_OGANGI_PRIVATE_KEY,
    SANDBOX_OGANGI_PUBLIC_KEY,
    SANDBOX_OGANGI_SHORTCODES,
    SCHEDULED,
    STOPPED,
    SUSPENDED,
    Failure,
    _iso,
)

if TYPE_CHECKING:
    from airflow_sms_provider.sandbox.state import SandboxState

# Config keys this module reads from SandboxState.config (create_app(**config)).
DEFAULTS: dict[str, Any] = {
    "ogangi_send_rate": 10.0,  # broadcast messages per simulated second
    "ogangi_start_delay": 1.0,  # simulated seconds from "start now" to the first message
    "ogangi_xml_root": "response",  # root element of every answer; "" answers the docs' rootless form
    "ogangi_max_upload_bytes": 20 * 1024 * 1024,
    # The zone the instance reads broadcast dates in; a test sets another to catch a shift.
    "ogangi_account_timezone": "UTC",
    # The instance's key pair (POST /_sandbox/config): e.g. a private key holding "+ / = % &".
    "ogangi_public_key": SANDBOX_OGANGI_PUBLIC_KEY,
    "ogangi_private_key": SANDBOX_OGANGI_PRIVATE_KEY,
}


@dataclass
class Broadcast:
    id: int
    name: str | None
    shortcode: str
    text: str
    recipients: list[dict[str, Any]]
    start: datetime
    created: datetime
    state: str = "active"  # active | suspended | stopped | deleted
    resumed_at: datetime | None = None  # when the current active stretch may start sending
    sent_before: float = 0.0  # simulated seconds of sending done before that stretch
    ended: datetime | None = None  # when it was stopped
    edits: int = 0
    calls: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.resumed_at is None:
            self.resumed_at = self.start

    @property
    def expected(self) -> int:
        return len(self.recipients)

    def sending_seconds(self, now: datetime) -> float:
        assert self.resumed_at is not None
        if self.state != "active":
            return self.sent_before
        return self.sent_before + max(0.0, (now - self.resumed_at).total_seconds())

    def sent(self, now: datetime, rate: float) -> int:
        # The epsilon absorbs float error at the exact moment the last message goes out.
        return min(self.expected, math.floor(self.sending_seconds(now) * rate + 1e-9))

    def status(self, now: datetime, rate: float) -> str:
        assert self.resumed_at is not None
        if self.state == "deleted":
            return DELETED
        if self.state == "stopped":
            return STOPPED
        if self.sent(now, rate) >= self.expected:
            return FINISHED
        if self.state == "suspended":
            return SUSPENDED
        if self.sent_before == 0 and now < self.resumed_at:
            return SCHEDULED
        return RUNNING

    def end_date(self, now: datetime, rate: float) -> datetime | None:
        assert self.resumed_at is not None
        status = self.status(now, rate)
        if status == STOPPED:
            return self.ended
        if status == FINISHED:
            return self.resumed_at + timedelta(seconds=max(0.0, self.expected / rate - self.sent_before))
        return None


@dataclass
class OgangiState:
    """The emulated instance: broadcasts, messages sent by file, counters."""

    sandbox: SandboxState
    broadcasts: dict[int, Broadcast] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    bad_signatures: int = 0
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _message_ids: Any = field(default_factory=lambda: itertools.count(6710228708174720670, 7919))

    @property
    def cfg(self) -> dict[str, Any]:
        return self.sandbox.config

    @property
    def rate(self) -> float:
        return max(float(self.cfg["ogangi_send_rate"]), 1e-6)

    def broadcast(self, raw_id: str) -> Broadcast:
        try:
            broadcast_id = int(raw_id)
        except ValueError:
            raise Failure(f"Invalid broadcastId {raw_id!r}: a number is required") from None
        found = self.broadcasts.get(broadcast_id)
        if found is None or found.state == "deleted":
            raise Failure(f"Broadcast {broadcast_id} not found")
        return found

    def snapshot(self, now: datetime) -> dict[str, Any]:
        """What ``GET /_sandbox/ogangi/state`` answers; plain JSON values."""
        return {
            "now": _iso(now),
            "instance_id": SANDBOX_OGANGI_INSTANCE_ID,
            "shortcodes": list(SANDBOX_OGANGI_SHORTCODES),
            "calls": dict(self.calls),
            "bad_signatures": self.bad_signatures,
            "broadcasts": [self._broadcast_view(b, now) for b in self.broadcasts.values()],
            "files": list(self.files),
            "messages": list(self.messages),
        }

    def _broadcast_view(self, item: Broadcast, now: datetime) -> dict[str, Any]:
        end = item.end_date(now, self.rate)
        return {
            "id": item.id,
            "name": item.name,
            "shortcode": item.shortcode,
            "text": item.text,
            "status": item.status(now, self.rate),
            "startDate": _iso(item.start),
            "endDate": _iso(end) if end else None,
            "expectedMessages": item.expected,
            "sentMessages": item.sent(now, self.rate),
            "edits": item.edits,
            "calls": dict(item.calls),
            "recipients": [{"to": r["to"], "text": r["rendered"], "params": r["params"]} for r in item.recipients],
        }
