"""Mobizon on the wire: build requests and parse answers. No I/O, no Airflow.

URL: ``{base}/service/{module}/{method}?output=json&api=v1&apiKey={key}``. The
module is lower-case; the method keeps the spelling of the provider's docs and
examples (``campaign/getInfo``, ``message/sendSmsMessage``), which the API treats
case-insensitively. Bodies are ``application/x-www-form-urlencoded`` written
exactly as PHP's ``http_build_query`` writes them; files go as multipart.
Answers are ``{"code", "data", "message"}``, mostly with HTTP 200 even for errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

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
from airflow_sms_provider.transport import Request, Response

PROVIDER = "mobizon"
API_VERSION = "v1"

# Limits from the reference.
MAX_RECIPIENTS_PER_CALL = 500
MAX_STATUS_IDS_PER_CALL = 100
PAGE_SIZES = (25, 50, 100)
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
CAMPAIGN_STATUSES = (
    "NEW", "MODERATION", "DECLINED", "READY_FOR_SEND", "AUTO_READY_FOR_SEND", "RUNNING", "SENT", "DONE",
)

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


def _php_quote(value: Any) -> str:
    if value is True:
        return "1"
    if value is False:
        return "0"
    # PHP's urlencode leaves only [A-Za-z0-9_.-] alone; Python also keeps '~'.
    return quote_plus(str(value), safe="").replace("~", "%7E")


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


def http_build_query(params: Mapping[str, Any]) -> str:
    """Encode ``params`` byte for byte as PHP's ``http_build_query`` does."""
    return "&".join(f"{_php_quote(key)}={_php_quote(value)}" for key, value in flatten_params(params))


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
    return [row if isinstance(row, Mapping) else str(row) for row in rows]


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


def _to_number(key: str, value: Any) -> Any:
    if isinstance(value, str):
        try:
            if key in _INT_FIELDS or (key.startswith("total") and key.endswith(("Num", "Cnt"))):
                return int(value)
            if key in _FLOAT_FIELDS or (key.startswith("total") and key.endswith("Cost")):
                return float(value)
        except ValueError:
            return value
    return normalize(value)


def normalize(value: Any) -> Any:
    """Convert the numbers Mobizon sends as strings in known numeric fields."""
    if isinstance(value, dict):
        return {key: _to_number(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    return value


def _field_errors(data: Any) -> str:
    if isinstance(data, Mapping) and data:
        return "; ".join(f"{key}: {value}" for key, value in data.items())
    if isinstance(data, list) and data:
        return "; ".join(str(item) for item in data)
    return ""


def parse(resp: Response, *, locked_is_conflict: bool = False) -> Answer:
    """Parse an answer or raise the typed error its code stands for.

    Code 10 usually means "busy, try again"; for campaign/delete it means the
    campaign's status forbids the operation, which ``locked_is_conflict`` says.
    """
    if resp.status_code == 429:
        raise SmsRateLimitedError("mobizon: HTTP 429 too many requests", provider=PROVIDER, code=429)
    if resp.status_code >= 500:
        raise SmsServerError(f"mobizon: HTTP {resp.status_code}", provider=PROVIDER, code=resp.status_code)
    try:
        doc = json.loads(resp.content)
        code = int(doc["code"])
    except (ValueError, KeyError, TypeError):
        excerpt = resp.content[:120].decode("utf-8", "replace")
        raise SmsProtocolError(
            f"mobizon: HTTP {resp.status_code} with a body that is not the API's JSON envelope: {excerpt!r}",
            provider=PROVIDER,
        ) from None
    data = normalize(doc.get("data"))
    message = str(doc.get("message") or "")
    if code in (OK, PARTIALLY_DONE, NOTHING_DONE, BACKGROUND):
        return Answer(code, data, message)
    if code == DATA_UPDATE and locked_is_conflict:
        raise SmsConflictError(f"mobizon code 10: {message}", provider=PROVIDER, code=code, details=data)
    raise error_for(code, data, message)


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
    """Decide on a campaign/get answer: (WAITING|SUCCEEDED|FAILED, human message)."""
    status = str(data.get("commonStatus") or "")
    if status in set(failed_statuses):
        comment = data.get("globalComment") or "no comment"
        return FAILED, f"campaign {data.get('id')} is {status}: {comment}"
    if status in set(target_statuses):
        return SUCCEEDED, f"campaign {data.get('id')} reached {status}"
    return WAITING, f"campaign {data.get('id')} is {status or 'unknown'}"
