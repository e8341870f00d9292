"""The Ogangi Messangi MMC REST API as a local server, under ``/mmc/rest/api/…``.

Implemented: ``tools/sendSMSByFile`` (POST, multipart ``file``), ``getShortcodes``,
``createBroadcastFromJson`` (POST, form field ``to``), ``getBroadcast``,
``suspendBroadcast``, ``resumeBroadcast``, ``stopBroadcast`` (GET or POST) and
``DELETE …/broadcast/…``. The connection's Host is ``{sandbox url}/mmc``.

This module parses URLs, checks signatures and writes XML itself, as the real
server would: it is the independent other half of ``protocols/ogangi.py``
(importing that would also pull Airflow into the server). Where the provider's
documentation is silent it follows the same decisions as that module (the unit
tests check the shared tables are equal).

Accounts
    One instance, ``SANDBOX_OGANGI_INSTANCE_ID``, with user ``SANDBOX_OGANGI_USER``,
    key pair ``SANDBOX_OGANGI_PUBLIC_KEY`` / ``SANDBOX_OGANGI_PRIVATE_KEY`` and the
    short codes ``SANDBOX_OGANGI_SHORTCODES``; config ``ogangi_public_key`` /
    ``ogangi_private_key`` (``POST /_sandbox/config``) replace the key pair.

Every call
    The path is split on '/' before percent-decoding. The last two segments are the
    public key and the signature; the signature must be HMAC-SHA256 (private key)
    over the decoded parameters joined with '/', in hex. A wrong or unknown public
    key, or a wrong signature, answers ``BAD_SIGNATURE`` "Invalid signature, access
    denied" and changes nothing. An unknown method is HTTP 404, a wrong verb 405, a
    wrong number of parameters, an unknown instance or user ``ERROR``. Answers are
    HTTP 200 XML ``<input/><status/><description/>[<result/>]`` inside a root element
    named by the ``ogangi_xml_root`` config (default ``response``; empty: the rootless
    siblings the docs show). Times are ``yyyy-MM-dd'T'HH:mm:ss.SSS+00:00`` on the
    simulated clock.

sendSMSByFile
    CSV (UTF-8) or Excel, as the document says ("a File (text or excel)"): .xlsx read
    by openpyxl, legacy .xls (BIFF, OLE2) read by xlrd. Columns number, from, carrier,
    text, encoding, timezone, then ``{0}``, ``{1}``… values substituted in the text;
    a first row whose first cell is "number" is a header. Per row: a number that is
    not 10-15 digits is ``BAD_TO``; an encoding outside :data:`ENCODINGS` is
    ``BAD_ENCODING``; a ``from`` that is not one of the short codes is ``BAD_FROM``
    (empty: the first short code); an empty text ``NOT_SENT``; anything else
    ``SENT_TO_CARRIER``. Larger than ``ogangi_max_upload_bytes``: ``ERROR``.

Broadcasts (computed from timestamps on every read; nothing runs in the background)
    Recipients: a JSON array of ``{"to", "text", "params"}``. Each text is sent as
    written: the document never says the server fills ``{name}`` from ``params``, so
    the sandbox does not either (``params`` are kept, shown in the state, and unused).
    Any bad item fails the whole call with ``ERROR`` naming its position. Date
    ``dd-MM-yyyy HH:mm`` as wall time in ``ogangi_account_timezone`` (default UTC: no
    document names the zone), or ``null`` for
    now (+ ``ogangi_start_delay`` simulated seconds); a past date starts now.
    ``shortcodeIgnore`` true: the shortcode must be the instance's; false: the first
    one is used. Messages go out at ``ogangi_send_rate`` per simulated second.
    Status codes: 0 SCHEDULED, 1 RUNNING, 2 FINISHED, 3 SUSPENDED, 4 STOPPED.

    ===========  ===================================  ==========================
    call         allowed from                         result
    ===========  ===================================  ==========================
    edit (id)    SCHEDULED                            new recipients/text/date
    suspend      SCHEDULED, RUNNING                   SUSPENDED (progress kept)
    resume       SUSPENDED                            SCHEDULED or RUNNING
    stop         SCHEDULED, RUNNING, SUSPENDED        STOPPED, endDate = now
    delete       anything but RUNNING                 gone: later calls "not found"
    ===========  ===================================  ==========================

    Any other transition answers ``ERROR`` "Broadcast N cannot be … : it is X".

Admin: ``GET /_sandbox/ogangi/state`` (broadcasts with their recipients, messages
sent by file, counts of calls and bad signatures).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from airflow_sms_provider.sandbox.state import SandboxState

NAME = "ogangi"
BASE_PATH = "/mmc"
API_PATH = f"{BASE_PATH}/rest/api/"
PATH_PREFIXES = (API_PATH,)

SANDBOX_OGANGI_INSTANCE_ID = 8
SANDBOX_OGANGI_USER = "sandbox"
SANDBOX_OGANGI_PUBLIC_KEY = "sandbox-public-key-0001"
SANDBOX_OGANGI_PRIVATE_KEY = "SBX0-OGNG-4310-909C-C4BBC26F886F"
SANDBOX_OGANGI_SHORTCODES = ("24365", "0000000")
SANDBOX_CLIENT_ID = "SandboxClient01"

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

# Methods: path parameters (in order) and the HTTP verbs accepted.
METHODS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "tools/sendSMSByFile": (("instanceId",), ("POST",)),
    "getShortcodes": (("instanceId", "userName"), ("GET", "POST")),
    "createBroadcastFromJson": (
        ("instanceId", "broadcastId", "shortcode", "userName", "shortcodeIgnore", "campaignName", "date"),
        ("POST",),
    ),
    "getBroadcast": (("instanceId", "broadcastId"), ("GET", "POST")),
    "suspendBroadcast": (("instanceId", "broadcastId"), ("GET", "POST")),
    "resumeBroadcast": (("instanceId", "broadcastId"), ("GET", "POST")),
    "stopBroadcast": (("instanceId", "broadcastId"), ("GET", "POST")),
    "broadcast": (("instanceId", "broadcastId"), ("DELETE",)),
}
INPUT_NAMES = {"tools/sendSMSByFile": "sendSMS", "broadcast": "deleteBroadcast"}

OK, BAD_SIGNATURE, ERROR = "OK", "BAD_SIGNATURE", "ERROR"
BAD_SIGNATURE_TEXT = "Invalid signature, access denied"
ABSENT = "null"
DATE_FORMAT = "%d-%m-%Y %H:%M"
SCHEDULED, RUNNING, FINISHED, SUSPENDED, STOPPED, DELETED = (
    "SCHEDULED",
    "RUNNING",
    "FINISHED",
    "SUSPENDED",
    "STOPPED",
    "DELETED",
)
BROADCAST_STATUSES = {0: SCHEDULED, 1: RUNNING, 2: FINISHED, 3: SUSPENDED, 4: STOPPED, 5: DELETED}
STATUS_CODES = {name: code for code, name in BROADCAST_STATUSES.items()}
SMS_FILE_COLUMNS = ("number", "from", "carrier", "text", "encoding", "timezone")
ENCODINGS = frozenset({"UTF-8", "ISO-8859-1", "US-ASCII", "GSM", "UCS-2", "UTF-16"})
MESSAGE_DESCRIPTIONS = {
    "SENT_TO_CARRIER": "Sent to Carrier",
    "BAD_TO": "Invalid recipient number",
    "BAD_FROM": "Invalid sender",
    "BAD_ENCODING": "Unsupported encoding",
    "NOT_SENT": "Message not sent: empty text",
}
DEFAULT_CARRIER = "sandbox-carrier"
MAX_KEPT_MESSAGES = 10_000

_NUMBER = re.compile(r"[1-9][0-9]{9,14}")
_POSITIONAL = re.compile(r"\{([0-9]+)\}")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a legacy .xls workbook


# ---------------------------------------------------------------- model


class Failure(Exception):
    """An ERROR answer (``status`` may also be BAD_SIGNATURE)."""

    def __init__(self, description: str, status: str = ERROR) -> None:
        super().__init__(description)
        self.description = description
        self.status = status


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


# ---------------------------------------------------------------- helpers


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def signature(private_key: str, params: list[str]) -> str:
    return hmac.new(private_key.encode(), "/".join(params).encode(), hashlib.sha256).hexdigest()


def _xml_value(tag: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        inner = "".join(_xml_value(k, v) for k, v in value.items())
    elif isinstance(value, list):
        inner = "".join(_xml_value(item_tag, item) for item_tag, item in value)
    else:
        inner = escape(str(value))
    return f"<{tag}>{inner}</{tag}>"


def xml_answer(root: str, method: str, status: str, description: str, result: Any = None) -> bytes:
    """An answer as the docs show it: input, status, description and the optional result."""
    body = (
        f"<input>{escape(method)}</input><status>{status}</status>"
        f"<description>{escape(description)}</description>"
        + (_xml_value("result", result) if result is not None else "")
    )
    if root:
        body = f'<?xml version="1.0" encoding="UTF-8"?><{root}>{body}</{root}>'
    return body.encode("utf-8")


def _render(text: str, pattern: re.Pattern[str], values: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if isinstance(values, dict):
            return str(values[key]) if key in values else match.group(0)
        index = int(key)
        return str(values[index]) if index < len(values) else match.group(0)

    return pattern.sub(replace, text)


def _split_path(request: Request) -> list[str] | None:
    """The segments after ``/mmc/rest/api/``, split before percent-decoding."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    raw_text = raw.decode("latin-1").split("?", 1)[0]
    if not raw_text.startswith(API_PATH):
        return None
    return [unquote(part, encoding="utf-8", errors="replace") for part in raw_text[len(API_PATH) :].split("/")]


