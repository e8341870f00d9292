"""BSG One-API on the wire: build requests, parse answers, check input. No I/O, no Airflow.

Base URL ``https://one-api.bsg.world``. ``POST /api/auth/login {"api_key": "live_…"}``
answers ``{"bearer": "<JWT>"}``; every other call carries ``Authorization: Bearer <JWT>``
and the token is renewed with ``POST /api/auth/refresh``. Bodies are JSON; answers are
``{"data": …}`` (lists add ``{"meta": {"page": {limit, offset, total}}}``) and errors
``{"message": …, "errors": …}`` with a meaningful HTTP status (422, 429, 401…).

The facts come from the provider's OpenAPI spec (reference/bsg/openapi.yaml) and its
campaign article (reference/seeds/003). Where they disagree or slip, the choice is
written next to the constant it concerns, so there is one place to correct it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_sms_provider.exceptions import (
    SmsAuthError,
    SmsConflictError,
    SmsFatalError,
    SmsNotFoundError,
    SmsProtocolError,
    SmsRateLimitedError,
    SmsServerError,
    SmsValidationError,
)
from airflow_sms_provider.protocols.shapes import non_object_types, object_data
from airflow_sms_provider.recipients import normalize_phone, sms_parts
from airflow_sms_provider.redaction import redact_text
from airflow_sms_provider.transport import Request, Response
from airflow_sms_provider.validation import check_window, id_list, parse_when

PROVIDER = "bsg"
DEFAULT_BASE_URL = "https://one-api.bsg.world"
API_KEY_PREFIXES = ("live_", "test_")

# ---------------------------------------------------------------- limits

MAX_PHONES_PER_CAMPAIGN = 10_000
PHONE_MIN_DIGITS, PHONE_MAX_DIGITS = 9, 15
SENDER_MIN = 3
SENDER_ALPHA_MAX = 11  # Latin letters, symbols, digits, spaces
SENDER_NUMERIC_MAX = 15  # digits only
VALIDITY_HOURS = (1, 72)  # default 72 on BSG's side
TARIFF_CODES = (0, 9)
START_AT_MAX_AHEAD = dt.timedelta(days=30)
START_AT_FORMAT = "%Y-%m-%d %H:%M:%S"
# Decision: neither document names the zone of start_at. We send wall time in the
# connection's ``timezone`` extra (the zone the account reads it in), UTC by default.
START_AT_TIMEZONE: dt.tzinfo = dt.timezone.utc
# Ours (docs/bsg.md "start_at lateness"): a start_at at most this far in the past means
# "now" and is sent without start_at, so ``start_at="{{ data_interval_end }}"`` works on
# a scheduled run that starts a few minutes after its interval ends.
START_AT_LATENESS = dt.timedelta(minutes=15)
REFERENCE_ID_MAX = 32
# Five concatenated parts: 5 x 153 GSM-7 septets, 5 x 67 UCS-2 units. The seed says
# 335 for UCS-2 and the spec's prose 355; 335 is the one that is 5 whole parts.
TEXT_LIMITS = {"GSM-7": 765, "UCS-2": 335}


def filled_text_problem(filled: str) -> str | None:
    """What is wrong with a filled per-recipient text's length, or None (BSG's limits).

    The one per-row rule: the send (``campaigns.bsg``) and the estimate both use it.
    """
    encoding, length, _ = sms_parts(filled)
    limit = TEXT_LIMITS[encoding]
    return None if length <= limit else f"{length} {encoding} characters; BSG allows at most {limit}"
CALLBACK_URL_MAX = 100
MESSAGES_PAGE_LIMITS = (15, 500)
# Ours (BSG documents none): the largest answer accepted. A page of 500 messages is far below.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024

# ---------------------------------------------------------------- statuses

CAMPAIGN_STATUSES = ("creation", "scheduled", "sending", "done", "paused", "stopped", "spam", "moderation")
STATUS_DONE = "done"
DEFAULT_FAILED_STATUSES = ("stopped", "spam")
# The spec's 422 example lists these; the seed also names "creation". We follow the spec.
STOPPABLE_STATUSES = ("scheduled", "sending", "paused", "moderation")
FINAL_STATUSES = frozenset({"done", "stopped", "spam"})
FAILURE_REASONS = {
    "stopped": "it was stopped before all messages were sent",
    "spam": "BSG classified it as spam and does not send it",
}
MESSAGE_STATUSES = (
    "scheduled", "moderation", "accepted", "sending", "sent", "delivered", "expired", "failed",
    "undelivered", "unknown", "read", "not_viber_user", "not_service_user",
)  # fmt: skip
INVALID_CAMPAIGN_STATUS = "Invalid campaign status"

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
_ACCEPT = {"Accept": "application/json"}
_REFERENCE_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_NUMERIC_SENDER = re.compile(r"[0-9]+")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_-]+)\}")
# 422 field keys are property paths with the separators dropped: "phones12number".
_INDEXED_FIELD = re.compile(r"(phones|messages)(\d+)(\w*)")


class BsgDuplicateRequestError(SmsConflictError):
    """HTTP 429 "Too many duplicate request detected": BSG already has this request.

    Campaign creation answers it when a reference_id was used before or the same body
    arrived twice in a short time. Repeating cannot help; the caller looks the earlier
    campaign up (by reference_id) instead.
    """


# ---------------------------------------------------------------- input checks


def phone_number(value: Any) -> int:
    """The number as BSG wants it (an integer of 9-15 digits); '+' and spacing are stripped."""
    return int(normalize_phone(value, min_digits=PHONE_MIN_DIGITS, max_digits=PHONE_MAX_DIGITS))


def check_sender(value: Any, field: str = "sender") -> str:
    """3-11 printable Latin characters (spaces allowed), or 3-15 digits."""
    if not isinstance(value, str) or not value.strip():
        raise SmsValidationError(f"{field} is empty: BSG needs a sender name", field=field, value=value)
    if _NUMERIC_SENDER.fullmatch(value):
        if not SENDER_MIN <= len(value) <= SENDER_NUMERIC_MAX:
            raise SmsValidationError(
                f"{field}={value!r}: a numeric sender has {SENDER_MIN}-{SENDER_NUMERIC_MAX} digits",
                field=field,
                value=value,
            )
        return value
    if not _PRINTABLE_ASCII.fullmatch(value) or not SENDER_MIN <= len(value) <= SENDER_ALPHA_MAX:
        raise SmsValidationError(
            f"{field}={value!r}: an alphanumeric sender has {SENDER_MIN}-{SENDER_ALPHA_MAX} Latin letters, "
            "digits, symbols or spaces",
            field=field,
            value=value,
        )
    return value


def check_message_text(value: Any, field: str = "text") -> str:
    """Non-empty and within 765 GSM-7 septets or 335 UCS-2 units."""
    if not isinstance(value, str) or not value.strip():
        raise SmsValidationError(f"{field} is empty: an SMS needs a text", field=field, value=value)
    encoding, length, _ = sms_parts(value)
    limit = TEXT_LIMITS[encoding]
    if length > limit:
        raise SmsValidationError(
            f"{field} is {length} {encoding} characters; BSG allows at most {limit} in {encoding}"
            + (" (a character outside GSM-7 makes the whole text UCS-2)" if encoding == "UCS-2" else ""),
            field=field,
            value=value[:40] + "...",
        )
    return value


def _int_or_none(value: Any, field: str) -> int | None:
    """An integer setting that may arrive templated as a string; None/"" mean "BSG's default"."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise SmsValidationError(f"{field}={value!r} is not a whole number", field=field, value=value)
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise SmsValidationError(f"{field}={value!r} is not a whole number", field=field, value=value) from None


