"""Ogangi (Messangi MMC REST API) on the wire: build signed requests, parse XML answers.

No I/O, no Airflow. Every fact and every decision about the wire lives here once.

URL: ``{base_url}/rest/api/{method}/{p1}/…/{pN}/{publicKey}/{signature}`` where
``signature`` is HMAC-SHA256, keyed with the private key, over ``p1/…/pN`` joined
with "/", in lower-case hex (:func:`sign`). The private key never travels.

Decisions where the provider's documentation is silent (change them here only):

* **Signing and encoding.** The parameter values are signed as they are, before
  percent-encoding; each path segment (the public key too) is then percent-encoded
  on its own (:func:`segment`), so a campaign name may hold spaces or '/'.
* **Absent optional parameters** (no campaign name, "start now", shortcode ignored)
  are sent as the literal :data:`ABSENT` (``null``), the value the docs give for the
  date: a path cannot carry an empty segment.
* **HTTP verbs** (:data:`HTTP_METHODS`): POST where the docs name POST fields or say
  "POST method", DELETE for the broadcast delete, GET for everything else.
* **shortcodeIgnore**: the docs say "if false the shortcode parameter will be
  ignored", so ``true`` means "use the shortcode" (:data:`SHORTCODE_USED`).
* **Scheduled date** is written ``dd-MM-yyyy HH:mm`` in :data:`SCHEDULE_TIMEZONE`
  unless the caller names the instance's zone; naive datetimes are UTC.
* **Recipients JSON** (field ``to``): a JSON array of
  ``{"to": msisdn, "text": text, "params": {...}}`` (:func:`broadcast_recipient`).
* **Recipient file** (sendSMSByFile): UTF-8 CSV with a header row
  (:data:`SMS_FILE_COLUMNS` then ``{0}``, ``{1}``…). A header is the safe side: if
  the server does not expect one it is one rejected row, whereas a missing header
  the server expected would silently drop a real recipient.
* **XML envelope**: the docs show ``<input/><status/><description/><result/>``
  without a root element; both that and a single root element wrapping them are
  accepted.
* **Broadcast status codes**: no public table was found; :data:`BROADCAST_STATUSES`
  is this project's table. A broadcast is finished when ``endDate`` is set or
  ``sentMessages >= expectedMessages > 0`` or its status is FINISHED; STOPPED and
  DELETED are failures (:func:`broadcast_outcome`).
* **ERROR descriptions** carry no code and the document gives no wording at all;
  :data:`ERROR_KINDS` maps the usual words to exception classes. A wording it does not
  know is not taken as "nothing was done": after a create or a send
  (:data:`CREATE_INPUTS`) it is :class:`SmsAmbiguousError` (the broadcast or the SMS may
  exist), elsewhere a plain provider error (reads and suspend/resume/stop/delete are
  harmless to repeat). :func:`refused` is true only for BAD_SIGNATURE, an HTTP refusal,
  a request that never left, or an ERROR whose wording :data:`ERROR_KINDS` knows.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode
from xml.etree.ElementTree import Element, ParseError
from xml.parsers import expat
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import defusedxml.ElementTree as safe_xml
from defusedxml import DefusedXmlException

from airflow_sms_provider.exceptions import (
    SmsAmbiguousError,
    SmsAuthError,
    SmsConflictError,
    SmsFatalError,
    SmsNotFoundError,
    SmsProtocolError,
    SmsProviderError,
    SmsRateLimitedError,
    SmsServerError,
    SmsValidationError,
)
from airflow_sms_provider.protocols.shapes import non_object_types
from airflow_sms_provider.redaction import redact_text
from airflow_sms_provider.transport import Request, Response, is_refusal

PROVIDER = "ogangi"
# Relative to the connection's base URL (which may itself hold a path such as /mmc):
# no leading slash, so httpx appends it to that path.
API_PREFIX = "rest/api"

# Method names as they appear in the URL (the docs' spelling).
SEND_SMS_BY_FILE = "tools/sendSMSByFile"
GET_SHORTCODES = "getShortcodes"
CREATE_BROADCAST = "createBroadcastFromJson"
GET_BROADCAST = "getBroadcast"
SUSPEND_BROADCAST = "suspendBroadcast"
RESUME_BROADCAST = "resumeBroadcast"
STOP_BROADCAST = "stopBroadcast"
DELETE_BROADCAST = "broadcast"  # DELETE {base}/rest/api/broadcast/…; its answer's <input> is deleteBroadcast

# Path parameters of each method, in URL (and signing) order.
PATH_PARAMS: dict[str, tuple[str, ...]] = {
    SEND_SMS_BY_FILE: ("instanceId",),
    GET_SHORTCODES: ("instanceId", "userName"),
    CREATE_BROADCAST: (
        "instanceId", "broadcastId", "shortcode", "userName", "shortcodeIgnore", "campaignName", "date",
    ),
    GET_BROADCAST: ("instanceId", "broadcastId"),
    SUSPEND_BROADCAST: ("instanceId", "broadcastId"),
    RESUME_BROADCAST: ("instanceId", "broadcastId"),
    STOP_BROADCAST: ("instanceId", "broadcastId"),
    DELETE_BROADCAST: ("instanceId", "broadcastId"),
}
HTTP_METHODS: dict[str, str] = {
    SEND_SMS_BY_FILE: "POST",
    GET_SHORTCODES: "GET",
    CREATE_BROADCAST: "POST",
    GET_BROADCAST: "GET",
    SUSPEND_BROADCAST: "GET",
    RESUME_BROADCAST: "GET",
    STOP_BROADCAST: "GET",
    DELETE_BROADCAST: "DELETE",
}
# The broadcast lifecycle calls, by the name operators use.
ACTIONS: dict[str, str] = {
    "suspend": SUSPEND_BROADCAST,
    "resume": RESUME_BROADCAST,
    "stop": STOP_BROADCAST,
    "delete": DELETE_BROADCAST,
}

ABSENT = "null"
NEW_BROADCAST_ID = -1
SHORTCODE_USED, SHORTCODE_IGNORED = "true", "false"
DATE_FORMAT = "%d-%m-%Y %H:%M"  # dd-MM-yyyy HH:mm
SCHEDULE_TIMEZONE = "UTC"
# Ours, not the provider's (the docs name no limit): a date further ahead is most likely a wrong year.
SCHEDULE_MAX_AHEAD = dt.timedelta(days=366)

# Response <status> values.
STATUS_OK = "OK"
STATUS_BAD_SIGNATURE = "BAD_SIGNATURE"
STATUS_ERROR = "ERROR"

# Size limits (ours, not the provider's): a recipient file we upload, the JSON
# recipients of one broadcast, and an XML answer we accept.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_RECIPIENTS_JSON_BYTES = 10 * 1024 * 1024
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# No answer of the API nests more than 5 levels (envelope, result, broadcast/messages, message, field).
MAX_XML_DEPTH = 32
_EXCERPT_CHARS = 80
_DESCRIPTION_CHARS = 300

# Recipient file (sendSMSByFile).
SMS_FILE_COLUMNS = ("number", "from", "carrier", "text", "encoding", "timezone")
DEFAULT_ENCODING = "UTF-8"
FILE_PLACEHOLDER = re.compile(r"\{([0-9]+)\}")  # {0}, {1}… in a file row's text
SMS_FILE_MIME = "text/csv"
# The docs take "CSV or Excel"; a CSV file must be UTF-8 (the decision above).
UPLOAD_SUFFIXES = (".csv", ".txt", ".xls", ".xlsx", ".xlsm")

# Broadcast status codes (getBroadcast's numeric <status>); see the module docstring.
SCHEDULED, RUNNING, FINISHED, SUSPENDED, STOPPED, DELETED = (
    "SCHEDULED", "RUNNING", "FINISHED", "SUSPENDED", "STOPPED", "DELETED",
)
BROADCAST_STATUSES: dict[int, str] = {0: SCHEDULED, 1: RUNNING, 2: FINISHED, 3: SUSPENDED, 4: STOPPED, 5: DELETED}
BROADCAST_CODES: dict[str, int] = {name: code for code, name in BROADCAST_STATUSES.items()}
BROADCAST_FAILED = frozenset({STOPPED, DELETED})

# Message statuses seen in the docs, and those that mean the SMS will not arrive.
MESSAGE_STATUSES = (
    "SENT_TO_CARRIER", "SENT", "DELIVERED_TO_CARRIER", "DELIVERED_TO_DEVICE", "SENT_TO_DEVICE",
    "UNDELIVERED", "EXPIRED", "UNREACHABLE", "NOT_SENT", "BAD_FROM", "BAD_TO", "BAD_ENCODING", "BAD_CARRIER",
)
MESSAGE_FAILED_STATUSES = frozenset(
    {"UNDELIVERED", "EXPIRED", "UNREACHABLE", "NOT_SENT", "BAD_FROM", "BAD_TO", "BAD_ENCODING", "BAD_CARRIER"}
)

# ERROR descriptions -> exception class, first match wins (see the module docstring).
ERROR_KINDS: tuple[tuple[re.Pattern[str], type[SmsProviderError]], ...] = (
    (re.compile(r"not found|does not exist|doesn't exist|no such", re.I), SmsNotFoundError),
    (re.compile(r"cannot|can't|not allowed|already|only \w+ broadcasts?", re.I), SmsConflictError),
    (re.compile(r"invalid|missing|required|malformed|wrong|too (?:long|large|many)|empty", re.I),
     SmsValidationError),
)

# The <input> names of calls that create or send something (the answer names the method).
CREATE_INPUTS = frozenset({CREATE_BROADCAST, SEND_SMS_BY_FILE, "sendSMSByFile", "sendSMS"})

# Elements whose children form a list even when there is only one child.
_LIST_ELEMENTS = frozenset({"messages", "shortcodes"})
# Leaf values converted to int, by (parent element, element).
_INT_FIELDS = frozenset(
    {("broadcast", "id"), ("broadcast", "expectedMessages"), ("broadcast", "sentMessages"),
     ("broadcast", "status")}
)
_JUNK_AFTER_ROOT = expat.errors.codes[expat.errors.XML_ERROR_JUNK_AFTER_DOC_ELEMENT]
_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>")
_UNSAFE_EXCERPT = re.compile(r"[^\x20-\x7e]")


# ---------------------------------------------------------------- signing and URLs


@dataclass(frozen=True)
class Account:
    """Who calls: the instance (workspace), its user, and the key pair."""

    instance_id: int
    user: str
    public_key: str
    private_key: str = field(repr=False)


def sign(private_key: str, params: Sequence[str]) -> str:
    """HMAC-SHA256 of the path parameters joined with '/', keyed with the private key; lower-case hex."""
    message = "/".join(params).encode("utf-8")
    return hmac.new(private_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def segment(value: str) -> str:
    """One percent-encoded path segment: '/' and everything outside RFC 3986's unreserved set escaped.

    "." and ".." are escaped too, or an HTTP client would resolve them as directory steps.
    """
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def param_text(value: Any) -> str:
    """A path parameter as text: booleans as Java prints them, None as :data:`ABSENT`."""
    if value is None:
        return ABSENT
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def path(method: str, params: Sequence[Any], account: Account) -> str:
    """The signed path of one call, relative to the base URL (arity checked for the known methods)."""
    texts = [param_text(value) for value in params]
    expected = PATH_PARAMS.get(method)
    if expected is not None and len(texts) != len(expected):
        raise ValueError(f"{method} takes {len(expected)} path parameters {expected}, got {len(texts)}")
    signature = sign(account.private_key, texts)
    segments = [*(segment(text) for text in texts), segment(account.public_key), signature]
    return f"{API_PREFIX}/{method}/{'/'.join(segments)}"


def build(
    method: str,
    params: Sequence[Any],
    account: Account,
    *,
    form: Mapping[str, str] | None = None,
    files: Mapping[str, tuple[str, Any, str]] | None = None,
    idempotent: bool = True,
) -> Request:
    """The request for ``method`` with its path parameters (``form``: url-encoded POST fields)."""
    headers = {"Accept": "application/xml"}
    content = None
    if form is not None and files is None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        content = urlencode(dict(form)).encode("ascii")
    return Request(
        HTTP_METHODS[method],
        path(method, params, account),
        f"ogangi {method}",
        headers=headers,
        content=content,
        files=files,
        form=form if files is not None else None,
        idempotent=idempotent,
    )


def get_shortcodes(account: Account) -> Request:
    return build(GET_SHORTCODES, (account.instance_id, account.user), account)


def send_sms_by_file(account: Account, filename: str, content: Any, mime: str = SMS_FILE_MIME) -> Request:
    """sendSMSByFile: the recipient file as the multipart field ``file``. Sends SMS: never repeated blindly."""
    return build(
        SEND_SMS_BY_FILE, (account.instance_id,), account, files={"file": (filename, content, mime)}, form={},
        idempotent=False,
    )


def create_broadcast(
    account: Account,
    recipients_json: str,
    *,
    broadcast_id: int = NEW_BROADCAST_ID,
    shortcode: str | None = None,
    campaign_name: str | None = None,
    date: str = ABSENT,
) -> Request:
    """createBroadcastFromJson: a new broadcast (id -1) or an edit of ``broadcast_id``.

    A new broadcast is not idempotent (a repeat creates a second one); an edit is.
    """
    use = shortcode is not None and shortcode != ""
    params = (
        account.instance_id,
        broadcast_id,
        shortcode if use else ABSENT,
        account.user,
        SHORTCODE_USED if use else SHORTCODE_IGNORED,
        campaign_name or ABSENT,
        date,
    )
    return build(
        CREATE_BROADCAST, params, account, form={"to": recipients_json},
        idempotent=broadcast_id != NEW_BROADCAST_ID,
    )


def get_broadcast(account: Account, broadcast_id: int) -> Request:
    return build(GET_BROADCAST, (account.instance_id, broadcast_id), account)


def broadcast_action(account: Account, action: str, broadcast_id: int) -> Request:
    """suspend / resume / stop / delete. Repeating one is harmless (at worst a state conflict)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown broadcast action {action!r}; one of {sorted(ACTIONS)}")
    return build(ACTIONS[action], (account.instance_id, broadcast_id), account)