def _method_of(segments: list[str]) -> tuple[str, list[str]] | None:
    for length in (2, 1):
        name = "/".join(segments[:length])
        if name in METHODS:
            return name, segments[length:]
    return None


# ---------------------------------------------------------------- handlers


@dataclass
class Call:
    st: OgangiState
    method: str
    params: dict[str, str]
    request: Request
    now: datetime


def get_shortcodes(call: Call) -> Any:
    return {"shortcodes": [("shortcode", {"sc": code}) for code in SANDBOX_OGANGI_SHORTCODES]}


async def send_sms_by_file(call: Call) -> Any:
    form = await call.request.form(max_files=2, max_fields=100)
    try:
        call.request.scope["sandbox.form_keys"] = sorted(form.keys())
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Failure("Missing POST parameter 'file'")
        limit = int(call.st.cfg["ogangi_max_upload_bytes"])
        content = await upload.read(limit + 1)
        name = upload.filename or ""
    finally:
        await form.close()
    if len(content) > limit:
        raise Failure(f"File too large: more than {limit} bytes")
    rows = _read_rows(name, content)
    messages = [("message", _file_message(call, index, row)) for index, row in enumerate(rows)]
    if not messages:
        raise Failure("The file is empty: no recipients")
    call.st.files.append({"filename": name, "bytes": len(content), "rows": len(messages)})
    for _, message in messages:
        if len(call.st.messages) < MAX_KEPT_MESSAGES:
            call.st.messages.append(dict(message))
    return {"messages": messages}