def check_validity(value: Any) -> int | None:
    """Hours a message may wait for delivery: 1-72 (BSG's default 72 when None)."""
    hours = _int_or_none(value, "validity")
    if hours is not None and not VALIDITY_HOURS[0] <= hours <= VALIDITY_HOURS[1]:
        raise SmsValidationError(f"validity={value!r} must be 1 to 72 hours", field="validity", value=value)
    return hours


def check_tariff_code(value: Any, field: str = "tariff_code") -> int | None:
    """The account's tariff to bill: 0-9 (BSG's default when None)."""
    code = _int_or_none(value, field)
    if code is not None and not TARIFF_CODES[0] <= code <= TARIFF_CODES[1]:
        raise SmsValidationError(f"{field}={value!r} must be 0 to 9", field=field, value=value)
    return code


def late_start(when: dt.datetime | None, lateness: dt.timedelta, now: dt.datetime | None = None) -> bool:
    """True when ``when`` has passed by at most ``lateness``: the campaign starts now."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return when is not None and when <= now and now - when <= lateness


def write_start_at(when: dt.datetime | None, tz: dt.tzinfo = START_AT_TIMEZONE) -> str | None:
    """``when`` as BSG's ``yyyy-mm-dd hh:mm:ss`` wall time in ``tz``, not checked against the clock."""
    return None if when is None else when.astimezone(tz).strftime(START_AT_FORMAT)


