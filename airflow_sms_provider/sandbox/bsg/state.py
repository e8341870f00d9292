"""BSG sandbox state: accounts, tokens, groups, campaigns and their lifecycle."""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from airflow_sms_provider.sandbox.bsg.callbacks import DEFAULTS as CALLBACK_DEFAULTS
from airflow_sms_provider.sandbox.bsg.callbacks import KINDS as CALLBACK_KINDS
from airflow_sms_provider.sandbox.bsg.callbacks import CallbackBook
from airflow_sms_provider.sandbox.bsg.callbacks import start as start_callbacks
from airflow_sms_provider.sandbox.bsg.wire import (
    CURRENCY,
    DEFAULT_BALANCE,
    DUPLICATE,
    MAX_ITEMS,
    SANDBOX_BSG_API_KEY,
    STAT_KEYS,
    Reject,
    _bearer,
    _jwt_decode,
    _jwt_encode,
    _ts,
    _unauthorized,
    country_of,
    parts_of,
)

if TYPE_CHECKING:
    from airflow_sms_provider.sandbox.state import SandboxState

# Config keys this module reads from SandboxState.config; POST /_sandbox/bsg/config
# takes them without the "bsg_" prefix.
DEFAULTS: dict[str, Any] = {
    "bsg_jwt_ttl": 3600.0,  # simulated seconds a JWT is valid
    # The zone the account reads and writes wall times in (start_at, answers' times). The
    # documents name none; a test sets another to catch a client that assumes UTC.
    "bsg_account_timezone": "UTC",
    "bsg_creation_delay": 2.0,  # simulated seconds in "creation" before sending starts
    "bsg_send_rate": 100.0,  # messages per simulated second
    "bsg_delivery_delay": 5.0,  # simulated seconds from sent to the final status
    "bsg_duplicate_window": 10.0,  # identical requests within this many simulated seconds -> 429
    "bsg_sms_price": 0.015,  # USD per message part
    "bsg_tariffs": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],  # tariff codes connected to the account
    "bsg_undelivered_suffixes": ["13"],
    "bsg_expired_suffixes": ["66"],
    # Campaign creation under load (see the module docstring); 0 = off.
    "bsg_create_ms": 0.0,  # real ms each creation takes, counted as in flight
    "bsg_max_concurrent_creates": 0,  # creations in flight at once before 429
    "bsg_creates_per_second": 0.0,  # creations started per real second before 429
    "bsg_retry_after": 1.0,  # Retry-After of those 429s, in seconds; None: no header
    **CALLBACK_DEFAULTS,  # callbacks.py: status callbacks to a campaign's callback_url
}
# The custom fields of the default contact lists (GET /api/contacts/fields would list them).
NAME_FIELD_ID, CITY_FIELD_ID = "12", "13"

_CONFIG_PREFIX = "bsg_"
_LIMIT_KEYS = {"bsg_create_ms", "bsg_max_concurrent_creates", "bsg_creates_per_second", "bsg_retry_after"}


def _default_groups() -> dict[int, dict[str, Any]]:
    """Contact lists; ``fields`` are custom-field values by field id (send-groups' ``{12}``)."""

    def contact(phone: int, name: str, city: str) -> dict[str, Any]:
        return {"phone": phone, "fields": {NAME_FIELD_ID: name, CITY_FIELD_ID: city}}

    customers = [contact(380661230001, "Olena", "Kyiv"), contact(380661230002, "Taras", "Lviv"),
                 contact(380661230013, "Iryna", "Odesa")]  # fmt: skip
    staff = [contact(380661239001, "Admin", "Kyiv"), contact(380661239002, "Support", "Kyiv")]
    huge = [contact(380500000000 + i, f"Contact {i}", "") for i in range(MAX_ITEMS + 1)]
    return {
        1864275: {"name": "Sandbox customers", "contacts": customers},
        1864276: {"name": "Sandbox staff", "contacts": staff},
        1864277: {"name": "Sandbox huge list", "contacts": huge},
    }