def _read_rows(name: str, content: bytes) -> list[list[str]]:
    if content.startswith(b"PK") or name.lower().endswith((".xlsx", ".xlsm")):
        table = _read_xlsx(content)
    elif content.startswith(_OLE2_MAGIC) or name.lower().endswith(".xls"):
        table = _read_xls(content)
    else:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise Failure("Invalid file: not UTF-8 text or an Excel workbook") from None
        table = [row for row in csv.reader(io.StringIO(text))]
    table = [row for row in table if any(cell.strip() for cell in row)]
    if table and table[0] and table[0][0].strip().lower() == "number":
        table = table[1:]
    return table


def _read_xlsx(content: bytes) -> list[list[str]]:
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - openpyxl is an optional extra
        raise Failure("Invalid file: Excel files need openpyxl on the sandbox") from None
    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:
        raise Failure("Invalid file: not a readable Excel workbook") from None
    try:
        rows = []
        for record in book.worksheets[0].iter_rows(values_only=True):
            cells = []
            for cell in record:
                if isinstance(cell, float) and cell.is_integer():
                    cell = int(cell)
                cells.append("" if cell is None else str(cell))
            rows.append(cells)
        return rows
    finally:
        book.close()


def _read_xls(content: bytes) -> list[list[str]]:
    """A legacy Excel 97-2003 workbook (BIFF in an OLE2 container), first sheet."""
    try:
        import xlrd
    except ImportError:  # pragma: no cover - xlrd comes with the sandbox and test extras
        raise Failure("Invalid file: .xls files need xlrd on the sandbox") from None
    try:
        sheet = xlrd.open_workbook(file_contents=content).sheet_by_index(0)
    except Exception:
        raise Failure("Invalid file: not a readable Excel workbook") from None
    rows = []
    for index in range(sheet.nrows):
        cells = []
        for cell in sheet.row_values(index):
            if isinstance(cell, float) and cell.is_integer():
                cell = int(cell)
            cells.append(str(cell))
        rows.append(cells)
    return rows