def format_start_at(
    value: Any,
    now: dt.datetime | None = None,
    *,
    tz: dt.tzinfo = START_AT_TIMEZONE,
    lateness: dt.timedelta = START_AT_LATENESS,
) -> str | None:
    """``start_at`` (datetime, pendulum or string) checked and written as BSG wants it.

    At most 30 days ahead; ``yyyy-mm-dd hh:mm:ss`` wall time in ``tz`` (the account's
    zone). None or "" mean "send now", and so does a time at most ``lateness`` in the
    past (written as None: no start_at); further in the past is refused.
    """
    when = parse_when(value, "start_at")
    if when is None or late_start(when, lateness, now):
        return None
    check_window(when, "start_at", min_ahead=dt.timedelta(0), max_ahead=START_AT_MAX_AHEAD, now=now)
    return write_start_at(when, tz)


def check_reference_id(value: Any, field: str = "reference_id") -> str:
    """Up to 32 Latin letters and digits."""
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if text is None or not _REFERENCE_ID.fullmatch(text):
        raise SmsValidationError(
            f"{field}={value!r} must be 1-{REFERENCE_ID_MAX} Latin letters and digits", field=field, value=value
        )
    return text


def check_callback_url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")) or len(value) > CALLBACK_URL_MAX:
        raise SmsValidationError(
            f"callback_url={value!r} must be an http(s) URL of at most {CALLBACK_URL_MAX} characters",
            field="callback_url",
            value=value,
        )
    return value


CALLBACK_TOKEN_MIN = 32  # secrets.token_urlsafe(24): 192 bits, and it still fits BSG's 100 characters
_CALLBACK_TOKEN = re.compile(r"[A-Za-z0-9_.~-]{1,255}")  # unreserved URL characters: it sits in a path


def check_callback_token(token: Any, conn_id: str = "") -> str:
    """A connection's ``callback_token``: unreserved URL characters, long enough to be unguessable.

    BSG documents no signature for its callbacks, so this token in the URL's path is what
    authenticates them (events/bsg.py). The error message never contains the token.
    """
    if not isinstance(token, str) or not _CALLBACK_TOKEN.fullmatch(token) or len(token) < CALLBACK_TOKEN_MIN:
        where = f"connection {conn_id!r}: " if conn_id else ""
        raise SmsValidationError(
            f"{where}callback_token must be at least {CALLBACK_TOKEN_MIN} characters of A-Z a-z 0-9 _ . ~ - "
            '(e.g. python -c "import secrets; print(secrets.token_urlsafe(24))")',
            field="callback_token",
        )
    return token


