"""Mobizon on the wire: build requests and parse answers. No I/O, no Airflow.

URL: ``{base}/service/{module}/{method}?output=json&api=v1&apiKey={key}``. The
module is lower-case; the method keeps the spelling of the provider's docs and
examples (``campaign/getInfo``, ``message/sendSmsMessage``), which the API treats
case-insensitively. Bodies are ``application/x-www-form-urlencoded`` written
exactly as PHP's ``http_build_query`` writes them; files go as multipart.
Answers are ``{"code", "data", "message"}``, mostly with HTTP 200 even for errors.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import orjson

from airflow_sms_provider.exceptions import (
    SmsAuthError,
    SmsConflictError,
    SmsFatalError,
    SmsLockedError,
    SmsNotFoundError,
    SmsProtocolError,
    SmsRateLimitedError,
    SmsServerError,
    SmsValidationError,
    SmsWrongDomainError,
)
from airflow_sms_provider.recipients import sms_parts
from airflow_sms_provider.redaction import redact_text
from airflow_sms_provider.transport import Request, Response

PROVIDER = "mobizon"
API_VERSION = "v1"

# Limits from the reference.
MAX_RECIPIENTS_PER_CALL = 500
MAX_STATUS_IDS_PER_CALL = 100
# The reference gives no size limit for recipientsFile. PHP's default post_max_size is 8 MB,
# so bigger audiences go up as several files of at most this many bytes (an operator setting).
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
# Ours: the largest answer (a 100-item page, 500 recipient results) is far below this; a body
# this big is not the API talking, and parsing it would cost memory for nothing.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
PAGE_SIZES = (25, 50, 100)
# Decision (the reference names no limit): a message of at most 10 SMS parts, 1,530 GSM-7 or
# 670 UCS-2 characters; longer texts are almost always a template mistake and bill 10x per number.
MAX_TEXT_PARTS = 10


def filled_text_problem(filled: str) -> str | None:
    """What is wrong with a template text once Mobizon fills a row's values in, or None.

    The one per-row rule: the send (``campaigns.mobizon_upload``) and the estimate both use it.
    """
    encoding, chars, parts = sms_parts(filled)
    if parts <= MAX_TEXT_PARTS:
        return None
    return f"{chars} {encoding} characters, {parts} SMS parts; Mobizon sends at most {MAX_TEXT_PARTS}"
# Decision (sender IDs must be registered; the reference gives no syntax): the usual SMS rule,
# up to 11 Latin letters, digits, spaces, '.', '-' or '_', or up to 15 digits.
SENDER_PATTERN = r"[A-Za-z0-9 ._-]{1,11}|\+?[0-9]{1,15}"
TASKQUEUE_MIN_POLL_INTERVAL = 1.0
DEFERRED_MIN_SECONDS = 3600
DEFERRED_MAX_SECONDS = 14 * 24 * 3600
VALIDITY_MINUTES = (60, 1440)
CAMPAIGN_TYPES = {1: "single", 2: "bulk", 3: "template"}
RATE_PERIODS = (60, 3600, 86400)
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

# Response codes (mobizon/_other-apiCode.md).
OK = 0
VALIDATION = 1
NOT_FOUND = 2
APP_ERROR = 3
AUTH = 8
METHOD_ACCESS = 9
DATA_UPDATE = 10
MISSING_PARAM = 11
INCORRECT_PARAM = 12
WRONG_DOMAIN = 13
BLOCKED = 14
OPERATION_ERROR = 15
RATE_LIMITED = 30
PARTIALLY_DONE = 98
NOTHING_DONE = 99
BACKGROUND = 100
SERVICE_ERROR = 999

# Per-recipient result codes of campaign/addRecipients.
RECIPIENT_ADDED = 0
RECIPIENT_DUPLICATE = 4
RECIPIENT_CODES = {
    0: "added",
    1: "empty number",
    2: "no number in the data",
    3: "not an international number",
    4: "already in the campaign",
    5: "in the stop list",
    6: "destination country restricted by account settings",
    7: "operator or country unknown",
    8: "operator not supported",
    20: "placeholders missing from the data",
    30: "contact card not found",
    31: "contact card has no mobile number",
    32: "contact not found",
    51: "short link could not be created",
    99: "system error",
}

# TaskQueue statuses.
TASK_WAITING, TASK_RUNNING, TASK_DONE, TASK_REJECTED = 0, 1, 2, 3

# Campaign commonStatus values.
CAMPAIGN_DONE = "DONE"
CAMPAIGN_DECLINED = "DECLINED"
# moderationStatus of a campaign sent without moderation (campaign/get); sendSmsMessage status 2.
AUTO_READY_FOR_SEND = "AUTO_READY_FOR_SEND"
CAMPAIGN_STATUSES = (
    "NEW", "MODERATION", "DECLINED", "READY_FOR_SEND", "AUTO_READY_FOR_SEND", "RUNNING", "SENT", "DONE",
)

# The order a campaign passes its commonStatus values in (campaign-getInfo.md: MODERATION, then
# READY_FOR_SEND "ready to be sent but sending has not yet started", RUNNING "in the process of
# sending", SENT "fully sent but not all messages have received delivery reports", DONE "fully
# processed"). DECLINED leaves this path: it is reached only by being it.
CAMPAIGN_ORDER: Mapping[str, int] = {
    "NEW": 0, "MODERATION": 1, "READY_FOR_SEND": 2, "AUTO_READY_FOR_SEND": 2, "RUNNING": 3, "SENT": 4, "DONE": 5,
}  # fmt: skip


def status_reached(status: str, targets: Iterable[str]) -> bool:
    """Whether a campaign in ``status`` has reached or passed one of ``targets``.

    The one place campaign statuses are compared: ``SENT`` is reached by a campaign that is
    already ``DONE``, so a wait for SENT cannot miss it between two polls. A status off the
    path (DECLINED, or one this table does not know) reaches only itself.
    """
    rank = CAMPAIGN_ORDER.get(status)
    for target in targets:
        if status == target:
            return True
        wanted = CAMPAIGN_ORDER.get(target)
        if rank is not None and wanted is not None and rank >= wanted:
            return True
    return False


# SMS statuses and which are final (mobizon/_other-smsStatus.md).
SMS_FINAL_STATUSES = frozenset({"UNDELIV", "REJECTD", "DELIVRD", "EXPIRED", "DELETED"})
SMS_STATUSES = ("NEW", "ENQUEUD", "ACCEPTD", "UNDELIV", "REJECTD", "PDLIVRD", "DELIVRD", "EXPIRED", "DELETED")

# Fields whose values arrive as strings but are numbers.
_INT_FIELDS = frozenset(
    {
        "id", "campaignId", "messageId", "code", "status", "progress", "type", "totalItemCount",
        "segNum", "rateLimit", "ratePeriod", "isDeleted", "validity", "mclass", "cardsCnt",
        "trackShortLinkRecipients", "creationWay", "clickCnt", "redirectCnt", "contact",
        "recipientsRejected",
    }
)
_FLOAT_FIELDS = frozenset({"balance", "segUserBuy"})


# ---------------------------------------------------------------- encoding


def _quote_text(text: str) -> str:
    # PHP's urlencode leaves only [A-Za-z0-9_.-] alone; Python also keeps '~'.
    return quote_plus(text, safe="").replace("~", "%7E")


def _php_quote(value: Any) -> str:
    if value is True:
        return "1"
    if value is False:
        return "0"
    text = value if isinstance(value, str) else str(value)
    # Fast path for the common value (phone numbers, ids): ASCII letters and digits need no escaping.
    if text.isalnum() and text.isascii():
        return text
    return _quote_text(text)


@functools.lru_cache(maxsize=4096)
def _quote_name(name: str) -> str:
    # Key names repeat on every call (recipient fields, placeholders): escape each once.
    return _php_quote(name)


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]]) -> None:
    if value is None:
        return  # http_build_query drops nulls
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}[{key}]" if prefix else str(key), item, out)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _flatten(f"{prefix}[{index}]", item, out)
    else:
        out.append((prefix, value))


def flatten_params(params: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """PHP-style flat keys for nested params: ``{"data": {"text": "x"}}`` -> ``[("data[text]", "x")]``."""
    out: list[tuple[str, Any]] = []
    _flatten("", params, out)
    return out


@functools.lru_cache(maxsize=64)
def _indexed_keys(prefix: str, count: int = MAX_RECIPIENTS_PER_CALL) -> tuple[str, ...]:
    """``prefix%5B0%5D=``, ``prefix%5B1%5D=``, ...: the escaped keys of a list's first ``count`` items."""
    return tuple(f"{prefix}%5B{index}%5D=" for index in range(count))