def _file_message(call: Call, index: int, row: list[str]) -> dict[str, Any]:
    cells = (row + [""] * len(SMS_FILE_COLUMNS))[: len(SMS_FILE_COLUMNS)]
    number, sender, carrier, text, encoding, zone = (cell.strip() for cell in cells)
    params = row[len(SMS_FILE_COLUMNS) :]
    encoding = encoding or "UTF-8"
    sender = sender or SANDBOX_OGANGI_SHORTCODES[0]
    if not _NUMBER.fullmatch(number):
        status = "BAD_TO"
    elif sender not in SANDBOX_OGANGI_SHORTCODES:
        status = "BAD_FROM"
    elif encoding.upper() not in ENCODINGS:
        status = "BAD_ENCODING"
    elif not text:
        status = "NOT_SENT"
    else:
        status = "SENT_TO_CARRIER"
    return {
        "id": str(-next(call.st._message_ids)),
        "carrier": carrier or DEFAULT_CARRIER,
        "from": sender,
        "to": number,
        "text": _render(text, _POSITIONAL, params),
        "status": status,
        "statusDescription": MESSAGE_DESCRIPTIONS[status],
        "encoding": encoding,
        "date": _iso(call.now),
        "timezone": zone or "UTC",
        "clientId": SANDBOX_CLIENT_ID,
    }


async def create_broadcast(call: Call) -> Any:
    body = await call.request.body()
    fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    call.request.scope["sandbox.form_keys"] = sorted(fields)
    if "to" not in fields:
        raise Failure("Missing POST parameter 'to'")
    recipients = _recipients(fields["to"])
    p = call.params
    shortcode = _shortcode(p["shortcode"], p["shortcodeIgnore"])
    start = _start(p["date"], call)
    name = None if p["campaignName"] == ABSENT else p["campaignName"]
    st = call.st
    if p["broadcastId"] == "-1":
        item = Broadcast(next(st._ids), name, shortcode, recipients[0]["text"], recipients, start, call.now)
        st.broadcasts[item.id] = item
    else:
        item = st.broadcast(p["broadcastId"])
        status = item.status(call.now, st.rate)
        if status != SCHEDULED:
            raise Failure(f"Broadcast {item.id} cannot be edited: it is {status}")
        item.name, item.shortcode, item.text, item.recipients = name, shortcode, recipients[0]["text"], recipients
        item.start = item.resumed_at = start
        item.edits += 1
    return {"broadcast": {
        "id": item.id,
        "text": item.text,
        "startDate": _iso(item.start),
        "expectedMessages": item.expected,
        "statusDescription": item.status(call.now, st.rate),
        "shortcode": item.shortcode,
    }}  # fmt: skip