def events_callback_url(events_url: Any, conn_id: str, token: str) -> str:
    """The receiver's callback URL for this connection: ``<events_url>/bsg/<conn_id>/<token>``.

    ``events_url`` is where the receiver is published (e.g. ``https://airflow.example.com/sms-events``).
    Refused before anything is sent when the whole URL exceeds BSG's 100 characters; the message
    gives the lengths, never the token.
    """
    if not isinstance(events_url, str) or not events_url.startswith(("http://", "https://")):
        raise SmsValidationError(
            f"events_url={events_url!r} must be the http(s) URL the SMS events receiver is published at "
            "(e.g. https://airflow.example.com/sms-events)", field="events_url", value=events_url)  # fmt: skip
    head = f"{events_url.rstrip('/')}/bsg/{conn_id}/"
    url = head + token
    if len(url) > CALLBACK_URL_MAX:
        raise SmsValidationError(
            f"the callback URL {head}<callback_token> is {len(url)} characters ({len(head)} + a {len(token)}-character "
            f"token); BSG takes at most {CALLBACK_URL_MAX}: publish the receiver under a shorter URL or use a shorter "
            f"connection id (the token needs at least {CALLBACK_TOKEN_MIN})",
            field="callback_url",
        )
    return url


def check_audience_size(count: int, field: str = "recipients") -> None:
    if count > MAX_PHONES_PER_CAMPAIGN:
        raise SmsValidationError(
            f"{field}: {count} recipients in one campaign; BSG takes at most {MAX_PHONES_PER_CAMPAIGN}",
            field=field,
            value=count,
        )
    if count < 1:
        raise SmsValidationError(f"{field} is empty: a campaign needs at least one recipient", field=field)


def check_unique_references(items: Iterable[Mapping[str, Any]], field: str) -> None:
    """reference_id must not repeat inside one request."""
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        ref = item.get("reference_id")
        if ref is None:
            continue
        if ref in seen:
            raise SmsValidationError(
                f"{field}: reference_id {ref!r} appears at positions {seen[ref] + 1} and {index + 1}; "
                "each message needs its own",
                field="reference_id",
                value=ref,
            )
        seen[ref] = index


def check_unique_phones(numbers: Iterable[int], field: str = "phones") -> None:
    """A phone must not repeat inside one sms/send request (the spec: ``uniqueItems``)."""
    seen: dict[int, int] = {}
    for index, number in enumerate(numbers):
        if number in seen:
            raise SmsValidationError(
                f"{field}: {number} appears at positions {seen[number] + 1} and {index + 1}; BSG takes each "
                "phone once per request (it would be texted twice)",
                field=field,
                value=number,
            )
        seen[number] = index


def check_group_placeholders(text: str, field: str = "text") -> str:
    """send-groups fills only ``{field_id}``: a numeric custom-field id (the seed: "specify the
    identifier(s) of the contact field(s) in the form {field_id}"). A named ``{name}`` would
    reach every contact of the lists literally, so it is refused before anything is sent."""
    named = sorted({name for name in _PLACEHOLDER.findall(text) if not name.isdigit()})
    if named:
        shown = ", ".join("{" + name + "}" for name in named[:5])
        raise SmsValidationError(
            f"{field}: {shown} in a send-groups text: BSG fills only numeric contact-field ids such as "
            "{12} (GET /api/contacts/fields lists them); a named placeholder would be sent literally to "
            "every contact. Use the field's id, or BsgIndividualCampaignOperator to fill names yourself",
            field=field,
            value=text,
        )
    return text


def fill_placeholders(text: str, values: Mapping[str, Any]) -> str:
    """``{name}`` replaced by ``values["name"]``; KeyError names the first missing one."""

    def replace(match: re.Match[str]) -> str:
        return str(values[match.group(1)])

    return _PLACEHOLDER.sub(replace, text)


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def campaign_ids(value: Any, field: str = "campaign_ids") -> list[int]:
    """Ids (campaigns, contact lists) from whatever a template or XCom gives: an id, "1,2",
    "[1, 2]", a list, or a campaign operator's summary (a mapping with ``campaign_ids``)."""
    if isinstance(value, Mapping):
        value = value.get("campaign_ids", value.get("campaign_id"))
    return id_list(value, field, not_an_id="an id (a positive whole number)", empty="id")