def _encode(prefix: str, value: Any, out: list[str]) -> None:
    """Append ``key=value`` pieces; ``prefix`` is already escaped.

    Escaping is per character, so ``quote("a[b]") == quote("a") + "%5B" + quote("b") + "%5D"``:
    building escaped keys piece by piece gives the bytes :func:`flatten_params` plus quoting
    would, without re-escaping the same prefix for each of 500 recipients.
    """
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = _quote_name(str(key))
            _encode(f"{prefix}%5B{name}%5D" if prefix else name, item, out)
    elif isinstance(value, (list, tuple)):
        try:
            joined = "".join(value)  # str.join takes only str items (subclasses too), as the loop's isinstance
        except TypeError:  # a template row (a dict) or an int among them: the loop below
            joined = ""
        if joined.isalnum() and joined.isascii():
            # A portion of plain numbers (the bulk upload): one check of all 500 in C, and each piece is
            # a cached "prefix[index]=" plus the item (map stops at the shorter); the same pieces as the
            # loop below ("" too: the loop would quote it to "").
            keys = _indexed_keys(prefix) if len(value) <= MAX_RECIPIENTS_PER_CALL else _indexed_keys(prefix, len(value))
            out.extend(map(operator.add, keys, value))
            return
        for index, item in enumerate(value):
            if isinstance(item, str):  # a plain number: no recursion, and digits need no escaping
                out.append(f"{prefix}%5B{index}%5D={item if item.isalnum() and item.isascii() else _php_quote(item)}")
            else:
                _encode(f"{prefix}%5B{index}%5D", item, out)
    else:
        out.append(f"{prefix}={_php_quote(value)}")