def _recipients(raw: str) -> list[dict[str, Any]]:
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise Failure(f"Invalid JSON in 'to': {exc.msg} at position {exc.pos}") from None
    if not isinstance(items, list) or not items:
        raise Failure("Invalid 'to': a non-empty JSON array of recipients is required")
    out = []
    for position, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise Failure(f"Invalid recipient at position {position}: an object is required")
        number, text, params = item.get("to"), item.get("text"), item.get("params") or {}
        if not isinstance(number, str) or not _NUMBER.fullmatch(number):
            raise Failure(f"Invalid recipient at position {position}: 'to' must be 10-15 digits")
        if not isinstance(text, str) or not text.strip():
            raise Failure(f"Invalid recipient at position {position}: 'text' is required")
        if not isinstance(params, dict):
            raise Failure(f"Invalid recipient at position {position}: 'params' must be an object")
        # Sent as written: nothing in the document says the server fills params into the text.
        out.append({"to": number, "text": text, "params": params, "rendered": text})
    return out


def _shortcode(value: str, ignore: str) -> str:
    # As documented: "if false the shortcode parameter will be ignored".
    if ignore == "false":
        return SANDBOX_OGANGI_SHORTCODES[0]
    if ignore != "true":
        raise Failure(f"Invalid shortcodeIgnore {ignore!r}: true or false is required")
    if value not in SANDBOX_OGANGI_SHORTCODES:
        raise Failure(f"Invalid shortcode {value!r} for instance {SANDBOX_OGANGI_INSTANCE_ID}")
    return value


def _start(value: str, call: Call) -> datetime:
    soon = call.now + timedelta(seconds=float(call.st.cfg["ogangi_start_delay"]))
    if value == ABSENT:
        return soon
    try:
        zone = ZoneInfo(str(call.st.cfg["ogangi_account_timezone"]))  # the instance's wall time
        when = datetime.strptime(value, DATE_FORMAT).replace(tzinfo=zone)
    except ValueError:
        raise Failure(f"Invalid date {value!r}: dd-MM-yyyy HH:mm or null is required") from None
    return max(when, soon)


def get_broadcast(call: Call) -> Any:
    st = call.st
    item = st.broadcast(call.params["broadcastId"])
    end = item.end_date(call.now, st.rate)
    return {"broadcast": {
        "id": item.id,
        "text": item.text,
        "startDate": _iso(item.start),
        "endDate": _iso(end) if end else None,
        "expectedMessages": item.expected,
        "sentMessages": item.sent(call.now, st.rate),
        "status": STATUS_CODES[item.status(call.now, st.rate)],
        "shortcode": item.shortcode,
    }}  # fmt: skip


def _transition(call: Call, verb: str, allowed: tuple[str, ...]) -> Broadcast:
    st = call.st
    item = st.broadcast(call.params["broadcastId"])
    status = item.status(call.now, st.rate)
    if status not in allowed:
        hint = "; stop or suspend it first" if verb == "deleted" else ""
        raise Failure(f"Broadcast {item.id} cannot be {verb}: it is {status}{hint}")
    item.calls[call.method] = item.calls.get(call.method, 0) + 1
    return item


def suspend_broadcast(call: Call) -> Any:
    item = _transition(call, "suspended", (SCHEDULED, RUNNING))
    item.sent_before = item.sending_seconds(call.now)
    item.state = "suspended"


def resume_broadcast(call: Call) -> Any:
    item = _transition(call, "resumed", (SUSPENDED,))
    item.state = "active"
    item.resumed_at = max(call.now, item.start)