def reference_prefix(*parts: Any) -> str:
    """16 hex characters that identify one task run (dag, task, run id, map index)."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


def auto_reference_id(prefix: str, phone: int | str) -> str:
    """A reference_id that is the same for ``phone`` on every try of a run, in any order.

    The run's 16-hex ``prefix`` plus 16 hex characters of BLAKE2b over prefix and phone: 32
    letters and digits, the spec's maximum (``ReferenceId``). Derived from content, not from
    position, so an audience re-read in another order gives each phone the id it had before
    (the audience is deduplicated: one id per phone). 64 bits per phone: a collision within
    one run's audience is negligible (about 1 in 3.6e10 for a million phones).
    """
    tail = hashlib.blake2b(f"{prefix}:{int(phone)}".encode(), digest_size=8).hexdigest()
    return prefix + tail


# ---------------------------------------------------------------- requests


def _json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _post(path: str, label: str, body: Mapping[str, Any], *, idempotent: bool) -> Request:
    return Request("POST", path, label, headers=_JSON_HEADERS, content=_json(body), idempotent=idempotent)


def _drop_none(body: Mapping[str, Any]) -> dict[str, Any]:
    """Leave unset options out so BSG applies its own defaults."""
    return {key: value for key, value in body.items() if value is not None}


def login(api_key: str) -> Request:
    """POST /api/auth/login. Retrying it costs nothing."""
    return _post("/api/auth/login", "bsg login", {"api_key": api_key}, idempotent=True)


def refresh(token: str) -> Request:
    """POST /api/auth/refresh with the current token; answers a new one."""
    return authorize(Request("POST", "/api/auth/refresh", "bsg refresh token", headers=_ACCEPT), token)


def authorize(request: Request, token: str) -> Request:
    """The request with ``Authorization: Bearer <token>`` (the spec's security scheme)."""
    return dataclasses.replace(request, headers={**request.headers, "Authorization": f"Bearer {token}"})


def _options(validity: int | None, tariff_code: int | None, start_at: str | None, callback_url: str | None
             ) -> dict[str, Any]:
    return {"tariff_code": tariff_code, "validity": validity, "start_at": start_at, "callback_url": callback_url}


def send_bulk(
    phones: Sequence[Mapping[str, Any]],
    text: str,
    sender: str,
    *,
    validity: int | None = None,
    tariff_code: int | None = None,
    start_at: str | None = None,
    transliterate: bool | None = None,
    callback_url: str | None = None,
) -> Request:
    """POST /api/campaigns/sms/send: one text to ``phones`` (``{"number": int, "reference_id"?: str}``).

    A number twice is refused here (:func:`check_unique_phones`), whoever built the list.
    """
    check_unique_phones(p["number"] for p in phones)
    body = {
        "phones": [_drop_none({"number": p["number"], "reference_id": p.get("reference_id")}) for p in phones],
        "sender": sender,
        "text": text,
        **_options(validity, tariff_code, start_at, callback_url),
        "transliterate": transliterate,
    }
    return _post("/api/campaigns/sms/send", "bsg sms/send", _drop_none(body), idempotent=False)


def send_groups(
    groups: Sequence[int],
    text: str,
    sender: str,
    *,
    validity: int | None = None,
    tariff_code: int | None = None,
    start_at: str | None = None,
    transliterate: bool | None = None,
    callback_url: str | None = None,
) -> Request:
    """POST /api/campaigns/sms/send-groups: one text to the contact lists ``groups``.

    The spec's schema marks ``contacts`` as required; its properties, examples and the
    seed all say ``groups``, which is what we send. Named placeholders are refused
    (:func:`check_group_placeholders`).
    """
    check_group_placeholders(text)
    body = {
        "groups": list(groups),
        "sender": sender,
        "text": text,
        **_options(validity, tariff_code, start_at, callback_url),
        "transliterate": transliterate,
    }
    return _post("/api/campaigns/sms/send-groups", "bsg sms/send-groups", _drop_none(body), idempotent=False)


def send_individual(
    messages: Sequence[Mapping[str, Any]],
    *,
    validity: int | None = None,
    tariff_code: int | None = None,
    start_at: str | None = None,
    callback_url: str | None = None,
) -> Request:
    """POST /api/campaigns/sms/send-individual: per-recipient ``phone``, ``text``, ``sender``.

    Message keys follow the schema (``reference_id``, ``tariff_code``), not the spec
    example's ``referenced_id``/``tarrif_code``; ``start_at`` is the same date string as
    elsewhere, not the integer the schema slipped into.
    """
    keys = ("phone", "text", "sender", "reference_id", "tariff_code", "transliterate")
    items = [_drop_none({key: message.get(key) for key in keys}) for message in messages]
    body = {"messages": items, **_options(validity, tariff_code, start_at, callback_url)}
    return _post("/api/campaigns/sms/send-individual", "bsg sms/send-individual", _drop_none(body),
                 idempotent=False)


def campaign_price(phones: Sequence[int], text: str, sender: str, *, tariff_code: int | None = None) -> Request:
    """POST /api/campaigns/price: what sms/send of ``text`` to ``phones`` would cost. Nothing is
    created or charged, so an unanswered call may be repeated."""
    check_unique_phones(phones, field="recipients")
    body = {"sender": sender, "text": text, "messages": [{"phone": int(p)} for p in phones],
            "tariff_code": tariff_code}
    return _post("/api/campaigns/price", "bsg campaign price", _drop_none(body), idempotent=True)


def get_campaign(campaign_id: int) -> Request:
    return Request("GET", f"/api/campaigns/{int(campaign_id)}", "bsg get campaign", headers=_ACCEPT)


def get_campaign_detail(campaign_id: int) -> Request:
    return Request("GET", f"/api/campaigns/{int(campaign_id)}/detail", "bsg campaign detail", headers=_ACCEPT)


def stop_campaign(campaign_id: int) -> Request:
    """PATCH /api/campaigns/{id}/stop. Stopping costs nothing, so an unanswered call may be repeated."""
    return Request("PATCH", f"/api/campaigns/{int(campaign_id)}/stop", "bsg stop campaign", headers=_ACCEPT)


def list_messages(
    *,
    campaign_id: int | None = None,
    reference_id: str | None = None,
    offset: int = 0,
    limit: int = MESSAGES_PAGE_LIMITS[1],
    sort: str | None = None,
    way: str | None = None,
) -> Request:
    """GET /api/messages with ``filter[...]`` and ``page[...]`` query parameters."""
    if not MESSAGES_PAGE_LIMITS[0] <= limit <= MESSAGES_PAGE_LIMITS[1]:
        raise SmsValidationError(f"limit={limit} must be 15 to 500", field="limit", value=limit)
    params = [
        ("filter[campaign_id]", campaign_id),
        ("filter[reference_id]", reference_id),
        ("page[offset]", offset),
        ("page[limit]", limit),
        ("sort", sort),
        ("way", way),
    ]
    query = tuple((key, str(value)) for key, value in params if value is not None)
    return Request("GET", "/api/messages", "bsg list messages", query, headers=_ACCEPT)


def get_balance() -> Request:
    return Request("GET", "/api/accounts/balance", "bsg balance", headers=_ACCEPT)


# ---------------------------------------------------------------- answers


def _document(resp: Response) -> Any:
    if len(resp.content) > MAX_RESPONSE_BYTES:
        raise SmsProtocolError(
            f"bsg: answer of {len(resp.content)} bytes is larger than the {MAX_RESPONSE_BYTES} accepted",
            provider=PROVIDER,
        )
    try:
        return json.loads(resp.content) if resp.content else None
    except ValueError:
        return None


def parse(resp: Response) -> Any:
    """The ``data`` of a successful answer, or the typed error its status stands for."""
    if not 200 <= resp.status_code < 300:
        # The answer is read inside the call, not kept in a local: a traceback that prints frame
        # locals (Airflow 3.0's task logs, rich tracebacks) would show an echoed key or JWT as written.
        raise error_for(resp.status_code, _document(resp), resp.content)
    doc = _document(resp)
    if not isinstance(doc, Mapping) or "data" not in doc:
        raise _not_json(resp)
    return doc["data"]


def parse_object(resp: Response) -> dict[str, Any]:
    """:func:`parse` of an answer whose data is an object (a campaign, a send's result).

    Data of another shape raises inside the parser, so the transport's rule applies: after a paid request
    it is an answer that cannot be read, and the call may have been carried out (SmsAmbiguousError).
    """
    return object_data(parse(resp))


def parse_price(resp: Response) -> tuple[float | None, str | None]:
    """``(price, currency)`` of a price answer (top-level, no ``data``); the price may be null."""
    doc = _document(resp)
    if not 200 <= resp.status_code < 300:
        raise error_for(resp.status_code, doc, resp.content)
    if not isinstance(doc, Mapping) or "price" not in doc:
        raise _not_json(resp)
    price, currency = doc.get("price"), doc.get("currency")
    if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float))):
        raise SmsProtocolError(f"bsg: price answer {price!r} is not a number", provider=PROVIDER)
    return price, currency if isinstance(currency, str) else None


