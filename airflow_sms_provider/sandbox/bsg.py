"""BSG One-API as a local server: ``/api/...`` (see reference/bsg/openapi.yaml).

Implemented: ``POST /api/auth/login``, ``POST /api/auth/refresh``,
``GET /api/accounts/balance``, ``POST /api/campaigns/sms/send``,
``POST /api/campaigns/sms/send-groups``, ``POST /api/campaigns/sms/send-individual``,
``GET /api/campaigns/{id}``, ``GET /api/campaigns/{id}/detail``,
``PATCH /api/campaigns/{id}/stop``, ``GET /api/messages``. Any other ``/api/`` path
answers 404 ``{"message": "Not Found"}``.

This module parses requests itself and keeps its own copy of the limits: it is the
independent other half of the client codec in ``protocols/bsg.py`` (importing that
would also pull Airflow into the server). Answers are shaped as the spec's schemas
(integers where it says integer, ``yyyy-mm-dd hh:mm:ss`` times in UTC on the
simulated clock), so the provider's generated SDK (``bsg-sdk``) can talk to it too.

Accounts and tokens
    ``SANDBOX_BSG_API_KEY`` (balance 100.00 USD) exists after every reset; ``POST
    /_sandbox/bsg/accounts {"api_key": ..., "balance": ...}`` adds another. Login
    answers ``{"bearer": <JWT>}``: HS256, ``iat``/``exp`` on the simulated clock,
    valid ``bsg_jwt_ttl`` simulated seconds (``POST /_sandbox/bsg/config
    {"jwt_ttl": 5}`` shortens it). ``Authorization: Bearer <JWT>`` (also the spec
    prose's ``Bearer: <JWT>``) is required everywhere else; a missing, invalid,
    revoked or expired token answers 401 ``{"code": 401, "message": ...}``. Refresh
    needs a token that has not expired yet and revokes it. ``POST
    /_sandbox/bsg/revoke`` revokes every token (the next call answers 401).

Validation (422 ``{"message": "The given data was invalid.", "errors": {path: [..]}}``,
field paths with separators dropped, as in the spec: ``phones0number``)
    phones/messages: 1-10,000 items; numbers are JSON integers of 9-15 digits;
    sender 3-11 printable Latin characters or 3-15 digits; text at most 765 GSM-7
    septets or 335 UCS-2 units; validity 1-72; tariff_code 0-9 and one of
    ``bsg_tariffs`` (else 422 "Tariff was not found"); start_at ``yyyy-mm-dd
    hh:mm:ss`` (ISO 8601 with 'T' too), not more than 5 minutes in the past, at
    most 30 days ahead; reference_id up to 32 letters/digits, unique in the request.
    Groups must exist and hold at most 10,000 contacts together.

Duplicates (429 ``{"message": "Too many duplicate request detected"}``)
    a reference_id used by any earlier message of the account, or the same path and
    body again within ``bsg_duplicate_window`` simulated seconds.

Lifecycle (computed from timestamps on every read; nothing runs in the background)
    created at T: ``creation`` until ``T + bsg_creation_delay`` (or ``scheduled``
    until ``start_at``), then ``sending``: message i is sent at start + (i+1)/rate
    (``bsg_send_rate`` per simulated second) and final ``bsg_delivery_delay`` later;
    ``done`` once every message is final. Final status by the number's ending:
    ``bsg_undelivered_suffixes`` (default "13") undelivered, ``bsg_expired_suffixes``
    ("66") expired, anything else delivered. Stop is allowed while scheduled, sending,
    paused or moderation (else 422 "Invalid campaign status"); messages not sent by
    then end ``failed``. ``POST /_sandbox/bsg/campaigns/{id}/status`` forces
    ``moderation``, ``paused`` or ``spam`` (no resume; spam is final, unsent messages
    ``failed``). Short statistics count ``sent`` (left, including delivered) and
    ``delivered``; the detail statistics count every message under its current status,
    so they add up to ``total_phones``.

Contact lists: 1864275 "Sandbox customers" (3 contacts), 1864276 "Sandbox staff"
(2), 1864277 "Sandbox huge list" (10,001: too many for one campaign); contact
fields ``name`` and ``city`` fill ``{name}``/``{city}`` in send-groups texts.

Campaign creation under load (``sms/send``, ``send-groups``, ``send-individual``; all off by default)
    ``bsg_create_ms``: real milliseconds the server spends on each creation (an async
    wait before it is handled, during which the request counts as in flight).
    ``bsg_max_concurrent_creates``: a creation arriving while this many are in flight, or
    ``bsg_creates_per_second``: one more than this many in the last real second, answers
    429 ``{"message": "Too Many Requests"}`` with ``Retry-After: bsg_retry_after`` (seconds;
    null: no header) and does nothing: not even the duplicate check sees it. ``GET
    /_sandbox/bsg/state`` reports ``limits``: creations handled, rate-limited, in flight
    now and at most at once. Creations are atomic: the duplicate check and the creation
    run without a pause in between, under the state's lock.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeGuard

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from airflow_sms_provider.sandbox.state import SandboxState

NAME = "bsg"
PATH_PREFIXES = ("/api/",)

SANDBOX_BSG_API_KEY = "test_sandboxbsg0123456789abcdefABCDEF"
DEFAULT_BALANCE = 100.0
CURRENCY = "USD"

# Config keys this module reads from SandboxState.config; POST /_sandbox/bsg/config
# takes them without the "bsg_" prefix.
DEFAULTS: dict[str, Any] = {
    "bsg_jwt_ttl": 3600.0,  # simulated seconds a JWT is valid
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
}
_CONFIG_PREFIX = "bsg_"
_LIMIT_KEYS = {"bsg_create_ms", "bsg_max_concurrent_creates", "bsg_creates_per_second", "bsg_retry_after"}

TS_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_ITEMS = 10_000
PHONE_DIGITS = (9, 15)
SENDER_ALPHA_MAX, SENDER_NUMERIC_MAX, SENDER_MIN = 11, 15, 3
TEXT_LIMITS = {"GSM-7": 765, "UCS-2": 335}
VALIDITY = (1, 72)
TARIFF = (0, 9)
MAX_AHEAD = timedelta(days=30)
PAST_TOLERANCE = timedelta(minutes=5)
PAGE_LIMITS = (15, 500)
DEFAULT_PAGE_LIMIT = 50
STOPPABLE = ("scheduled", "sending", "paused", "moderation")
FORCEABLE = ("moderation", "paused", "spam")
# StatisticsData keys of the detail answer, in the spec's order.
STAT_KEYS = (
    "delivered", "sent", "scheduled", "moderation", "accepted", "sending", "expired", "failed",
    "undelivered", "unknown", "read", "not_viber_user", "not_rcs_user",
)  # fmt: skip
COUNTRY_PREFIXES = (("380", "UA"), ("998", "UZ"), ("77", "KZ"), ("7", "RU"), ("49", "DE"), ("44", "GB"), ("1", "US"))

INVALID_DATA = "The given data was invalid."
DUPLICATE = "Too many duplicate request detected"
TARIFF_NOT_FOUND = "Tariff was not found"
INVALID_STATUS = "Invalid campaign status"

_JWT_SECRET = b"bsg-sandbox-not-a-secret"
_REFERENCE = re.compile(r"[A-Za-z0-9]{1,32}")
_PRINTABLE = re.compile(r"[\x20-\x7e]+")
_DIGITS = re.compile(r"[0-9]+")
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_-]+)\}")
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = frozenset("^{}\\[~]|€\f")


def _default_groups() -> dict[int, dict[str, Any]]:
    customers = [
        {"phone": 380661230001, "name": "Olena", "city": "Kyiv"},
        {"phone": 380661230002, "name": "Taras", "city": "Lviv"},
        {"phone": 380661230013, "name": "Iryna", "city": "Odesa"},
    ]
    staff = [{"phone": 380661239001, "name": "Admin", "city": "Kyiv"},
             {"phone": 380661239002, "name": "Support", "city": "Kyiv"}]  # fmt: skip
    huge = [{"phone": 380500000000 + i, "name": f"Contact {i}", "city": ""} for i in range(MAX_ITEMS + 1)]
    return {
        1864275: {"name": "Sandbox customers", "contacts": customers},
        1864276: {"name": "Sandbox staff", "contacts": staff},
        1864277: {"name": "Sandbox huge list", "contacts": huge},
    }


# ---------------------------------------------------------------- small helpers


def _ts(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).strftime(TS_FORMAT)


def _parse_ts(value: Any) -> datetime | None:
    """``yyyy-mm-dd hh:mm:ss`` or ISO 8601 (what a generated SDK sends for a datetime); naive = UTC."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def encoding_of(text: str) -> tuple[str, int]:
    """(encoding, length): GSM-7 septets (extension characters count 2) or UCS-2 units."""
    if all(ch in _GSM7 or ch in _GSM7_EXT for ch in text):
        return "GSM-7", sum(2 if ch in _GSM7_EXT else 1 for ch in text)
    return "UCS-2", len(text.encode("utf-16-le")) // 2