@dataclass
class Account:
    api_key: str
    balance: float = DEFAULT_BALANCE


@dataclass
class Message:
    id: int
    index: int  # position in the campaign: the send order
    phone: int
    text: str
    sender: str
    reference_id: str | None
    parts: int
    validity: int
    tariff_code: int | None


@dataclass
class Campaign:
    id: int
    kind: str  # "send", "send-groups", "send-individual", "campaign-send"
    owner: str
    sender: str
    created_at: datetime
    start_at: datetime | None  # as requested; None = now
    start: datetime  # when sending starts
    rate: float
    delivery_delay: float
    messages: list[Message]
    price: float
    groups: list[int] = field(default_factory=list)
    stopped_at: datetime | None = None
    forced: tuple[str, datetime] | None = None
    stop_calls: int = 0
    callback_url: str | None = None  # callbacks.py

    def sent_at(self, msg: Message) -> datetime:
        return self.start + timedelta(seconds=(msg.index + 1) / self.rate)

    def cutoff(self) -> datetime | None:
        """When sending was interrupted (stop or a forced status), if it was."""
        if self.stopped_at is not None:
            return self.stopped_at
        return self.forced[1] if self.forced else None

    def last_final(self) -> datetime:
        last = self.start + timedelta(seconds=len(self.messages) / self.rate)
        return last + timedelta(seconds=self.delivery_delay)

    def status(self, now: datetime) -> str:
        if self.stopped_at is not None:
            return "stopped"
        if self.forced is not None:
            return self.forced[0]
        if now < self.start:
            return "scheduled" if self.start_at is not None else "creation"
        return "sending" if now < self.last_final() else "done"

    def finished_at(self, now: datetime) -> datetime | None:
        status = self.status(now)
        if status == "done":
            return self.last_final()
        return self.cutoff() if status in ("stopped", "spam") else None