def http_build_query(params: Mapping[str, Any]) -> str:
    """Encode ``params`` byte for byte as PHP's ``http_build_query`` does."""
    out: list[str] = []
    _encode("", params, out)
    return "&".join(out)


# ---------------------------------------------------------------- requests


def build(
    module: str,
    method: str,
    api_key: str,
    params: Mapping[str, Any] | None = None,
    *,
    files: Mapping[str, tuple[str, Any, str]] | None = None,
    idempotent: bool = True,
) -> Request:
    """The request for ``module/method``; GET without parameters, POST with them (as the PHP client)."""
    path = f"/service/{module.lower()}/{method}"
    query = (("output", "json"), ("api", API_VERSION), ("apiKey", api_key))
    label = f"mobizon {module.lower()}/{method}"
    if files:
        form = {key: str(_php_quote(v) if isinstance(v, bool) else v) for key, v in flatten_params(params or {})}
        return Request("POST", path, label, query, files=files, form=form, idempotent=idempotent)
    if not params:
        return Request("GET", path, label, query, idempotent=idempotent)
    body = http_build_query(params).encode("ascii")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return Request("POST", path, label, query, headers, content=body, idempotent=idempotent)


def recipients_param(rows: Iterable[str | Mapping[str, Any]]) -> list[Any]:
    """``recipients`` for addRecipients: plain numbers, or dicts with ``recipient`` and placeholder values."""
    return [row if type(row) is str or isinstance(row, Mapping) else str(row) for row in rows]


# ---------------------------------------------------------------- answers


@dataclass(frozen=True)
class Answer:
    """A successful (or per-item partial) answer: code 0, 98, 99 or 100."""

    code: int
    data: Any
    message: str

    @property
    def task_id(self) -> int | None:
        """The background task id when the call started one (code 100)."""
        return int(self.data) if self.code == BACKGROUND else None