# ---------------------------------------------------------------- request bodies


def format_date(when: dt.datetime | None, timezone: str = SCHEDULE_TIMEZONE) -> str:
    """The ``date`` parameter: ``dd-MM-yyyy HH:mm`` in ``timezone``, or ``null`` for "now"."""
    if when is None:
        return ABSENT
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(zone(timezone)).strftime(DATE_FORMAT)


def zone(name: str, field: str = "schedule_timezone") -> ZoneInfo:
    """A time zone by IANA name, or a validation error naming ``field`` and the value."""
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise SmsValidationError(
            f"{field}={name!r} is not an IANA time zone (e.g. America/Caracas)",
            field=field,
            value=name,
        ) from None


def broadcast_recipient(number: str, text: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One item of the ``to`` JSON array (the shape is a decision, see the module docstring)."""
    return {"to": number, "text": text, "params": {str(k): "" if v is None else str(v) for k, v in
                                                   (params or {}).items()}}


def recipients_json(items: Iterable[Mapping[str, Any]], limit: int = MAX_RECIPIENTS_JSON_BYTES) -> tuple[str, int]:
    """The ``to`` field and the number of recipients in it; raises past ``limit`` bytes."""
    parts: list[str] = []
    size = 2
    for index, item in enumerate(items):
        part = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        size += len(part.encode("utf-8")) + 1
        if size > limit:
            raise SmsValidationError(
                f"recipients: the JSON for one broadcast passes {limit} bytes at recipient {index + 1}; "
                "send large audiences by file (OgangiSendSmsByFileOperator) or split them",
                field="recipients",
                value=index + 1,
            )
        parts.append(part)
    return "[" + ",".join(parts) + "]", len(parts)


def sms_file_header(param_count: int) -> list[str]:
    return [*SMS_FILE_COLUMNS, *(f"{{{i}}}" for i in range(param_count))]


def sms_file_row(row: Mapping[str, Any], param_count: int, index: int) -> list[str]:
    """One CSV row of the recipient file; ``params`` fill ``{0}``, ``{1}``… in order."""
    values = [str(row.get(column) or "") for column in SMS_FILE_COLUMNS]
    values[SMS_FILE_COLUMNS.index("encoding")] = str(row.get("encoding") or DEFAULT_ENCODING)
    params = row.get("params") or ()
    if isinstance(params, Mapping):
        params = [params[key] for key in sorted(params, key=_param_order)]
    params = ["" if value is None else str(value) for value in params]
    if len(params) > param_count:
        raise SmsValidationError(
            f"recipients row {index}: {len(params)} template parameters, but the first row has {param_count}; "
            "every row of one file needs the same number",
            field="params",
            value=index,
        )
    return values + params + [""] * (param_count - len(params))


def _param_order(key: Any) -> tuple[int, str]:
    text = str(key).strip("{}")
    return (int(text), "") if text.isdigit() else (1 << 30, text)


def csv_line(values: Sequence[str]) -> bytes:
    """One CSV line in UTF-8, quoted where needed, ending in CRLF."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode("utf-8")


# ---------------------------------------------------------------- answers


@dataclass(frozen=True)
class Answer:
    """A parsed OK answer: the static part and ``result`` as plain Python values."""

    input: str
    status: str
    description: str
    result: Any = None


def _excerpt(body: bytes) -> str:
    """A short, printable, secret-free quote of a body for an error message."""
    text = body[:4096].decode("utf-8", "replace")
    # Redact before cutting: a secret cut in half would no longer be recognised.
    return redact_text(_UNSAFE_EXCERPT.sub(" ", text))[:_EXCERPT_CHARS]


def _local(tag: Any) -> str:
    tag = str(tag)
    return tag.rsplit("}", 1)[-1]


def _leaf(parent: str, tag: str, text: str | None) -> Any:
    text = (text or "").strip()
    if not text:
        return None
    if (parent, tag) in _INT_FIELDS and re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def to_python(elem: Element, parent: str = "") -> Any:
    """An element as dicts, lists and strings (ints in known numeric fields); empty leaves are None."""
    tag = _local(elem.tag)
    children = list(elem)
    if not children:
        return _leaf(parent, tag, elem.text)
    tags = {_local(child.tag) for child in children}
    if tag in _LIST_ELEMENTS or (len(children) > 1 and len(tags) == 1):
        return [to_python(child, tag) for child in children]
    return {_local(child.tag): to_python(child, tag) for child in children}


class _TooDeep(ValueError):
    """An answer's elements nest deeper than MAX_XML_DEPTH."""


def _fromstring(body: bytes) -> Element:
    """The root element, parsed without DTDs or entities and refused past MAX_XML_DEPTH levels.

    The depth is counted while expat reads (before any tree is walked), so an answer nested
    5,000 deep is refused at level 33 instead of overflowing the stack of :func:`to_python`.
    """
    depth = 0
    root: Element | None = None
    events = safe_xml.iterparse(io.BytesIO(body), events=("start", "end"), forbid_dtd=True, forbid_entities=True,
                                forbid_external=True)  # fmt: skip
    for event, elem in events:
        if event == "end":
            depth -= 1
            continue
        depth += 1
        if depth > MAX_XML_DEPTH:
            raise _TooDeep(f"elements nested deeper than {MAX_XML_DEPTH} levels")
        if root is None:
            root = elem
    if root is None:  # expat raises on an empty document; kept for the type checker
        raise ParseError("no element found")
    return root


def _document(body: bytes) -> Element:
    """The envelope element: the root, or a synthetic root around the docs' rootless siblings."""
    try:
        root = _fromstring(body)
    except ParseError as err:
        if err.code != _JUNK_AFTER_ROOT:
            raise
        root = _fromstring(b"<response>" + _XML_DECLARATION.sub(b"", body) + b"</response>")
    if _local(root.tag) == "input" or root.find("status") is None:
        # A lone <input/> (or something else) cannot be an envelope; look one level down.
        nested = next((child for child in root if child.find("status") is not None), None)
        if nested is not None:
            return nested
    return root


def _no_envelope(resp: Response, why: str) -> SmsProviderError:
    status = resp.status_code
    where = f"HTTP {status} with {why}: {_excerpt(resp.content)!r}"
    if status in (401, 403):
        return SmsAuthError(f"ogangi: access denied ({where})", provider=PROVIDER, code=status)
    if status in (404, 405):
        return SmsFatalError(
            f"ogangi: {where}; check the connection's Base URL (it includes the customer path, e.g. "
            "https://customer.example.com/mmc)",
            provider=PROVIDER,
            code=status,
        )
    return SmsProtocolError(f"ogangi: {where}", provider=PROVIDER, code=status)


def _text(root: Element, name: str) -> str:
    found = root.find(name)
    return (found.text or "").strip() if found is not None else ""


def parse(resp: Response) -> Answer:
    """Parse an answer; raise the typed error for BAD_SIGNATURE, ERROR, HTTP failures and bad XML."""
    if resp.status_code == 429:
        raise SmsRateLimitedError("ogangi: HTTP 429 too many requests", provider=PROVIDER, code=429)
    if resp.status_code >= 500:
        raise SmsServerError(f"ogangi: HTTP {resp.status_code}", provider=PROVIDER, code=resp.status_code)
    if len(resp.content) > MAX_RESPONSE_BYTES:
        raise SmsProtocolError(
            f"ogangi: answer of {len(resp.content)} bytes is larger than the {MAX_RESPONSE_BYTES} accepted",
            provider=PROVIDER,
        )
    try:
        root = _document(resp.content)
    except DefusedXmlException as err:
        raise SmsProtocolError(
            f"ogangi: refused an answer that declares a DTD or entities ({type(err).__name__}); "
            f"HTTP {resp.status_code}: {_excerpt(resp.content)!r}",
            provider=PROVIDER,
        ) from None
    except ParseError as err:
        raise _no_envelope(resp, f"a body that is not well-formed XML ({err})") from None
    except _TooDeep as err:
        raise SmsProtocolError(f"ogangi: refused an answer with {err}; HTTP {resp.status_code}: "
                               f"{_excerpt(resp.content)!r}", provider=PROVIDER) from None
    status = _text(root, "status")
    if not status:
        raise _no_envelope(resp, "XML that is not the API's envelope (no <status>)")
    description = redact_text(_text(root, "description"))[:_DESCRIPTION_CHARS]
    method = _text(root, "input")
    if status == STATUS_OK:
        result = root.find("result")
        return Answer(method, status, description, to_python(result) if result is not None else None)
    if status == STATUS_BAD_SIGNATURE:
        raise SmsAuthError(
            f"ogangi {method}: BAD_SIGNATURE ({description or 'invalid signature'}): check the private key "
            "(Password), the public key and the user name of the connection",
            provider=PROVIDER,
            code=status,
        )
    if status == STATUS_ERROR:
        raise error_for(method, description)
    raise SmsProtocolError(f"ogangi {method}: unknown status {status[:40]!r}: {description}", provider=PROVIDER,
                           code=status)


def error_for(method: str, description: str) -> SmsProviderError:
    """The exception for an ERROR answer, chosen by :data:`ERROR_KINDS`."""
    text = f"ogangi {method}: ERROR: {description or 'no description'}"
    for pattern, kind in ERROR_KINDS:
        if pattern.search(description):
            return kind(text, provider=PROVIDER, code=STATUS_ERROR, details=description)
    if method in CREATE_INPUTS:
        # No document says what this wording means: the broadcast or the SMS may exist.
        return SmsAmbiguousError(f"{text} (a wording the documents do not define: it may have been done)",
                                 provider=PROVIDER, code=STATUS_ERROR, details=description)
    return SmsProviderError(text, provider=PROVIDER, code=STATUS_ERROR, details=description)


def refused(err: BaseException) -> bool:
    """True when ``err`` is an explicit refusal (nothing was done): an ERROR or BAD_SIGNATURE answer,
    an HTTP refusal, or a request that never left. Anything else after a create or send left is
    ambiguous: the broadcast or the SMS may exist."""
    # An ERROR answer whose wording ERROR_KINDS does not know is not a refusal: the document
    # defines no ERROR wording, so nothing says the create or send was not carried out.
    return is_refusal(err)


# ---------------------------------------------------------------- result extraction


def _section(answer: Answer, name: str) -> Any:
    result = answer.result if isinstance(answer.result, Mapping) else {}
    if name not in result:
        raise SmsProtocolError(f"ogangi {answer.input}: OK answer without <{name}> in <result>", provider=PROVIDER)
    return result[name]


def shortcodes(answer: Answer) -> list[str]:
    """getShortcodes: the short/long codes, as strings (they may start with 0)."""
    items = _section(answer, "shortcodes") or []
    return [str(item.get("sc") if isinstance(item, Mapping) else item) for item in items]


def messages(answer: Answer) -> list[dict[str, Any]]:
    """sendSMSByFile: one dict per message (id, to, status, statusDescription…).

    ``<messages>`` holding text, or a child that is not a message's fields, is an unreadable answer to a
    send (:class:`SmsProtocolError`): dropping those items would report the SMS they stand for as never sent.
    """
    section = _section(answer, "messages")
    items = [] if section is None else section
    odd = non_object_types(items)
    if odd:
        raise SmsProtocolError(f"ogangi {answer.input}: OK answer whose <messages> holds {', '.join(odd)}, not one "
                               "message's fields per item", provider=PROVIDER)  # fmt: skip
    return [dict(item) for item in items]


def broadcast(answer: Answer) -> dict[str, Any]:
    """createBroadcastFromJson / getBroadcast: the broadcast, with ``statusName`` added.

    A ``<broadcast>`` that is not a set of fields (text, a list) is an unreadable answer:
    :class:`SmsProtocolError`, never a ``ValueError`` a caller could take for a refusal.
    """
    section = _section(answer, "broadcast") or {}
    if not isinstance(section, Mapping):
        raise SmsProtocolError(
            f"ogangi {answer.input}: OK answer whose <broadcast> holds {type(section).__name__}, not its fields",
            provider=PROVIDER,
        )
    data = dict(section)
    data["statusName"] = status_name(data)
    return data


def status_name(data: Mapping[str, Any]) -> str | None:
    """The broadcast's status as a name: from the numeric code, else from statusDescription."""
    code = data.get("status")
    if isinstance(code, int):
        return BROADCAST_STATUSES.get(code, f"UNKNOWN({code})")
    description = data.get("statusDescription")
    return str(description).upper() if description else None


# ---------------------------------------------------------------- waiting decisions
# Shared by the sensor (poke) and the trigger (deferred), so both decide alike.

WAITING, SUCCEEDED, FAILED = "waiting", "succeeded", "failed"


def broadcast_outcome(data: Mapping[str, Any]) -> tuple[str, str]:
    """Decide on a getBroadcast answer: (WAITING|SUCCEEDED|FAILED, human message).

    Failure is checked first: a stopped broadcast also gets an endDate.
    ``sentMessages >= expectedMessages`` counts only when something is expected,
    because a broadcast may report 0/0 before its audience is counted.
    """
    name = status_name(data) or "UNKNOWN"
    sent, expected = data.get("sentMessages") or 0, data.get("expectedMessages") or 0
    progress = f"{sent}/{expected} messages sent"
    label = f"broadcast {data.get('id')}"
    if name in BROADCAST_FAILED:
        return FAILED, f"{label} is {name} ({progress})"
    if data.get("endDate"):
        return SUCCEEDED, f"{label} finished at {data.get('endDate')} ({progress})"
    if isinstance(sent, int) and isinstance(expected, int) and expected > 0 and sent >= expected:
        return SUCCEEDED, f"{label} sent all messages ({progress})"
    if name == FINISHED:
        return SUCCEEDED, f"{label} is FINISHED ({progress})"
    return WAITING, f"{label} is {name} ({progress})"