def parts_of(text: str) -> int:
    encoding, length = encoding_of(text)
    single, part = (160, 153) if encoding == "GSM-7" else (70, 67)
    return 1 if length <= single else math.ceil(length / part)


def country_of(phone: int) -> str | None:
    digits = str(phone)
    return next((country for prefix, country in COUNTRY_PREFIXES if digits.startswith(prefix)), None)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Errors:
    """Collects 422 field errors the way the spec shows them: ``{path: [message, ...]}``."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, key: str, message: str) -> None:
        self.fields.setdefault(key, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.fields)


class Reject(Exception):
    """An error answer: HTTP ``status`` with a JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body


def _invalid(errors: Errors) -> Reject:
    return Reject(422, {"message": INVALID_DATA, "errors": errors.fields})


def _unauthorized(message: str) -> Reject:
    return Reject(401, {"code": 401, "message": message})


# ---------------------------------------------------------------- state


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
    kind: str  # "send", "send-groups", "send-individual"
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
        )  # fmt: skip
        self.campaigns[camp.id] = camp
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

    def campaign_view(self, camp: Campaign, now: datetime, price: float | None = None) -> dict[str, Any]:
        """CampaignSchema: what create, get and stop answer in ``data``."""
        status = camp.status(now)
        return {
            "id": camp.id,
            "name": f"SMS api campaign / {_ts(camp.created_at)}",
            "sender": camp.sender,
            "status": status,
            "message_type": "sms",
            "start_at": _ts(camp.start),
            "real_start_at": _ts(camp.start) if now >= camp.start and status != "scheduled" else None,
            "finished_at": _ts(camp.finished_at(now)),
            "created_at": _ts(camp.created_at),
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
            "name": f"SMS api campaign / {_ts(camp.created_at)}",
            "sender": camp.sender,
            "status": status,
            "type": "sms",
            "started_at": _ts(camp.start),
            "actual_start_at": _ts(camp.start) if now >= camp.start and status != "scheduled" else None,
            "finished_at": _ts(camp.finished_at(now)),
            "created_at": _ts(camp.created_at),
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
            "created_at": _ts(camp.created_at),
            "sent_at": _ts(sent_at),
            "delivered_at": _ts(delivered_at),
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
                "start_at": _ts(camp.start_at),
                "created_at": _ts(camp.created_at),
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


# ---------------------------------------------------------------- JWT


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jwt_encode(claims: dict[str, Any]) -> str:
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(_JWT_SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def _jwt_decode(token: str) -> dict[str, Any] | None:
    """The claims of a token this sandbox signed, or None."""
    try:
        head, body, signature = token.split(".")
        expected = hmac.new(_JWT_SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            return None
        claims = json.loads(_unb64(body))
    except (ValueError, TypeError):
        return None
    keys_ok = isinstance(claims, dict) and all(k in claims for k in ("sub", "iat", "exp", "jti"))
    return claims if keys_ok and _is_int(claims["jti"]) else None


def _bearer(header: str | None) -> str | None:
    """The token of ``Bearer <t>`` (or the spec prose's ``Bearer: <t>``)."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.rstrip(":").lower() != "bearer" or not token.strip():
        return None
    return token.strip()


# ---------------------------------------------------------------- request validation


def _check_sender(value: Any, key: str, errors: Errors) -> None:
    if not isinstance(value, str) or not value.strip():
        errors.add(key, "This value should not be blank.")
    elif _DIGITS.fullmatch(value):
        if not SENDER_MIN <= len(value) <= SENDER_NUMERIC_MAX:
            errors.add(key, "A numeric sender name should have 3 to 15 digits.")
    elif not _PRINTABLE.fullmatch(value) or not SENDER_MIN <= len(value) <= SENDER_ALPHA_MAX:
        errors.add(key, "An alphanumeric sender name should have 3 to 11 Latin letters, digits, symbols or spaces.")


def _check_text(value: Any, key: str, errors: Errors) -> None:
    if not isinstance(value, str) or not value.strip():
        errors.add(key, "This value should not be blank.")
        return
    encoding, length = encoding_of(value)
    if length > TEXT_LIMITS[encoding]:
        errors.add(key, f"This value is too long. It should have {TEXT_LIMITS[encoding]} characters or less.")


def _check_phone(value: Any, key: str, errors: Errors) -> None:
    if not _is_int(value):
        errors.add(key, "This value should be of type integer.")
        return
    digits = len(str(value)) if value > 0 else 0
    if digits < PHONE_DIGITS[0]:
        errors.add(key, f"This value is too short. It should have {PHONE_DIGITS[0]} characters or more.")
    elif digits > PHONE_DIGITS[1]:
        errors.add(key, f"This value is too long. It should have {PHONE_DIGITS[1]} characters or less.")


def _check_reference(value: Any, key: str, seen: set[str], errors: Errors) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not _REFERENCE.fullmatch(value):
        errors.add(key, "This value is not valid.")
    elif value in seen:
        errors.add(key, "This value is already used in the request.")
    else:
        seen.add(value)


def _check_range(value: Any, key: str, bounds: tuple[int, int], errors: Errors) -> None:
    if value is None:
        return
    if not _is_int(value):
        errors.add(key, "This value should be of type integer.")
    elif not bounds[0] <= value <= bounds[1]:
        errors.add(key, f"This value should be between {bounds[0]} and {bounds[1]}.")


def _check_count(items: Any, key: str, errors: Errors) -> TypeGuard[list[Any]]:
    if not isinstance(items, list):
        errors.add(key, "This value should be of type array.")
        return False
    if not items:
        errors.add(key, "This collection should contain 1 element or more.")
        return False
    if len(items) > MAX_ITEMS:
        errors.add(key, f"This collection should contain {MAX_ITEMS} elements or less.")
        return False
    return True


def _options(body: Mapping[str, Any], now: datetime, errors: Errors) -> dict[str, Any]:
    """validity, tariff_code, start_at and callback_url of any campaign request."""
    _check_range(body.get("validity"), "validity", VALIDITY, errors)
    _check_range(body.get("tariff_code"), "tariff_code", TARIFF, errors)
    callback = body.get("callback_url")
    if callback is not None and (not isinstance(callback, str) or len(callback) > 100):
        errors.add("callback_url", "This value is too long. It should have 100 characters or less.")
    start_at = None
    raw = body.get("start_at")
    if raw is not None:
        start_at = _parse_ts(raw)
        if start_at is None:
            errors.add("start_at", "This value is not a valid datetime.")
        elif start_at < now - PAST_TOLERANCE:
            errors.add("start_at", "The date of sending cannot be in the past.")
        elif start_at > now + MAX_AHEAD:
            errors.add("start_at", "Maximum date for scheduling is 30 days.")
    return {"validity": body.get("validity"), "tariff_code": body.get("tariff_code"), "start_at": start_at}


def _check_tariffs(st: BsgState, codes: Iterable[Any]) -> None:
    connected = set(st.cfg("tariffs"))
    if any(code is not None and code not in connected for code in codes):
        raise Reject(422, {"message": TARIFF_NOT_FOUND, "errors": []})


def _fill(text: str, contact: Mapping[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda m: str(contact.get(m.group(1), m.group(0))), text)


# ---------------------------------------------------------------- handlers


@dataclass
class Reply:
    status: int
    body: Any


@dataclass
class Call:
    """One authenticated API call."""

    st: BsgState
    account: Account
    body: Any
    raw: bytes
    path: str
    params: Mapping[str, str]
    path_params: Mapping[str, Any]
    now: datetime


def _body_object(call: Call) -> dict[str, Any]:
    if not isinstance(call.body, dict):
        errors = Errors()
        errors.add("body", "The request body must be a JSON object.")
        raise _invalid(errors)
    return call.body


def sms_send(call: Call) -> Reply:
    body = _body_object(call)
    errors = Errors()
    phones: Any = body.get("phones")  # a list once the checks below pass
    refs: set[str] = set()
    if _check_count(phones, "phones", errors):
        for i, item in enumerate(phones):
            if not isinstance(item, dict):
                errors.add(f"phones{i}", "This value should be of type object.")
                continue
            _check_phone(item.get("number"), f"phones{i}number", errors)
            _check_reference(item.get("reference_id"), f"phones{i}reference_id", refs, errors)
    _check_sender(body.get("sender"), "sender", errors)
    _check_text(body.get("text"), "text", errors)
    options = _options(body, call.now, errors)
    if errors:
        raise _invalid(errors)
    _check_tariffs(call.st, [body.get("tariff_code")])
    call.st.check_duplicate(call.account, call.path, call.raw, refs, call.now)
    rows = [{"phone": p["number"], "text": body["text"], "sender": body["sender"],
             "reference_id": p.get("reference_id")} for p in phones]  # fmt: skip
    camp = call.st.create(call.account, "send", rows, options, call.now)
    return Reply(200, {"data": call.st.campaign_view(camp, call.now, price=camp.price)})


def sms_send_groups(call: Call) -> Reply:
    body = _body_object(call)
    errors = Errors()
    groups: Any = body.get("groups")
    contacts: list[dict[str, Any]] = []
    if not isinstance(groups, list) or not groups:
        errors.add("groups", "This collection should contain 1 element or more.")
    else:
        for i, group_id in enumerate(groups):
            if not _is_int(group_id):
                errors.add(f"groups{i}", "This value should be of type integer.")
            elif group_id not in call.st.groups:
                errors.add(f"groups{i}", "Contact list not found.")
            else:
                contacts.extend(call.st.groups[group_id]["contacts"])
    unique = list({c["phone"]: c for c in contacts}.values())  # a contact in two lists gets one SMS
    if len(unique) > MAX_ITEMS:
        errors.add("groups", f"The lists hold {len(unique)} contacts; a campaign takes at most {MAX_ITEMS}.")
    _check_sender(body.get("sender"), "sender", errors)
    _check_text(body.get("text"), "text", errors)
    options = _options(body, call.now, errors)
    if errors:
        raise _invalid(errors)
    _check_tariffs(call.st, [body.get("tariff_code")])
    call.st.check_duplicate(call.account, call.path, call.raw, (), call.now)
    rows = [{"phone": c["phone"], "text": _fill(body["text"], c), "sender": body["sender"]} for c in unique]
    camp = call.st.create(call.account, "send-groups", rows, options, call.now, groups=list(groups))
    return Reply(200, {"data": call.st.campaign_view(camp, call.now, price=camp.price)})


def sms_send_individual(call: Call) -> Reply:
    body = _body_object(call)
    errors = Errors()
    messages: Any = body.get("messages")
    refs: set[str] = set()
    if _check_count(messages, "messages", errors):
        for i, item in enumerate(messages):
            if not isinstance(item, dict):
                errors.add(f"messages{i}", "This value should be of type object.")
                continue
            _check_phone(item.get("phone"), f"messages{i}phone", errors)
            _check_text(item.get("text"), f"messages{i}text", errors)
            _check_sender(item.get("sender"), f"messages{i}sender", errors)
            _check_reference(item.get("reference_id"), f"messages{i}reference_id", refs, errors)
            _check_range(item.get("tariff_code"), f"messages{i}tariff_code", TARIFF, errors)
    options = _options(body, call.now, errors)
    if errors:
        raise _invalid(errors)
    _check_tariffs(call.st, [body.get("tariff_code"), *(m.get("tariff_code") for m in messages)])
    call.st.check_duplicate(call.account, call.path, call.raw, refs, call.now)
    rows = [{key: m.get(key) for key in ("phone", "text", "sender", "reference_id")}
            | ({"tariff_code": m["tariff_code"]} if m.get("tariff_code") is not None else {})
            for m in messages]  # fmt: skip
    camp = call.st.create(call.account, "send-individual", rows, options, call.now)
    return Reply(200, {"data": call.st.campaign_view(camp, call.now, price=camp.price)})


def campaign_get(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.path_params["id"])
    return Reply(200, {"data": call.st.campaign_view(camp, call.now)})


def campaign_detail(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.path_params["id"])
    return Reply(200, {"data": call.st.detail_view(camp, call.now)})


def campaign_stop(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.path_params["id"])
    camp.stop_calls += 1
    if camp.status(call.now) not in STOPPABLE:
        raise Reject(422, {"message": INVALID_STATUS, "errors": []})
    camp.stopped_at = call.now
    return Reply(200, {"data": call.st.campaign_view(camp, call.now)})


def _query_int(params: Mapping[str, str], key: str, default: int | None, errors: Errors) -> int | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        errors.add(key.replace("[", "").replace("]", ""), "This value should be of type integer.")
        return default


def messages_list(call: Call) -> Reply:
    errors = Errors()
    offset = _query_int(call.params, "page[offset]", 0, errors) or 0
    limit = _query_int(call.params, "page[limit]", DEFAULT_PAGE_LIMIT, errors) or DEFAULT_PAGE_LIMIT
    if offset < 0:
        errors.add("pageoffset", "This value should be either positive or zero.")
    if not PAGE_LIMITS[0] <= limit <= PAGE_LIMITS[1]:
        errors.add("pagelimit", f"This value should be between {PAGE_LIMITS[0]} and {PAGE_LIMITS[1]}.")
    campaign_id = _query_int(call.params, "filter[campaign_id]", None, errors)
    message_id = _query_int(call.params, "filter[id]", None, errors)
    sort, way = call.params.get("sort", "id"), call.params.get("way", "asc")
    if sort not in ("id", "phone", "delivered"):
        errors.add("sort", "The value you selected is not a valid choice.")
    if way not in ("asc", "desc"):
        errors.add("way", "The value you selected is not a valid choice.")
    bounds = [_parse_ts(call.params[k]) if call.params.get(k) else None for k in ("filter[from]", "filter[to]")]
    if errors:
        raise _invalid(errors)
    reference = call.params.get("filter[reference_id]")
    rows = [
        call.st.message_view(camp, msg, call.now)
        for camp, msg in _messages(call, campaign_id, reference)
        if (message_id is None or msg.id == message_id) and _within(camp.created_at, bounds)
    ]
    key = {"id": "id", "phone": "phone", "delivered": "delivered_at"}[sort]
    rows.sort(key=lambda row: (row[key] is not None, row[key] or 0), reverse=way == "desc")
    page = rows[offset : offset + limit]
    return Reply(200, {"data": page, "meta": {"page": {"limit": limit, "offset": offset, "total": len(rows)}}})


def _messages(call: Call, campaign_id: int | None, reference: str | None) -> Iterable[tuple[Campaign, Message]]:
    if reference is not None:
        msg = call.st.by_reference.get((call.account.api_key, reference))
        if msg is not None:
            camp = call.st.campaigns[call.st.message_campaign[msg.id]]
            if campaign_id is None or camp.id == campaign_id:
                yield camp, msg
        return
    for camp in call.st.campaigns.values():
        if camp.owner == call.account.api_key and (campaign_id is None or camp.id == campaign_id):
            for msg in camp.messages:
                yield camp, msg


def _within(moment: datetime, bounds: list[datetime | None]) -> bool:
    start, end = bounds
    return (start is None or moment >= start) and (end is None or moment <= end)


def balance(call: Call) -> Reply:
    return Reply(200, {"data": {"balance": round(call.account.balance, 4), "currency": CURRENCY, "credit": 0.0}})


# ---------------------------------------------------------------- HTTP


Handler = Callable[[Call], Reply]


def _state(request: Request) -> tuple[SandboxState, BsgState]:
    sandbox: SandboxState = request.app.state.sandbox
    return sandbox, sandbox.providers[NAME]  # looked up per call: reset() replaces it


def _answer(request: Request, status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    request.scope["sandbox.code"] = status
    return JSONResponse(body, status_code=status, headers=headers)


async def _json_body(request: Request) -> tuple[Any, bytes]:
    raw = await request.body()
    try:
        return (json.loads(raw) if raw else None), raw
    except ValueError:
        return ..., raw  # Ellipsis: not JSON at all


def _api(handler: Handler, creates: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """An authenticated JSON endpoint around ``handler``; ``creates``: subject to the creation limits."""

    async def endpoint(request: Request) -> Response:
        sandbox, st = _state(request)
        now = sandbox.now()
        try:
            account, _ = st.account_for(request.headers.get("authorization"), now)
        except Reject as exc:
            st.stats["unauthorized"] += 1
            return _answer(request, exc.status, exc.body)
        body, raw = await _json_body(request)
        if body is ...:
            return _answer(request, 400, {"message": "The request body is not valid JSON."})
        if creates:
            refused = st.admit_create()
            if refused is not None:
                return _answer(request, refused.status, refused.body, st.retry_after_header())
        try:
            if creates and float(st.cfg("create_ms") or 0) > 0:
                # The wait comes before the handler, never inside it: check and creation stay atomic.
                await asyncio.sleep(float(st.cfg("create_ms")) / 1000)
                now = sandbox.now()
            call = Call(st, account, body, raw, request.url.path, request.query_params, request.path_params, now)
            try:
                with st.lock:
                    reply = handler(call)
            except Reject as exc:
                return _answer(request, exc.status, exc.body)
            return _answer(request, reply.status, reply.body)
        finally:
            if creates:
                st.limits["in_flight"] -= 1

    return endpoint


async def login(request: Request) -> Response:
    sandbox, st = _state(request)
    body, _ = await _json_body(request)
    key = body.get("api_key") if isinstance(body, dict) else None
    if not isinstance(key, str) or not key:
        errors = Errors()
        errors.add("api_key", "This value should not be blank.")
        return _answer(request, 422, {"message": INVALID_DATA, "errors": errors.fields})
    account = st.accounts.get(key)
    if account is None:
        st.stats["failed_logins"] += 1
        return _answer(request, 401, {"code": 401, "message": "Invalid credentials."})
    st.stats["logins"] += 1
    return _answer(request, 200, {"bearer": st.issue_token(account, sandbox.now())})


async def refresh(request: Request) -> Response:
    sandbox, st = _state(request)
    now = sandbox.now()
    try:
        account, claims = st.account_for(request.headers.get("authorization"), now)
    except Reject as exc:
        st.stats["unauthorized"] += 1
        return _answer(request, exc.status, exc.body)
    st.revoked.add(claims["jti"])  # the old token stops working, as with a real refresh
    st.stats["refreshes"] += 1
    return _answer(request, 200, {"bearer": st.issue_token(account, now)})


async def not_found(request: Request) -> Response:
    return _answer(request, 404, {"message": "Not Found"})


def new_state(sandbox: SandboxState) -> BsgState:
    return BsgState(sandbox)


def routes(sandbox: SandboxState) -> list[Route]:
    """The provider's API routes."""
    return [
        Route("/api/auth/login", login, methods=["POST"]),
        Route("/api/auth/refresh", refresh, methods=["POST"]),
        Route("/api/accounts/balance", _api(balance), methods=["GET"]),
        Route("/api/campaigns/sms/send", _api(sms_send, creates=True), methods=["POST"]),
        Route("/api/campaigns/sms/send-groups", _api(sms_send_groups, creates=True), methods=["POST"]),
        Route("/api/campaigns/sms/send-individual", _api(sms_send_individual, creates=True), methods=["POST"]),
        Route("/api/campaigns/{id:int}", _api(campaign_get), methods=["GET"]),
        Route("/api/campaigns/{id:int}/detail", _api(campaign_detail), methods=["GET"]),
        Route("/api/campaigns/{id:int}/stop", _api(campaign_stop), methods=["PATCH"]),
        Route("/api/messages", _api(messages_list), methods=["GET"]),
        Route("/api/{rest:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]


# ---------------------------------------------------------------- admin


async def admin_state(request: Request) -> Response:
    """``GET /_sandbox/bsg/state[?messages=false]``: accounts, auth counters, campaigns."""
    sandbox, st = _state(request)
    with_messages = request.query_params.get("messages", "true").lower() not in ("0", "false", "no")
    return JSONResponse(st.snapshot(sandbox.now(), with_messages))


async def admin_config(request: Request) -> Response:
    """``POST /_sandbox/bsg/config {"jwt_ttl": 5, ...}``: change BSG settings until the next reset."""
    sandbox, _ = _state(request)
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("send a JSON object")
        changes = {key if key.startswith(_CONFIG_PREFIX) else _CONFIG_PREFIX + key: value
                   for key, value in body.items()}  # fmt: skip
        unknown = sorted(set(changes) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"unknown BSG config keys: {unknown}; known: {sorted(DEFAULTS)}")
        for key in _LIMIT_KEYS & set(changes):
            value = changes[key]
            if not (value is None and key == "bsg_retry_after") and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
            ):
                raise ValueError(f"{key[len(_CONFIG_PREFIX):]!r} must be a number >= 0")
        sandbox.configure(changes)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({key[len(_CONFIG_PREFIX) :]: sandbox.config[key] for key in DEFAULTS})


async def admin_revoke(request: Request) -> Response:
    """``POST /_sandbox/bsg/revoke``: every token issued so far stops working (next call: 401)."""
    _, st = _state(request)
    st.revoked_upto = st.last_token_id
    return JSONResponse({"revoked_tokens_upto": st.revoked_upto})


async def admin_force_status(request: Request) -> Response:
    """``POST /_sandbox/bsg/campaigns/{id}/status {"status": "spam"|"paused"|"moderation"}``."""
    sandbox, st = _state(request)
    camp = st.campaigns.get(request.path_params["id"])
    if camp is None:
        return JSONResponse({"error": "no such campaign"}, status_code=404)
    try:
        status = (await request.json()).get("status")
    except (ValueError, AttributeError):
        status = None
    if status not in FORCEABLE:
        return JSONResponse({"error": f"status must be one of {list(FORCEABLE)}"}, status_code=400)
    camp.forced = (status, sandbox.now())
    return JSONResponse(st.campaign_view(camp, sandbox.now()))


async def admin_group(request: Request) -> Response:
    """``POST /_sandbox/bsg/groups {"id": 7, "name": "...", "contacts": [{"phone": 380..., "name": ...}]}``."""
    _, st = _state(request)
    try:
        spec = await request.json()
        group_id = int(spec["id"])
        contacts = [{**c, "phone": int(c["phone"])} for c in spec.get("contacts", [])]
    except (ValueError, KeyError, TypeError) as exc:
        return JSONResponse({"error": f"bad group: {exc}"}, status_code=400)
    st.groups[group_id] = {"name": str(spec.get("name", f"Group {group_id}")), "contacts": contacts}
    return JSONResponse({"id": group_id, "contacts": len(contacts)})


async def admin_account(request: Request) -> Response:
    """``POST /_sandbox/bsg/accounts {"api_key": "live_...", "balance": 100}``: add or replace an account."""
    _, st = _state(request)
    try:
        spec = await request.json()
        key = spec["api_key"]
        if not isinstance(key, str) or not key or not key.isprintable():
            raise ValueError("api_key must be a non-empty printable string")
        account = Account(key, float(spec.get("balance", DEFAULT_BALANCE)))
    except (ValueError, KeyError, TypeError) as exc:
        return JSONResponse({"error": f"bad account: {exc}"}, status_code=400)
    st.accounts[key] = account
    return JSONResponse({"api_key": "***" + key[-4:], "balance": account.balance})


def admin_routes(sandbox: SandboxState) -> list[Route]:
    """Sandbox-only routes under ``/_sandbox/bsg/``."""
    return [
        Route("/_sandbox/bsg/accounts", admin_account, methods=["POST"]),
        Route("/_sandbox/bsg/state", admin_state, methods=["GET"]),
        Route("/_sandbox/bsg/config", admin_config, methods=["POST"]),
        Route("/_sandbox/bsg/revoke", admin_revoke, methods=["POST"]),
        Route("/_sandbox/bsg/campaigns/{id:int}/status", admin_force_status, methods=["POST"]),
        Route("/_sandbox/bsg/groups", admin_group, methods=["POST"]),
    ]