class BsgState:
    """Accounts, tokens, campaigns and messages of the emulated BSG One-API."""

    def __init__(self, sandbox: SandboxState) -> None:
        self.sandbox = sandbox
        self.accounts: dict[str, Account] = {SANDBOX_BSG_API_KEY: Account(SANDBOX_BSG_API_KEY)}
        self.groups = _default_groups()
        self.campaigns: dict[int, Campaign] = {}
        self.by_reference: dict[tuple[str, str], Message] = {}
        self.message_campaign: dict[int, int] = {}
        self.recent: dict[str, datetime] = {}  # body fingerprint -> last seen
        self.revoked: set[int] = set()  # token ids (jti) revoked one by one (refresh)
        self.revoked_upto = 0  # and every token id up to this one (admin revoke)
        self.last_token_id = 0
        self.callbacks = CallbackBook()  # callbacks.py: forgotten, like everything else, by a reset
        self.stats = {"logins": 0, "failed_logins": 0, "refreshes": 0, "unauthorized": 0, "duplicates": 0}
        self.limits = {"creates": 0, "rate_limited": 0, "in_flight": 0, "max_in_flight": 0}
        self._recent_creates: deque[float] = deque()  # monotonic start times within the last second
        # Handlers run on the server's event loop one at a time already; the lock keeps a
        # duplicate check and its creation atomic should one ever run in a worker thread.
        self.lock = threading.Lock()
        self._campaign_ids = itertools.count(53703353)
        self._message_ids = itertools.count(4419393338)
        self._token_ids = itertools.count(1)

    def cfg(self, key: str) -> Any:
        return self.sandbox.config[_CONFIG_PREFIX + key]

    def zone(self) -> ZoneInfo:
        """The account's zone: naive start_at values are read in it, answers' times written in it."""
        return ZoneInfo(str(self.cfg("account_timezone")))

    def ts(self, moment: datetime | None) -> str | None:
        return _ts(moment, self.zone())

    # ------------------------------------------------------------ tokens

    def issue_token(self, account: Account, now: datetime) -> str:
        iat = int(now.timestamp())
        subject = hashlib.sha256(account.api_key.encode()).hexdigest()[:16]
        claims: dict[str, Any] = {"iss": "bsg-sandbox", "sub": subject, "iat": iat,
                                  "exp": iat + max(1, round(float(self.cfg("jwt_ttl")))),
                                  "jti": next(self._token_ids)}  # fmt: skip
        self.last_token_id = claims["jti"]
        return _jwt_encode(claims)

    def account_for(self, header: str | None, now: datetime) -> tuple[Account, dict[str, Any]]:
        """The account a bearer token stands for, or :class:`Reject` 401."""
        token = _bearer(header)
        if token is None:
            raise _unauthorized("JWT Token not found")
        claims = _jwt_decode(token)
        if claims is None:
            raise _unauthorized("Invalid JWT Token")
        if claims["jti"] in self.revoked or claims["jti"] <= self.revoked_upto:
            raise _unauthorized("Invalid JWT Token")
        if now.timestamp() >= claims["exp"]:
            raise _unauthorized("Expired JWT Token")
        account = next(
            (a for a in self.accounts.values() if hashlib.sha256(a.api_key.encode()).hexdigest()[:16] == claims["sub"]),
            None,
        )
        if account is None:
            raise _unauthorized("Invalid JWT Token")
        return account, claims

    # ------------------------------------------------------------ duplicates

    def admit_create(self) -> Reject | None:
        """Count a creation in, or the 429 a rate limit answers instead (see the module docstring)."""
        limit, per_second = int(self.cfg("max_concurrent_creates") or 0), float(self.cfg("creates_per_second") or 0)
        now = time.monotonic()
        while self._recent_creates and now - self._recent_creates[0] >= 1.0:
            self._recent_creates.popleft()
        if (limit and self.limits["in_flight"] >= limit) or (per_second and len(self._recent_creates) >= per_second):
            self.limits["rate_limited"] += 1
            return Reject(429, {"message": "Too Many Requests"})
        self._recent_creates.append(now)
        self.limits["creates"] += 1
        self.limits["in_flight"] += 1
        self.limits["max_in_flight"] = max(self.limits["max_in_flight"], self.limits["in_flight"])
        return None

    def retry_after_header(self) -> dict[str, str]:
        seconds = self.cfg("retry_after")
        if seconds is None:
            return {}
        return {"Retry-After": f"{float(seconds):g}"}  # whole seconds as "1"; fractions for fast tests

    def check_duplicate(self, account: Account, path: str, body: bytes, refs: Iterable[str], now: datetime) -> None:
        """429 for a reference_id used before, or the same request again within the window."""
        if any((account.api_key, ref) in self.by_reference for ref in refs):
            self.stats["duplicates"] += 1
            raise Reject(429, {"message": DUPLICATE})
        fingerprint = hashlib.sha256(account.api_key.encode() + path.encode() + body).hexdigest()
        seen = self.recent.get(fingerprint)
        self.recent[fingerprint] = now
        if seen is not None and (now - seen).total_seconds() < float(self.cfg("duplicate_window")):
            self.stats["duplicates"] += 1
            raise Reject(429, {"message": DUPLICATE})

    # ------------------------------------------------------------ campaigns

    def create(
        self,
        account: Account,
        kind: str,
        rows: list[dict[str, Any]],
        options: Mapping[str, Any],
        now: datetime,
        groups: list[int] | None = None,
    ) -> Campaign:
        start_at = options.get("start_at")
        start = start_at if start_at is not None else now + timedelta(seconds=float(self.cfg("creation_delay")))
        messages = []
        parts: dict[str, int] = {}  # a bulk campaign's 10,000 messages share one text: count its parts once
        for index, row in enumerate(rows):
            text = row["text"]
            if text not in parts:
                parts[text] = parts_of(text)
            msg = Message(next(self._message_ids), index, row["phone"], text, row["sender"],
                          row.get("reference_id"), parts[text], options.get("validity") or 72,
                          row.get("tariff_code", options.get("tariff_code")))  # fmt: skip
            messages.append(msg)
        price = round(sum(m.parts for m in messages) * float(self.cfg("sms_price")), 6)
        camp = Campaign(
            id=next(self._campaign_ids), kind=kind, owner=account.api_key, sender=rows[0]["sender"],
            created_at=now, start_at=start_at, start=start, rate=max(float(self.cfg("send_rate")), 1e-6),
            delivery_delay=float(self.cfg("delivery_delay")), messages=messages, price=price,
            groups=list(groups or []),
            callback_url=options.get("callback_url") or None if kind in CALLBACK_KINDS else None,
        )  # fmt: skip
        self.campaigns[camp.id] = camp
        if camp.callback_url is not None:
            start_callbacks(self)
        for msg in messages:
            self.message_campaign[msg.id] = camp.id
            if msg.reference_id is not None:
                self.by_reference[(account.api_key, msg.reference_id)] = msg
        account.balance = round(account.balance - price, 6)
        return camp

    def campaign(self, account: Account, campaign_id: Any) -> Campaign:
        try:
            camp = self.campaigns.get(int(campaign_id))
        except (TypeError, ValueError):
            camp = None
        if camp is None or camp.owner != account.api_key:
            raise Reject(404, {"message": "Campaign not found", "errors": []})
        return camp

    def final_status(self, phone: int) -> str:
        digits = str(phone)
        if any(digits.endswith(s) for s in self.cfg("undelivered_suffixes")):
            return "undelivered"
        if any(digits.endswith(s) for s in self.cfg("expired_suffixes")):
            return "expired"
        return "delivered"

    def message_state(
        self, camp: Campaign, msg: Message, now: datetime
    ) -> tuple[str, datetime | None, datetime | None]:
        """(status, sent_at, delivered_at) of one message at ``now``."""
        sent_at = camp.sent_at(msg)
        cutoff = camp.cutoff()
        if cutoff is not None and sent_at > cutoff:
            # Never left: the campaign was stopped or held before its turn.
            held = camp.forced[0] if camp.forced and camp.stopped_at is None else None
            return {"moderation": "moderation", "paused": "scheduled"}.get(held or "", "failed"), None, None
        if now < sent_at:
            return ("accepted" if now >= camp.start else "scheduled"), None, None
        final_at = sent_at + timedelta(seconds=camp.delivery_delay)
        if now < final_at:
            return "sent", sent_at, None
        status = self.final_status(msg.phone)
        return status, sent_at, final_at if status == "delivered" else None

    # ------------------------------------------------------------ views

    def short_statistics(self, camp: Campaign, now: datetime) -> dict[str, int]:
        if now < camp.start:  # nothing leaves before the start (the answer to a creation): skip the walk
            return {"delivered": 0, "sent": 0}
        sent = delivered = 0
        for msg in camp.messages:
            status, sent_at, _ = self.message_state(camp, msg, now)
            sent += sent_at is not None
            delivered += status == "delivered"
        return {"delivered": delivered, "sent": sent}

    def detail_statistics(self, camp: Campaign, now: datetime) -> dict[str, int]:
        counts = dict.fromkeys(STAT_KEYS, 0)
        for msg in camp.messages:
            counts[self.message_state(camp, msg, now)[0]] += 1
        return counts

    def campaign_name(self, camp: Campaign) -> str:
        """The auto-generated name (the spec's example: ``SMS api campaign / 2024-04-03 12:14:49``)."""
        return f"SMS api campaign / {self.ts(camp.created_at)}"

    def campaign_view(self, camp: Campaign, now: datetime, price: float | None = None) -> dict[str, Any]:
        """CampaignSchema: what create, get and stop answer in ``data``."""
        status = camp.status(now)
        return {
            "id": camp.id,
            "name": self.campaign_name(camp),
            "sender": camp.sender,
            "status": status,
            "message_type": "sms",
            "start_at": self.ts(camp.start),
            "real_start_at": self.ts(camp.start) if now >= camp.start and status != "scheduled" else None,
            "finished_at": self.ts(camp.finished_at(now)),
            "created_at": self.ts(camp.created_at),
            "statistics": self.short_statistics(camp, now),
            # The spec: a price only in answers to create (and the price calculation).
            "calculated_price": price if price is not None else 0,
            "currency": CURRENCY if price is not None else None,
            "alternative_channels": None,
        }

    def detail_view(self, camp: Campaign, now: datetime) -> dict[str, Any]:
        """DetailCampaignSchema: statistics per status, totals and the price of what was sent."""
        status = camp.status(now)
        sent_parts = sum(m.parts for m in camp.messages if self.message_state(camp, m, now)[1] is not None)
        return {
            "id": camp.id,
            "name": self.campaign_name(camp),
            "sender": camp.sender,
            "status": status,
            "type": "sms",
            "started_at": self.ts(camp.start),
            "actual_start_at": self.ts(camp.start) if now >= camp.start and status != "scheduled" else None,
            "finished_at": self.ts(camp.finished_at(now)),
            "created_at": self.ts(camp.created_at),
            "statistics": self.detail_statistics(camp, now),
            "total_messages": len(camp.messages),
            "total_phones": len(camp.messages),
            "total_price": f"{sent_parts * float(self.cfg('sms_price')):.4f}",
            "currency": CURRENCY,
            "alternative_channels": None,
        }

    def message_view(self, camp: Campaign, msg: Message, now: datetime) -> dict[str, Any]:
        """MessageApiSchema."""
        status, sent_at, delivered_at = self.message_state(camp, msg, now)
        return {
            "id": msg.id,
            "campaign_id": camp.id,
            "reference_id": msg.reference_id,
            "type": "sms",
            "source": "rest",
            "text": msg.text,
            "phone": msg.phone,
            "validity": msg.validity,
            "status": status,
            "amount": {"value": f"{msg.parts * float(self.cfg('sms_price')):.7f}", "currency": CURRENCY},
            "sender": msg.sender,
            "created_at": self.ts(camp.created_at),
            "sent_at": self.ts(sent_at),
            "delivered_at": self.ts(delivered_at),
            "country": country_of(msg.phone),
            "parts": msg.parts,
        }

    def snapshot(self, now: datetime, with_messages: bool = True) -> dict[str, Any]:
        """Everything a test asserts on (``GET /_sandbox/bsg/state``)."""
        campaigns = []
        for camp in self.campaigns.values():
            view = {
                "id": camp.id,
                "kind": camp.kind,
                "status": camp.status(now),
                "sender": camp.sender,
                "start_at": self.ts(camp.start_at),
                "start_at_utc": camp.start_at.astimezone(timezone.utc).isoformat() if camp.start_at else None,
                "created_at": self.ts(camp.created_at),
                "groups": camp.groups,
                "phones": len(camp.messages),
                "stop_calls": camp.stop_calls,
                "price": camp.price,
                "statistics": self.detail_statistics(camp, now),
            }
            if with_messages:
                view["messages"] = [
                    {"id": m.id, "phone": m.phone, "text": m.text, "sender": m.sender,
                     "reference_id": m.reference_id, "status": self.message_state(camp, m, now)[0]}
                    for m in camp.messages
                ]  # fmt: skip
            campaigns.append(view)
        return {
            "now": now.isoformat(),
            "config": {key[len(_CONFIG_PREFIX) :]: self.sandbox.config[key] for key in DEFAULTS},
            "auth": dict(self.stats),
            "limits": dict(self.limits),
            "accounts": [
                {"api_key": "***" + a.api_key[-4:], "balance": a.balance, "currency": CURRENCY}
                for a in self.accounts.values()
            ],
            "campaigns": campaigns,
        }
