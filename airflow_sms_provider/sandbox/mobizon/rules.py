"""Rules from the documents: constants, limits, number and text rules, field validation."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from airflow_sms_provider.sandbox.mobizon.wire import (
    Invalid,
    _Errors,
    _int,
    _parse_ts,
    _present,
)
from airflow_sms_provider.sandbox.sms_parts import parts_of

NAME = "mobizon"
PATH_PREFIXES = ("/service/",)

SANDBOX_MOBIZON_API_KEY = "sandboxmobizon0123456789abcdef0123456789"
DEFAULT_BALANCE = 1000.0
DEFAULT_CURRENCY = "KZT"
DEFAULT_SENDER = "SANDBOX"  # the account's default sender ID
# "one of the shared service sender IDs will be used if possible" (message-sendSmsMessage.md,
# _other-glossary.md): what a message goes out with when its sender is not registered.
SHARED_SENDER = "SMS-INFO"
SHORT_LINK_BASE = "https://short.sandbox.invalid/"

# Config keys this module reads from SandboxState.config (create_app(**config)).
DEFAULTS: dict[str, Any] = {
    # The zone the account reads deferredToTs in (no document names one); a test sets another
    # to catch a client that writes UTC wall time for an account in UTC+5 (prefixed: the key is global).
    "mobizon_account_timezone": "UTC",
    "serving_domain": None,  # accounts whose domain differs get code 13
    "taskqueue_min_interval": 1.0,  # real seconds between two polls of one task
    "send_rate": 100.0,  # messages per simulated second
    "send_start_delay": 1.0,  # simulated seconds from approval to the first message
    "delivery_delay": 5.0,  # simulated seconds from ACCEPTD to the final status
    "moderation_delay": 60.0,  # simulated seconds a "moderate" campaign waits
    "task_rows_per_second": 1000,  # background import speed (simulated)
    "counters_delay": 2.0,  # simulated seconds over which an import reaches counters.totalMsgNum
    "add_recipients_hold": 0.0,  # real seconds addRecipients keeps the campaign locked
    "segment_price": 10.0,  # account currency per segment
    "stop_list_suffixes": ("0000",),
    "restricted_prefixes": (),
    "unknown_operator_prefixes": ("999",),
    "unsupported_operator_prefixes": ("888",),  # per-recipient code 8
    "system_error_prefixes": ("77099",),  # per-recipient code 99
    "short_link_error_prefixes": ("77051",),  # code 51 in a campaign that shortens links
    "deleted_prefixes": ("77077",),  # final message status DELETED
    "partial_prefixes": ("77055",),  # a multi-part message is PDLIVRD until its validity ends
    # Webhooks (webhooks.py): the documented schedule; tests shorten the real waits.
    "webhook_attempts": 10,  # "up to 10 attempts"
    "webhook_retry_step": 60.0,  # simulated seconds the wait grows by per attempt ("by 1 minute")
    "webhook_timeout": 5.0,  # real seconds the handler has to answer 2xx
    "webhook_tick": 0.05,  # real seconds between two scans for final statuses
    "webhook_duplicate_every": 0,  # N > 0: every Nth delivered event is sent once more (a lost 200)
    "webhook_reverse": False,  # True: each scan's events newest first (out of order)
}


# Per-recipient codes of campaign/addRecipients.
R_ADDED, R_EMPTY, R_NO_NUMBER, R_FORMAT, R_DUPLICATE = 0, 1, 2, 3, 4
R_STOP_LIST, R_COUNTRY, R_OPERATOR, R_PLACEHOLDERS = 5, 6, 7, 20
R_NO_CARD, R_NO_MOBILE, R_NO_CONTACT = 30, 31, 32
R_UNSUPPORTED, R_SHORT_LINK, R_SYSTEM = 8, 51, 99
RECIPIENT_MESSAGES = {
    R_EMPTY: "the phone number is empty",
    R_NO_NUMBER: "no phone number in the data",
    R_FORMAT: "not an international phone number",
    R_DUPLICATE: "already in the campaign",
    R_STOP_LIST: "the number is in the stop list",
    R_COUNTRY: "sending to this country is restricted",
    R_OPERATOR: "unknown operator or country",
    R_PLACEHOLDERS: "placeholder values are missing",
    R_UNSUPPORTED: "sending to this operator is not supported",
    R_SHORT_LINK: "a short link cannot be created at the moment",
    R_SYSTEM: "system error while adding the number",
}

TASK_WAITING, TASK_RUNNING, TASK_DONE, TASK_REJECTED = 0, 1, 2, 3


MIN_DEFER, MAX_DEFER = timedelta(hours=1), timedelta(days=14)
DELETE_MIN_LEAD = timedelta(minutes=5)
MAX_RECIPIENTS = 500
MAX_IDS = 100
PAGE_SIZES = (25, 50, 100)
RATE_PERIODS = (60, 3600, 86400)
MAX_RATE = 100.0  # messages per second, whatever rateLimit says
FINAL_BY_SUFFIX = (("13", "UNDELIV"), ("66", "EXPIRED"), ("99", "REJECTD"))
FINAL_STATUSES = frozenset({"UNDELIV", "REJECTD", "DELIVRD", "EXPIRED", "DELETED"})
COUNTER_STATUSES = ("NEW", "ACCEPTD", "DELIVRD", "REJECTD", "EXPIRED", "UNDELIV", "DELETED", "UNKNOWN", "PDLIVRD")
NOT_YET_SENT = ("NEW", "MODERATION", "READY_FOR_SEND")
MODERATE_WORD, DECLINE_WORD = "moderate", "decline"
DECLINE_COMMENT = "Sandbox moderator: declined because the text contains the word 'decline'."
FILE_ENCODINGS = {
    "KOI8-R": "koi8_r", "CP866": "cp866", "WINDOWS-1252": "cp1252", "WINDOWS-1251": "cp1251",
    "UTF-8": "utf-8-sig", "ASCII": "ascii", "ISO-8859-1": "latin-1", "UCS-2": "utf-16",
}  # fmt: skip
COUNTRY_PREFIXES = (("77", "KZ"), ("7", "RU"), ("380", "UA"), ("998", "UZ"), ("55", "BR"), ("49", "DE"), ("1", "US"))

CONTACT_CARDS: dict[str, dict[str, str | None]] = {
    "101": {"mobile": "77010000101", "work": "77020000101", "name": "Aigerim", "city": "Almaty"},
    "102": {"mobile": "77010000102", "name": "Daniyar", "city": "Astana"},
    "103": {"mobile": "77010000103", "name": "Olga", "city": "Almaty"},
    "104": {"mobile": "77010000104", "name": "Marat", "city": "Shymkent"},
    "105": {"mobile": None, "name": "Nobody", "city": "Aktau"},
}
CONTACT_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "1": ("Sandbox customers", ("101", "102", "103")),
    "2": ("Sandbox staff", ("103", "104", "105")),
}

PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_-]+)\}")
LINK = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
SENDER = re.compile(r"[A-Za-z0-9 ._-]{1,11}|\+?[0-9]{1,15}")



segments = parts_of
"""SMS parts of a text (Mobizon's ``segNum``): GSM-7 160 / 153 per part, else UCS-2 70 / 67."""


def fill_placeholders(text: str, values: Mapping[str, Any], flag: int) -> str | None:
    """Template text for one recipient; None when a value is missing and ``flag`` is 3 (reject)."""
    missing = [name for name in PLACEHOLDER.findall(text) if name not in values]
    if missing and flag == 3:
        return None

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return str(values[name])
        return "" if flag == 2 else match.group(0)

    return PLACEHOLDER.sub(replace, text)


def final_status(number: str) -> str:
    """The delivery outcome the sandbox gives a number (documented suffix rules)."""
    return next((status for suffix, status in FINAL_BY_SUFFIX if number.endswith(suffix)), "DELIVRD")


def country_of(number: str) -> str | None:
    return next((code for prefix, code in COUNTRY_PREFIXES if number.startswith(prefix)), None)


# ---------------------------------------------------------------- validation of campaign fields


def _flag(values: Mapping[str, Any], key: str, default: int = 0) -> int:
    number = _int(values.get(key), default)
    if number not in (0, 1):
        raise Invalid(key, f"{key} must be 0 or 1")
    return number


def _validate_deferred(value: Any, now: datetime, zone: tzinfo = timezone.utc) -> datetime | None:
    if not _present(value):
        return None
    moment = _parse_ts(value, zone) if isinstance(value, str) else None
    if moment is None:
        raise Invalid("deferredToTs", "deferredToTs must be in the format YYYY-MM-DD HH:MM:SS")
    if not now + MIN_DEFER <= moment <= now + MAX_DEFER:
        raise Invalid("deferredToTs", "deferredToTs must be between 1 hour and 14 days from now")
    return moment


def _validate_sender(value: Any) -> str:
    if not _present(value):
        return ""
    if not isinstance(value, str) or not SENDER.fullmatch(value):
        raise Invalid("from", "from must be up to 11 Latin letters/digits or up to 15 digits")
    return value


def _validate_rate(values: Mapping[str, Any]) -> tuple[int | None, int | None]:
    limit, period = values.get("rateLimit"), values.get("ratePeriod")
    if not _present(limit) and not _present(period):
        return None, None
    limit_n, period_n = _int(limit), _int(period)
    if limit_n is None or limit_n < 1:
        raise Invalid("rateLimit", "rateLimit must be a positive integer")
    if period_n not in RATE_PERIODS:
        raise Invalid("ratePeriod", "ratePeriod must be 60, 3600 or 86400")
    if limit_n / period_n > MAX_RATE:
        raise Invalid("rateLimit", "the sending speed cannot exceed 100 messages per second")
    return limit_n, period_n


def _validate_text(value: Any, campaign_type: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("text", "text cannot be blank")
    if campaign_type == 3 and not PLACEHOLDER.search(value):
        raise Invalid("text", "a template campaign text needs at least one {placeholder}")
    return value


def _validate_name(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 255:
        raise Invalid("name", "name must be at most 255 characters")
    return value


def _validate_validity(value: Any) -> int:
    number = _int(value, 1440)
    if number is None or not 60 <= number <= 1440:
        raise Invalid("validity", "validity must be between 60 and 1440 minutes")
    return number


def campaign_fields(
    values: Mapping[str, Any], now: datetime, campaign_type: int | None = None, zone: tzinfo = timezone.utc
) -> dict[str, Any]:
    """Validate campaign/create's ``data`` (or sendSmsMessage's params); Campaign keyword fields."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}

    def check(key: str, func: Callable[[], Any]) -> None:
        try:
            out[key] = func()
        except Invalid as exc:
            errors.update(exc.reply.data)

    if campaign_type is None:
        campaign_type = _int(values.get("type"), 2) or 0
        if campaign_type not in (1, 2, 3):
            errors["type"] = "type must be 1, 2 or 3"
    out["type"] = campaign_type
    check("text", lambda: _validate_text(values.get("text"), campaign_type))
    check("name", lambda: _validate_name(values.get("name")))
    check("sender", lambda: _validate_sender(values.get("from")))
    check("rate", lambda: _validate_rate(values))
    check("deferred_to", lambda: _validate_deferred(values.get("deferredToTs"), now, zone))
    check("validity", lambda: _validate_validity(values.get("validity")))
    check("mclass", lambda: _flag(values, "mclass", 1))
    check("shorten_links", lambda: _flag(values, "shortenLinks"))
    check("track_recipients", lambda: _flag(values, "trackShortLinkRecipients"))
    if errors:
        raise _Errors(errors)
    out["rate_limit"], out["rate_period"] = out.pop("rate")
    return out
