"""BSG wire format: limits, message texts, timestamps, error answers, JWTs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

# Re-exported: the BSG rules, state and handlers read them from here.
from airflow_sms_provider.sandbox.sms_parts import encoding_of as encoding_of
from airflow_sms_provider.sandbox.sms_parts import parts_of as parts_of

NAME = "bsg"
PATH_PREFIXES = ("/api/",)

SANDBOX_BSG_API_KEY = "test_sandboxbsg0123456789abcdefABCDEF"
DEFAULT_BALANCE = 100.0
CURRENCY = "USD"


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
# GET /api/messages' filters in the spec; any other filter[...] is refused (handlers.messages_list).
MESSAGE_FILTERS = ("filter[id]", "filter[campaign_id]", "filter[reference_id]", "filter[from]", "filter[to]")
# GET /api/campaigns' filters and search in the spec (handlers.campaigns_list); its page limit is 30-500.
CAMPAIGN_FILTERS = ("filter[from]", "filter[to]", "filter[type]", "search[field]", "search[value]")
CAMPAIGN_PAGE_LIMITS = (30, 500)
CAMPAIGN_SORTS = ("id", "sender", "type", "date", "status")
# Campaign calls of channels other than SMS: refused with a 422 that names the limit.
OTHER_CHANNELS = ("rcs/send", "rcs/send-groups", "viber/send", "whatsapp/send")
NOT_EMULATED_CHANNEL = "The sandbox emulates the sms channel only."
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
# The seed (send-groups text): "specify the identifier(s) of the contact field(s) in the form {field_id}".
_FIELD_PLACEHOLDER = re.compile(r"\{([0-9]+)\}")


def _ts(moment: datetime | None, zone: tzinfo = timezone.utc) -> str | None:
    """``yyyy-mm-dd hh:mm:ss`` wall time in ``zone`` (the account's)."""
    return None if moment is None else moment.astimezone(zone).strftime(TS_FORMAT)


def _parse_ts(value: Any, zone: tzinfo = timezone.utc) -> datetime | None:
    """``yyyy-mm-dd hh:mm:ss`` or ISO 8601 (what a generated SDK sends for a datetime).

    A time without an offset is wall time in ``zone``: the account's zone (``bsg_account_timezone``).
    """
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


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