@functools.lru_cache(maxsize=1024)
def _number_kind(key: str) -> type | None:
    """``int``/``float`` for the fields Mobizon sends as strings but are numbers, else None."""
    if key in _INT_FIELDS or (key.startswith("total") and key.endswith(("Num", "Cnt"))):
        return int
    if key in _FLOAT_FIELDS or (key.startswith("total") and key.endswith("Cost")):
        return float
    return None


def _convert(kind: type, text: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        return text  # not a number after all: keep the text


def normalize(value: Any) -> Any:
    """Convert the numbers Mobizon sends as strings in known numeric fields."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(item, str):
                kind = _number_kind(key) if isinstance(key, str) else None
                if kind is not None:
                    item = _convert(kind, item)
            elif isinstance(item, (dict, list)):
                item = normalize(item)
            out[key] = item
        return out
    if isinstance(value, list):
        return [normalize(item) if isinstance(item, (dict, list)) else item for item in value]
    return value


def _field_errors(data: Any) -> str:
    if isinstance(data, Mapping) and data:
        return "; ".join(f"{key}: {value}" for key, value in data.items())
    if isinstance(data, list) and data:
        return "; ".join(str(item) for item in data)
    return ""


def loads(content: bytes) -> Any:
    """``json.loads(content)``, by orjson when it gives the same.

    An addRecipients answer is ~43 KB of JSON per portion of 500: orjson (C) reads it in
    less than half the time. It refuses some of what ``json`` reads (NaN, lone surrogates,
    an exponent past a double) and reads an integer of 19 digits or more as a float where
    ``json`` keeps it exact: those go to ``json`` (a run of 19 digits not right after a
    ``"``, so possibly a number, is found by one translate and one search in C), so every
    value and every error is what ``json`` gives.
    """
    marked = content.translate(_DIGITS_TO_9)
    if _NUMBER_DIGIT_RUN in marked or marked.startswith(_LONG_DIGIT_RUN):
        return json.loads(content)
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return json.loads(content)


# Every digit byte to "9", '"' kept, every other byte to " ": a run of 19 digits becomes _LONG_DIGIT_RUN.
# Only a run after something other than '"' can be (part of) a number: one right after a quote opens a
# string (a hex uuid such as the sandbox's zero-padded ones, in every message/list item), and orjson
# reads strings exactly as json does, so those pages keep orjson.
_DIGITS_TO_9 = bytes(0x39 if 0x30 <= byte <= 0x39 else 0x22 if byte == 0x22 else 0x20 for byte in range(256))
_LONG_DIGIT_RUN = b"9" * 19
_NUMBER_DIGIT_RUN = b" " + _LONG_DIGIT_RUN


def parse(resp: Response, *, locked_is_conflict: bool = False, convert_numbers: bool = True) -> Answer:
    """Parse an answer or raise the typed error its code stands for.

    Code 10 usually means "busy, try again"; for campaign/delete it means the
    campaign's status forbids the operation, which ``locked_is_conflict`` says.
    ``convert_numbers=False`` leaves numeric strings as sent: the bulk upload path reads
    only two fields of each of 500 results and converts those itself.
    """
    if resp.status_code == 429:
        raise SmsRateLimitedError("mobizon: HTTP 429 too many requests", provider=PROVIDER, code=429)
    if resp.status_code >= 500:
        raise SmsServerError(f"mobizon: HTTP {resp.status_code}", provider=PROVIDER, code=resp.status_code)
    if len(resp.content) > MAX_RESPONSE_BYTES:
        raise SmsProtocolError(
            f"mobizon: answer of {len(resp.content)} bytes is over the {MAX_RESPONSE_BYTES}-byte limit",
            provider=PROVIDER,
        )
    try:
        doc = loads(resp.content)
        code = int(doc["code"])
    except (ValueError, KeyError, TypeError):
        # A proxy's error page may echo the request URL, API key included.
        excerpt = redact_text(resp.content[:4096].decode("utf-8", "replace"))[:120]  # redact, then cut
        raise SmsProtocolError(
            f"mobizon: HTTP {resp.status_code} with a body that is not the API's JSON envelope: {excerpt!r}",
            provider=PROVIDER,
        ) from None
    if code in (OK, PARTIALLY_DONE, NOTHING_DONE, BACKGROUND):
        data = normalize(doc.get("data")) if convert_numbers else doc.get("data")
        return Answer(code, data, str(doc.get("message") or ""))
    error = _answer_error(code, doc, convert_numbers, locked_is_conflict)
    # Not raised with the answer in a local: a traceback that prints frame locals (Airflow 3.0's
    # task logs, rich tracebacks, capture_locals) would show an echoed key as the provider wrote it.
    del doc
    raise error


def _answer_error(code: int, doc: Mapping[str, Any], convert_numbers: bool, locked_is_conflict: bool) -> Exception:
    data = normalize(doc.get("data")) if convert_numbers else doc.get("data")
    message = str(doc.get("message") or "")
    if code == DATA_UPDATE and locked_is_conflict:
        return SmsConflictError(f"mobizon code 10: {message}", provider=PROVIDER, code=code, details=data)
    return error_for(code, data, message)


def error_for(code: int, data: Any, message: str) -> Exception:
    """The exception for an error code (see docs/mobizon.md for what operators do with each)."""
    kw: dict[str, Any] = {"provider": PROVIDER, "code": code, "details": data}
    text = f"mobizon code {code}: {message}".rstrip(": ")
    if code in (AUTH, BLOCKED, METHOD_ACCESS):
        return SmsAuthError(text, **kw)
    if code == WRONG_DOMAIN:
        domain = str(data.get("domain", data) if isinstance(data, Mapping) else data)
        return SmsWrongDomainError(
            f"mobizon code 13: this account is served by {domain}; set the connection host to {domain}",
            domain=domain,
            **kw,
        )
    if code in (VALIDATION, MISSING_PARAM, INCORRECT_PARAM):
        details = _field_errors(data)
        field = next(iter(data), None) if isinstance(data, Mapping) and data else None
        return SmsValidationError(f"{text} ({details})" if details else text, field=field, **kw)
    if code == NOT_FOUND:
        return SmsNotFoundError(text, **kw)
    if code == DATA_UPDATE:
        return SmsLockedError(text, **kw)
    if code == RATE_LIMITED:
        return SmsRateLimitedError(text, **kw)
    if code in (APP_ERROR, SERVICE_ERROR):
        return SmsServerError(text, **kw)
    if code == OPERATION_ERROR:
        return SmsConflictError(text, **kw)
    return SmsFatalError(text, **kw)


# ---------------------------------------------------------------- waiting decisions
# Shared by the sensors (poke) and the triggers (deferred), so both decide alike.

WAITING, SUCCEEDED, FAILED = "waiting", "succeeded", "failed"


def task_outcome(data: Mapping[str, Any]) -> tuple[str, str]:
    """Decide on a taskqueue/getStatus answer: (WAITING|SUCCEEDED|FAILED, human message)."""
    status = int(data.get("status", TASK_WAITING))
    progress = data.get("progress", 0)
    if status == TASK_DONE:
        return SUCCEEDED, f"background task completed ({progress}%)"
    if status == TASK_REJECTED:
        return FAILED, f"background task was rejected by Mobizon at {progress}%"
    state = "waiting to start" if status == TASK_WAITING else "running"
    return WAITING, f"background task {state}, {progress}% done"


def campaign_outcome(
    data: Mapping[str, Any], target_statuses: Iterable[str], failed_statuses: Iterable[str]
) -> tuple[str, str]:
    """Decide on a campaign/get answer: (WAITING|SUCCEEDED|FAILED, human message).

    A target is met when the status reached or passed it (:func:`status_reached`).
    """
    status = str(data.get("commonStatus") or "")
    if status in set(failed_statuses):
        comment = data.get("globalComment") or "no comment"
        return FAILED, f"campaign {data.get('id')} is {status}: {comment}"
    if status_reached(status, target_statuses):
        return SUCCEEDED, f"campaign {data.get('id')} reached {status}"
    return WAITING, f"campaign {data.get('id')} is {status or 'unknown'}"