def parse_token(resp: Response) -> str:
    """The JWT of a login or refresh answer."""
    if not 200 <= resp.status_code < 300:
        raise error_for(resp.status_code, _document(resp), resp.content)  # no answer in a local: see parse
    doc = _document(resp)
    token = doc.get("bearer") if isinstance(doc, Mapping) else None
    if not isinstance(token, str) or not token:
        # Not echoing the body (nor keeping it in a local: see parse): it might hold a token in some other shape.
        del doc
        raise SmsProtocolError(f"bsg: HTTP {resp.status_code} login answer without a 'bearer' token",
                               provider=PROVIDER)
    return token


def parse_page(resp: Response) -> dict[str, Any]:
    """A list answer as ``{"items": [...], "total": n, "offset": n, "limit": n}``."""
    if not 200 <= resp.status_code < 300:
        raise error_for(resp.status_code, _document(resp), resp.content)  # no answer in a local: see parse
    doc = _document(resp)
    if not isinstance(doc, Mapping) or not isinstance(doc.get("data"), list):
        raise _not_json(resp)
    page = (doc.get("meta") or {}).get("page") or {}
    items = list(doc["data"])
    odd = non_object_types(items)  # every documented list item is an object
    if odd:
        raise SmsProtocolError(f"bsg: a list item is {odd[0]}, not an object", provider=PROVIDER)
    return {
        "items": items,
        "total": int(page.get("total", len(items))),
        "offset": int(page.get("offset", 0)),
        "limit": int(page.get("limit", len(items))),
    }