def stop_broadcast(call: Call) -> Any:
    item = _transition(call, "stopped", (SCHEDULED, RUNNING, SUSPENDED))
    item.sent_before = item.sending_seconds(call.now)
    item.state, item.ended = "stopped", call.now


def delete_broadcast(call: Call) -> Any:
    item = _transition(call, "deleted", (SCHEDULED, SUSPENDED, FINISHED, STOPPED))
    item.sent_before = item.sending_seconds(call.now)
    item.state = "deleted"


HANDLERS: dict[str, Any] = {
    "tools/sendSMSByFile": send_sms_by_file,
    "getShortcodes": get_shortcodes,
    "createBroadcastFromJson": create_broadcast,
    "getBroadcast": get_broadcast,
    "suspendBroadcast": suspend_broadcast,
    "resumeBroadcast": resume_broadcast,
    "stopBroadcast": stop_broadcast,
    "broadcast": delete_broadcast,
}


# ---------------------------------------------------------------- dispatch


def _check_signature(st: OgangiState, values: list[str], public_key: str, given: str) -> None:
    expected = signature(str(st.cfg["ogangi_private_key"]), values)
    if public_key != str(st.cfg["ogangi_public_key"]) or not hmac.compare_digest(given, expected):
        st.bad_signatures += 1
        raise Failure(BAD_SIGNATURE_TEXT, BAD_SIGNATURE)


def _check_account(params: dict[str, str]) -> None:
    if params["instanceId"] != str(SANDBOX_OGANGI_INSTANCE_ID):
        raise Failure(f"Instance {params['instanceId']} not found")
    user = params.get("userName")
    if user is not None and user != SANDBOX_OGANGI_USER:
        raise Failure(f"User {user!r} not found in instance {params['instanceId']}")


async def api(request: Request) -> Response:
    """``/mmc/rest/api/…``: the whole Ogangi API."""
    sandbox: SandboxState = request.app.state.sandbox
    st: OgangiState = sandbox.providers[NAME]  # looked up per call: reset() replaces it
    segments = _split_path(request)
    found = _method_of(segments) if segments else None
    if found is None:
        return PlainTextResponse("Not Found", status_code=404)
    method, rest = found
    names, verbs = METHODS[method]
    if request.method not in verbs:
        return PlainTextResponse("Method Not Allowed", status_code=405, headers={"Allow": ", ".join(verbs)})
    st.calls[method] = st.calls.get(method, 0) + 1
    call = None
    try:
        if len(rest) != len(names) + 2:
            raise Failure(f"Wrong number of parameters: {method} takes {', '.join(names)}, publicKey, signature")
        values, public_key, given = rest[: len(names)], rest[-2], rest[-1]
        _check_signature(st, values, public_key, given)
        params = dict(zip(names, values, strict=True))
        _check_account(params)
        call = Call(st, method, params, request, sandbox.now())
        result = HANDLERS[method](call)
        if hasattr(result, "__await__"):
            result = await result
        status, description = OK, "Completed"
    except Failure as failure:
        result, status, description = None, failure.status, failure.description
    request.scope["sandbox.code"] = status
    root = str(st.cfg.get("ogangi_xml_root") or "")
    body = xml_answer(root, INPUT_NAMES.get(method, method), status, description, result)
    return Response(body, media_type="application/xml")


def new_state(sandbox: SandboxState) -> OgangiState:
    return OgangiState(sandbox)


def routes(sandbox: SandboxState) -> list[Route]:
    """The provider's API routes."""
    return [Route(API_PATH + "{rest:path}", api, methods=["GET", "POST", "DELETE", "PUT"])]


# ---------------------------------------------------------------- admin


async def admin_state(request: Request) -> Response:
    sandbox: SandboxState = request.app.state.sandbox
    return JSONResponse(sandbox.providers[NAME].snapshot(sandbox.now()))


def admin_routes(sandbox: SandboxState) -> list[Route]:
    """Sandbox-only routes under ``/_sandbox/ogangi/``."""
    return [Route("/_sandbox/ogangi/state", admin_state, methods=["GET"])]