def _not_json(resp: Response) -> SmsProtocolError:
    excerpt = redact_text(resp.content[:4096].decode("utf-8", "replace"))[:120]  # redact, then cut
    return SmsProtocolError(
        f"bsg: HTTP {resp.status_code} with a body that is not the API's JSON: {excerpt!r}", provider=PROVIDER
    )


def field_errors(errors: Any) -> list[tuple[str, str]]:
    """``(field, message)`` pairs of a 422's ``errors`` (a mapping of lists, or a plain list)."""
    if isinstance(errors, Mapping):
        pairs: list[tuple[str, str]] = []
        for key, value in errors.items():
            messages = value if isinstance(value, list) else [value]
            pairs.extend((str(key), str(message)) for message in messages)
        return pairs
    if isinstance(errors, list):
        return [("", str(item)) for item in errors if item]
    return []


def describe_field(key: str) -> str:
    """``phones12number`` -> ``phones[12].number`` (row 13 of the request): readable paths."""
    match = _INDEXED_FIELD.fullmatch(key)
    if not match:
        return key
    rest = f".{match.group(3)}" if match.group(3) else ""
    return f"{match.group(1)}[{match.group(2)}]{rest}"


def error_for(status: int, doc: Any, content: bytes = b"") -> Exception:
    """The exception for an error answer (docs/bsg.md has the table of what operators do)."""
    message = str(doc.get("message") or "") if isinstance(doc, Mapping) else ""
    if not message:
        message = redact_text(content[:4096].decode("utf-8", "replace")).strip()[:120] or "no message"
    message = redact_text(message)  # an error page may echo the request (a key, a token)
    errors = doc.get("errors") if isinstance(doc, Mapping) else None
    kw: dict[str, Any] = {"provider": PROVIDER, "code": status, "details": errors}
    text = f"bsg: HTTP {status}: {message}"
    if status in (401, 403):
        return SmsAuthError(text, **kw)
    if status == 404:
        return SmsNotFoundError(text, **kw)
    if status == 422:
        if message == INVALID_CAMPAIGN_STATUS:
            return SmsConflictError(
                f"{text} (a campaign can be stopped only while {', '.join(STOPPABLE_STATUSES)})", **kw
            )
        pairs = field_errors(errors)
        shown = "; ".join(f"{describe_field(k)}: {m}" if k else m for k, m in pairs[:5])
        more = f"; and {len(pairs) - 5} more" if len(pairs) > 5 else ""
        field = next((k for k, _ in pairs if k), None)
        if field is None and "tariff" in message.lower():
            field = "tariff_code"
        return SmsValidationError(f"{text} ({shown}{more})" if shown else text, field=field, **kw)
    if status == 429:
        if "duplicate" in message.lower():
            return BsgDuplicateRequestError(text, **kw)
        return SmsRateLimitedError(text, **kw)
    if status >= 500:
        return SmsServerError(text, **kw)
    return SmsFatalError(text, **kw)


# ---------------------------------------------------------------- tokens


def jwt_claims(token: str) -> dict[str, Any]:
    """The (unverified) payload of a JWT; {} when it is not one. Only ``iat``/``exp`` are read."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def token_lifetime(token: str, wall_now: float) -> float | None:
    """Seconds the token is valid from now, or None when it does not say.

    ``exp - iat`` when both are there, so a clock difference between BSG and this
    machine does not matter; else ``exp`` against this machine's clock.
    """
    claims = jwt_claims(token)
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        return None
    if isinstance(iat, (int, float)) and not isinstance(iat, bool) and iat <= exp:
        return float(exp - iat)
    return max(float(exp) - wall_now, 0.0)


def refresh_margin(lifetime: float) -> float:
    """How long before expiry a token is refreshed: a fifth of its life, at most a minute."""
    return min(60.0, lifetime / 5)


# ---------------------------------------------------------------- waiting decisions
# Shared by the sensor (poke) and the trigger (deferred), so both decide alike.

WAITING, SUCCEEDED, FAILED = "waiting", "succeeded", "failed"


def campaign_outcome(data: Mapping[str, Any], failed_statuses: Iterable[str]) -> tuple[str, str]:
    """Decide on one GET /api/campaigns/{id} answer: (WAITING|SUCCEEDED|FAILED, message)."""
    status = str(data.get("status") or "")
    stats = data.get("statistics") or {}
    counts = f"{stats.get('sent', 0)} sent, {stats.get('delivered', 0)} delivered"
    if status in set(failed_statuses):
        reason = FAILURE_REASONS.get(status, "BSG reports this status as final")
        return FAILED, f"campaign {data.get('id')} is {status}: {reason} ({counts})"
    if status == STATUS_DONE:
        return SUCCEEDED, f"campaign {data.get('id')} is done ({counts})"
    return WAITING, f"campaign {data.get('id')} is {status or 'unknown'} ({counts})"


def campaigns_outcome(campaigns: Mapping[int, Mapping[str, Any]], failed_statuses: Iterable[str]
                      ) -> tuple[str, str]:
    """Decide on a list of campaigns: FAILED as soon as one failed, SUCCEEDED when all are done."""
    failed = list(failed_statuses)
    decisions = [campaign_outcome(data, failed) for data in campaigns.values()]
    failures = [message for outcome, message in decisions if outcome == FAILED]
    if failures:
        return FAILED, "; ".join(failures)
    done = sum(1 for outcome, _ in decisions if outcome == SUCCEEDED)
    if done == len(decisions):
        return SUCCEEDED, f"all {done} campaign(s) are done"
    waiting = "; ".join(message for outcome, message in decisions if outcome == WAITING)
    return WAITING, f"{done} of {len(decisions)} campaign(s) done; {waiting}"


def short_status(data: Mapping[str, Any]) -> dict[str, Any]:
    """What a sensor returns per campaign: status and the short statistics."""
    stats = data.get("statistics") or {}
    return {"status": data.get("status"), "sent": stats.get("sent", 0), "delivered": stats.get("delivered", 0)}

