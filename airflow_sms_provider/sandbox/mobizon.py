"""The Mobizon API as a local server: ``/service/{module}/{method}`` (see reference/mobizon/).

Implemented: ``user/getOwnBalance``; ``campaign/create|addRecipients|send|get|getInfo|
getLinks|list|delete``; ``message/sendSmsMessage|getSMSStatus|list``;
``taskqueue/getStatus``. Any other module answers code 4, any other method code 5.

This module parses requests itself, as the real (PHP) server would, and keeps its own
copy of the response codes: it is the independent other half of the client codec in
``protocols/mobizon.py`` (importing that would also pull Airflow into the server).

Wire conventions the sandbox follows
    Every answer is HTTP 200 ``{"code", "data", "message"}``. Record data (get,
    getInfo, list items, getSMSStatus) carries numbers as strings ("123", "0.0000"),
    as Mobizon's database rows do; action results (create's id, send's status,
    sendSmsMessage, addRecipients' messageId, task ids) are integers as documented.
    Times are ``YYYY-MM-DD HH:MM:SS`` in UTC on the simulated clock.

Accounts
    ``SANDBOX_MOBIZON_API_KEY`` (balance 1000.0000 KZT) exists after every reset;
    more via ``POST /_sandbox/mobizon/accounts``. Campaigns, messages and tasks belong
    to the account that created them. An account whose ``domain`` is set and differs
    from the ``serving_domain`` config (and from the request's host name) gets code 13
    with that domain in ``data``; a blocked one gets 14. Sending charges
    ``segment_price`` per segment; deleting a campaign that has not started refunds it.

Deterministic rules (phone numbers are normalised by dropping every non-digit)
    * valid: 10-15 digits, not starting with 0, else per-recipient code 3;
    * ending in one of ``stop_list_suffixes`` (default "0000"): code 5 (stop list);
    * starting with one of ``restricted_prefixes`` (default none): code 6;
    * starting with one of ``unknown_operator_prefixes`` (default "999"): code 7;
    * final delivery status by suffix: "13" UNDELIV, "66" EXPIRED, "99" REJECTD,
      anything else DELIVRD;
    * a campaign whose text contains "moderate" (any case) goes to MODERATION
      (send answers 1) for ``moderation_delay`` simulated seconds; if the text also
      contains "decline" it then ends DECLINED with a moderator comment, else it
      is approved (READY_FOR_SEND) and runs.
    * sender (``from``): up to 11 Latin letters, digits, spaces, '.', '-' or '_',
      or up to 15 digits (an optional leading '+').

Lifecycle (computed from timestamps on every read; nothing runs in the background)
    send at T -> (MODERATION until T+moderation_delay ->) READY_FOR_SEND until
    start = max(approval + send_start_delay, deferredToTs) -> RUNNING: message i is
    ACCEPTD at start + (i+1)/rate, rate = min(send_rate, rateLimit/ratePeriod) per
    simulated second, ENQUEUD before that -> SENT once all are accepted -> final
    status ``delivery_delay`` later -> DONE when all are final. A declined campaign's
    messages stay NEW. Counters count ENQUEUD messages as NEW (there is no ENQUEUD
    counter). ``moderationStatus`` is null until the campaign is sent, then
    MODERATION, DECLINED, READY_FOR_SEND (approved) or AUTO_READY_FOR_SEND.

Contact book (the same for every account)
    cards: 101 Aigerim 77010000101 (also ``work`` 77020000101), 102 Daniyar
    77010000102, 103 Olga 77010000103, 104 Marat 77010000104, 105 Nobody (no mobile);
    fields ``mobile``, ``name``, ``city`` fill template placeholders.
    groups: 1 "Sandbox customers" = 101, 102, 103; 2 "Sandbox staff" = 103, 104, 105.
    ``recipientContacts``: "101" uses the card's mobile, "101:work" a named field;
    unknown card -> 30, card without mobile -> 31, unknown field -> 32.

Background tasks (groups and files, code 100)
    progress on the simulated clock at ``task_rows_per_second`` rows, at least one
    simulated second; recipients are added when the task completes (status 2). A
    file that cannot be decoded ends with status 3. While a task runs, the campaign is
    locked: addRecipients and send answer 10. ``taskqueue/getStatus`` polled again
    within ``taskqueue_min_interval`` real seconds answers 30.

Files: CSV (``params[recipientsFile*]`` options honoured) or Excel read by openpyxl
(.xlsx; a legacy .xls answers code 1). Template campaigns need a header row with a
``recipient`` column; the other headers name placeholders.

Big campaigns (benchmarks load a million recipients): messages are slotted objects;
a completed task's rows are dropped once added; counters of a campaign not yet sent
are counted, not walked; ``message/list`` of one campaign in id order (the usual
paging) slices instead of filtering and sorting every message; form bodies are
parsed with a short cut for ``recipients%5B7%5D`` keys. Answers are unchanged.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import itertools
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from airflow_sms_provider.sandbox.state import SandboxState

NAME = "mobizon"
PATH_PREFIXES = ("/service/",)

SANDBOX_MOBIZON_API_KEY = "sandboxmobizon0123456789abcdef0123456789"
DEFAULT_BALANCE = 1000.0
DEFAULT_CURRENCY = "KZT"
DEFAULT_SENDER = "SANDBOX"
SHORT_LINK_BASE = "https://short.sandbox.invalid/"

# Config keys this module reads from SandboxState.config (create_app(**config)).
DEFAULTS: dict[str, Any] = {
    "serving_domain": None,  # accounts whose domain differs get code 13
    "taskqueue_min_interval": 1.0,  # real seconds between two polls of one task
    "send_rate": 100.0,  # messages per simulated second
    "send_start_delay": 1.0,  # simulated seconds from approval to the first message
    "delivery_delay": 5.0,  # simulated seconds from ACCEPTD to the final status
    "moderation_delay": 60.0,  # simulated seconds a "moderate" campaign waits
    "task_rows_per_second": 1000,  # background import speed (simulated)
    "add_recipients_hold": 0.0,  # real seconds addRecipients keeps the campaign locked
    "segment_price": 10.0,  # account currency per segment
    "stop_list_suffixes": ("0000",),
    "restricted_prefixes": (),
    "unknown_operator_prefixes": ("999",),
}

# ---------------------------------------------------------------- codes (mobizon/_other-apiCode.md)

OK, VALIDATION, NOT_FOUND = 0, 1, 2
BAD_MODULE, BAD_METHOD, BAD_FORMAT = 4, 5, 6
AUTH, DATA_UPDATE, MISSING_PARAM, INCORRECT_PARAM = 8, 10, 11, 12
WRONG_DOMAIN, BLOCKED, RATE_LIMITED = 13, 14, 30
PARTIALLY_DONE, NOTHING_DONE, BACKGROUND = 98, 99, 100

# Per-recipient codes of campaign/addRecipients.
R_ADDED, R_EMPTY, R_NO_NUMBER, R_FORMAT, R_DUPLICATE = 0, 1, 2, 3, 4
R_STOP_LIST, R_COUNTRY, R_OPERATOR, R_PLACEHOLDERS = 5, 6, 7, 20
R_NO_CARD, R_NO_MOBILE, R_NO_CONTACT = 30, 31, 32
RECIPIENT_MESSAGES = {
    R_EMPTY: "the phone number is empty",
    R_NO_NUMBER: "no phone number in the data",
    R_FORMAT: "not an international phone number",
    R_DUPLICATE: "already in the campaign",
    R_STOP_LIST: "the number is in the stop list",
    R_COUNTRY: "sending to this country is restricted",
    R_OPERATOR: "unknown operator or country",
    R_PLACEHOLDERS: "placeholder values are missing",
}

TASK_WAITING, TASK_RUNNING, TASK_DONE, TASK_REJECTED = 0, 1, 2, 3

TS_FORMAT = "%Y-%m-%d %H:%M:%S"
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
_PHP_INT = re.compile(r"-?[1-9][0-9]*|0")
_SPLIT = re.compile(r"[,\r\n]+")
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = frozenset("^{}\\[~]|€\f")


# ---------------------------------------------------------------- PHP request parsing


def _php_name(name: str) -> str:
    # PHP turns ' ' and '.' in a top-level variable name into '_'.
    return name.lstrip(" ").replace(" ", "_").replace(".", "_")


@functools.lru_cache(maxsize=8192)  # keys repeat on every call: recipients[0] .. recipients[499]
def _php_key(key: str) -> tuple[str, tuple[str, ...]]:
    """``a[b][]`` -> ("a", ("b", "")), with PHP's quirks for odd brackets."""
    start = key.find("[")
    if start <= 0:
        return _php_name(key), ()
    subs: list[str] = []
    base, pos = key[:start], start
    while pos < len(key) and key[pos] == "[":
        end = key.find("]", pos)
        if end == -1:
            if not subs:  # an unclosed first '[' becomes '_' and stays in the name
                return _php_name(base) + "_" + key[start + 1 :], ()
            break
        subs.append(key[pos + 1 : end])
        pos = end + 1  # anything after a ']' that is not '[' is ignored, as in PHP
    return _php_name(base), tuple(subs)


@functools.lru_cache(maxsize=8192)
def _php_sub(sub: str) -> int | str:
    return int(sub) if _PHP_INT.fullmatch(sub) else sub


def _php_index(node: dict[Any, Any], sub: str) -> Any:
    if sub == "":
        ints = [k for k in node if isinstance(k, int)]
        return max(ints) + 1 if ints else 0
    return _php_sub(sub)


def _unquote(text: str) -> str:
    """``unquote(text.replace("+", " "))`` as parse_qsl does, fast for the common bracketed key."""
    if "%" not in text and "+" not in text:
        return text
    if "+" not in text:
        brackets = text.replace("%5B", "[").replace("%5D", "]")
        if "%" not in brackets:
            return brackets
    return unquote(text.replace("+", " "), errors="replace")


def parse_form(body: str) -> list[tuple[str, str]]:
    """``parse_qsl(body, keep_blank_values=True)``, with a short cut for keys like ``recipients%5B7%5D``."""
    pairs = []
    for piece in body.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs.append((_unquote(name), _unquote(value)))
    return pairs


def _listify(value: Any) -> Any:
    """PHP arrays with keys 0..n-1 in order become lists; other arrays stay dicts."""
    if not isinstance(value, dict):
        return value
    items = {k: _listify(v) for k, v in value.items()}
    return list(items.values()) if list(items) == list(range(len(items))) else items


def php_parse(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Build ``$_GET``/``$_POST`` from flat ``(key, value)`` pairs: ``data[text]`` -> {"data": {"text"}}."""
    root: dict[Any, Any] = {}
    for key, value in pairs:
        base, subs = _php_key(key)
        if not base:
            continue
        if not subs:
            root[base] = value
            continue
        node = root.get(base)
        if not isinstance(node, dict):
            node = root[base] = {}
        for sub in subs[:-1]:
            index = _php_index(node, sub)
            child = node.get(index)
            if not isinstance(child, dict):
                child = node[index] = {}
            node = child
        node[_php_index(node, subs[-1])] = value
    return {str(k): _listify(v) for k, v in root.items()}


_INDEX = re.compile(r"\[\d+\]")


def _form_keys(pairs: Iterable[tuple[str, Any]], files: Iterable[str]) -> list[str]:
    # Numeric indices collapsed so 500 recipients log as one key.
    keys = {_INDEX.sub("[*]", key) if "[" in key else key for key, _ in pairs} | set(files)
    return sorted(keys)


# ---------------------------------------------------------------- small helpers


def _int(value: Any, default: int | None = None) -> int | None:
    """A PHP-ish integer from a form value; ``default`` when absent, None when not an integer."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    text = str(value).strip() if isinstance(value, str) else ""
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else None


def _values(value: Any) -> list[Any]:
    """An "array or comma/newline separated string" parameter as a list."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [part.strip() for part in _SPLIT.split(str(value)) if part.strip()]


def _ids(value: Any) -> list[int]:
    out = []
    for item in _values(value):
        number = _int(item)
        if number is not None:
            out.append(number)
    return out


def _present(value: Any) -> bool:
    return value not in (None, "", [], {})


def _ts(moment: datetime | None) -> str | None:
    return moment.strftime(TS_FORMAT) if moment else None


def _parse_ts(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value), TS_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _money(amount: float) -> str:
    return f"{amount:.4f}"


_NON_DIGITS = re.compile(r"\D")


def _digits(raw: Any) -> str:
    text = raw if isinstance(raw, str) else str(raw)
    return text if text.isdigit() and text.isascii() else _NON_DIGITS.sub("", text)


@functools.lru_cache(maxsize=4096)
def segments(text: str) -> int:
    """SMS parts: GSM-7 160 / 153 per part (extension characters count twice), else UCS-2 70 / 67."""
    if all(ch in _GSM7 or ch in _GSM7_EXT for ch in text):
        length = sum(2 if ch in _GSM7_EXT else 1 for ch in text)
        single, part = 160, 153
    else:
        length = len(text.encode("utf-16-le")) // 2
        single, part = 70, 67
    return 1 if length <= single else math.ceil(length / part)


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


# ---------------------------------------------------------------- model


@dataclass
class Account:
    api_key: str
    balance: float = DEFAULT_BALANCE
    currency: str = DEFAULT_CURRENCY
    blocked: bool = False
    domain: str | None = None


@dataclass
class Link:
    id: int
    code: str
    full: str

    @property
    def short(self) -> str:
        return SHORT_LINK_BASE + self.code


@dataclass(slots=True)  # campaigns may hold a million of these
class Message:
    id: int
    campaign_id: int
    index: int  # position in the campaign: the sending order
    number: str
    text: str
    seg_num: int
    groups: str = ""

    @property
    def uuid(self) -> str:
        return uuid.UUID(int=self.id).hex


@dataclass
class Campaign:
    id: int
    owner: str
    type: int
    text: str
    created: datetime
    name: str = ""
    sender: str = ""
    rate_limit: int | None = None
    rate_period: int | None = None
    deferred_to: datetime | None = None
    validity: int = 1440
    mclass: int = 1
    shorten_links: int = 0
    track_recipients: int = 0
    links: list[Link] = field(default_factory=list)
    messages: dict[str, Message] = field(default_factory=dict)  # number -> message
    group_ids: list[str] = field(default_factory=list)
    rejected: int = 0
    send_calls: int = 0
    add_calls: int = 0
    sent_at: datetime | None = None
    moderated: bool = False
    declined: bool = False
    deleted: bool = False
    busy: bool = False  # an addRecipients call holds the campaign lock
    task_id: int | None = None  # a background import holds the campaign lock
    charged: float = 0.0

    @property
    def locked(self) -> bool:
        return self.busy or self.task_id is not None


_NO_VALUES: Mapping[str, Any] = MappingProxyType({})


@dataclass(slots=True)  # a file task may hold a million of these
class Row:
    """One recipient to add, whatever the source."""

    raw: Any  # None: the data had no recipient key
    values: Mapping[str, Any] = field(default_factory=lambda: _NO_VALUES)  # shared: rows never mutate it
    contact: str | None = None
    code: int | None = None  # already rejected while reading the source (contact codes)
    groups: str = ""


@dataclass
class Task:
    id: int
    owner: str
    campaign_id: int
    created: datetime
    duration: float  # simulated seconds
    rows: list[Row]
    flag: int
    error: str | None = None
    group_ids: list[str] = field(default_factory=list)
    done: bool = False
    last_poll: float | None = None  # time.monotonic() of the last answered poll
    size: int = 0  # rows in the task (``rows`` is emptied once they are added)

    @property
    def finish(self) -> datetime:
        return self.created + timedelta(seconds=self.duration)


@dataclass(frozen=True)
class Timeline:
    """When a sent campaign passes each stage."""

    approve: datetime
    start: datetime
    rate: float
    count: int
    delivery: float

    def accepted(self, index: int) -> datetime:
        return self.start + timedelta(seconds=(index + 1) / self.rate)

    def final(self, index: int) -> datetime:
        return self.accepted(index) + timedelta(seconds=self.delivery)


@dataclass
class Reply:
    code: int
    data: Any = None
    message: str = ""


@dataclass
class Upload:
    filename: str
    content: bytes


class Invalid(Exception):
    """A validation failure answered with ``code`` and ``{field: message}``."""

    def __init__(self, field_name: str, message: str, code: int = VALIDATION) -> None:
        super().__init__(message)
        self.reply = Reply(code, {field_name: message}, message)


class _Errors(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.reply = Reply(VALIDATION, errors, "; ".join(f"{k}: {v}" for k, v in errors.items()))


# ---------------------------------------------------------------- state


class MobizonState:
    """Accounts, campaigns, messages and background tasks of the emulated Mobizon."""

    def __init__(self, sandbox: SandboxState) -> None:
        self.sandbox = sandbox
        self.accounts: dict[str, Account] = {SANDBOX_MOBIZON_API_KEY: Account(SANDBOX_MOBIZON_API_KEY)}
        self.campaigns: dict[int, Campaign] = {}
        self.messages: dict[int, Message] = {}
        self.tasks: dict[int, Task] = {}
        self._campaign_ids = itertools.count(1001)
        self._message_ids = itertools.count(200001)
        self._task_ids = itertools.count(70001)
        self._link_ids = itertools.count(501)

    @property
    def cfg(self) -> dict[str, Any]:
        return self.sandbox.config

    # ------------------------------------------------------------ lookups

    def campaign(self, account: Account, campaign_id: Any) -> Campaign | None:
        """The account's live (not deleted) campaign, or None."""
        camp = self.campaigns.get(_int(campaign_id) or 0)
        return camp if camp and camp.owner == account.api_key and not camp.deleted else None

    def visible_message(self, account: Account, message_id: int) -> tuple[Campaign, Message] | None:
        msg = self.messages.get(message_id)
        camp = self.campaign(account, msg.campaign_id) if msg else None
        if msg is None or camp is None or camp.messages.get(msg.number) is not msg:
            return None
        return camp, msg

    # ------------------------------------------------------------ lifecycle

    def timeline(self, camp: Campaign) -> Timeline | None:
        if camp.sent_at is None:
            return None
        moderation = float(self.cfg["moderation_delay"]) if camp.moderated else 0.0
        approve = camp.sent_at + timedelta(seconds=moderation)
        start = approve + timedelta(seconds=float(self.cfg["send_start_delay"]))
        if camp.deferred_to and camp.deferred_to > start:
            start = camp.deferred_to
        rate = min(float(self.cfg["send_rate"]), MAX_RATE)
        if camp.rate_limit and camp.rate_period:
            rate = min(rate, camp.rate_limit / camp.rate_period)
        return Timeline(approve, start, rate, len(camp.messages), float(self.cfg["delivery_delay"]))

    def status(self, camp: Campaign, now: datetime) -> str:
        """The campaign's commonStatus at ``now``."""
        line = self.timeline(camp)
        if line is None:
            return "NEW"
        if now < line.approve:
            return "MODERATION"
        if camp.declined:
            return "DECLINED"
        if now < line.start:
            return "READY_FOR_SEND"
        if now < line.accepted(line.count - 1):
            return "RUNNING"
        if now < line.final(line.count - 1):
            return "SENT"
        return "DONE"

    def moderation_status(self, camp: Campaign, now: datetime) -> str | None:
        line = self.timeline(camp)
        if line is None:
            return None
        if not camp.moderated:
            return "AUTO_READY_FOR_SEND"
        if now < line.approve:
            return "MODERATION"
        return "DECLINED" if camp.declined else "READY_FOR_SEND"

    def message_state(
        self, camp: Campaign, msg: Message, now: datetime, line: Timeline | None = None
    ) -> tuple[str, datetime | None, datetime | None]:
        """(status, startSendTs, statusUpdateTs) of a message at ``now`` (pass ``line`` when looping)."""
        line = line or self.timeline(camp)
        if line is None or camp.declined or now < line.approve:
            return "NEW", None, None
        accepted = line.accepted(msg.index)
        if now < accepted:
            return "ENQUEUD", None, None
        final = line.final(msg.index)
        if now < final:
            return "ACCEPTD", accepted, accepted
        return final_status(msg.number), accepted, final

    # ------------------------------------------------------------ background tasks

    def settle(self, now: datetime) -> None:
        """Complete the background tasks whose time has come."""
        for task in self.tasks.values():
            if not task.done and now >= task.finish:
                self._complete(task)

    def _complete(self, task: Task) -> None:
        task.done = True
        camp = self.campaigns.get(task.campaign_id)
        if camp is None:
            return
        camp.task_id = None
        if task.error is None and not camp.deleted and camp.sent_at is None:
            self.add_rows(camp, task.rows, task.flag, results=False)
            camp.group_ids.extend(g for g in task.group_ids if g not in camp.group_ids)
        task.rows = []  # what the task added lives in the campaign now; the rows' memory goes back

    def start_task(self, camp: Campaign, rows: list[Row], flag: int, now: datetime, **extra: Any) -> Task:
        per_second = max(1.0, float(self.cfg["task_rows_per_second"]))
        duration = max(1.0, len(rows) / per_second)
        task = Task(next(self._task_ids), camp.owner, camp.id, now, duration, rows, flag, size=len(rows), **extra)
        self.tasks[task.id] = task
        camp.task_id = task.id
        return task

    def task_progress(self, task: Task, now: datetime) -> tuple[int, int]:
        """(progress, status) of a task at ``now``."""
        if task.done:
            return (0, TASK_REJECTED) if task.error else (100, TASK_DONE)
        elapsed = (now - task.created).total_seconds()
        if elapsed <= 0:
            return 0, TASK_WAITING
        return min(99, int(elapsed / task.duration * 100)), TASK_RUNNING

    # ------------------------------------------------------------ recipients

    def number_rules(self) -> tuple[tuple[str, ...], ...]:
        """(stop-list suffixes, restricted prefixes, unknown-operator prefixes) from the config now."""
        cfg = self.cfg
        return (tuple(cfg["stop_list_suffixes"]), tuple(cfg["restricted_prefixes"]),
                tuple(cfg["unknown_operator_prefixes"]))  # fmt: skip

    def number_code(self, number: str, rules: tuple[tuple[str, ...], ...] | None = None) -> int:
        """Per-recipient code for a normalised number (0 = acceptable); ``rules`` from :meth:`number_rules`."""
        stop_list, restricted, unknown = rules or self.number_rules()
        if not 10 <= len(number) <= 15 or number.startswith("0"):
            return R_FORMAT
        if number.endswith(stop_list):
            return R_STOP_LIST
        if restricted and number.startswith(restricted):
            return R_COUNTRY
        if unknown and number.startswith(unknown):
            return R_OPERATOR
        return R_ADDED

    def add_rows(
        self, camp: Campaign, rows: Iterable[Row], flag: int, *, results: bool = True
    ) -> list[dict[str, Any]]:
        """Add recipients to ``camp``; one result per row, as addRecipients answers.

        ``results=False`` (background tasks, which answer nothing per row) keeps only counts.
        """
        rules = self.number_rules()  # once per call, not per number
        if not results:
            camp.rejected += sum(1 for row in rows if self._add_row(camp, row, flag, rules)["code"] != R_ADDED)
            return []
        out = [self._add_row(camp, row, flag, rules) for row in rows]
        camp.rejected += sum(1 for result in out if result["code"] != R_ADDED)
        return out

    def _add_row(self, camp: Campaign, row: Row, flag: int, rules: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
        result: dict[str, Any] = {"recipient": None, "code": row.code, "messageId": None, "number": row.raw}
        if row.contact is not None:
            result["contact"] = int(row.contact) if row.contact.isdigit() else row.contact
        if row.code is not None:
            return result
        raw = None if row.raw is None else str(row.raw).strip()
        number = _digits(raw or "")
        result["recipient"] = number or raw or None
        text = camp.text
        if raw is None:
            code = R_NO_NUMBER
        elif not raw:
            code = R_EMPTY
        else:
            code = self.number_code(number, rules)
        if code == R_ADDED and camp.type == 3:
            filled = fill_placeholders(camp.text, row.values, flag)
            code = R_PLACEHOLDERS if filled is None else code
            text = filled or ""
        if code == R_ADDED and number in camp.messages:
            code = R_DUPLICATE
        result["code"] = code
        if code == R_ADDED:
            msg = self._new_message(camp, number, text, row.groups)
            result["messageId"] = msg.id
        return result

    def _new_message(self, camp: Campaign, number: str, text: str, groups: str) -> Message:
        for link in camp.links:  # shortened links replace the full ones in what is sent
            text = text.replace(link.full, link.short)
        msg = Message(next(self._message_ids), camp.id, len(camp.messages), number, text, segments(text), groups)
        camp.messages[number] = msg
        self.messages[msg.id] = msg
        return msg

    def clear_recipients(self, camp: Campaign) -> None:
        for msg in camp.messages.values():
            self.messages.pop(msg.id, None)
        camp.messages.clear()
        camp.rejected = 0
        camp.group_ids.clear()

    # ------------------------------------------------------------ campaigns

    def new_campaign(self, owner: str, fields: Mapping[str, Any], now: datetime) -> Campaign:
        camp = Campaign(id=next(self._campaign_ids), owner=owner, created=now, **fields)
        if camp.shorten_links:
            for full in dict.fromkeys(LINK.findall(camp.text)):
                link_id = next(self._link_ids)
                camp.links.append(Link(link_id, f"sbx{link_id}", full))
        self.campaigns[camp.id] = camp
        return camp

    def send(self, camp: Campaign, account: Account, now: datetime) -> int:
        """Mark ``camp`` sent at ``now`` and charge it; the send status (1 moderation, 2 sent)."""
        text = camp.text.lower()
        camp.sent_at = now
        camp.moderated = MODERATE_WORD in text
        camp.declined = camp.moderated and DECLINE_WORD in text
        camp.charged = sum(m.seg_num for m in camp.messages.values()) * float(self.cfg["segment_price"])
        account.balance -= camp.charged
        return 1 if camp.moderated else 2

    # ------------------------------------------------------------ views

    def counters(self, camp: Campaign, now: datetime) -> dict[str, Any]:
        price = float(self.cfg["segment_price"])
        msgs = {status: 0 for status in COUNTER_STATUSES}
        segs = dict(msgs)
        line = self.timeline(camp)
        if line is None or camp.declined or now < line.approve:  # every message is NEW: count, don't walk
            msgs["NEW"], segs["NEW"] = len(camp.messages), sum(msg.seg_num for msg in camp.messages.values())
        else:
            for msg in camp.messages.values():
                status = self.message_state(camp, msg, now, line)[0]
                status = "NEW" if status == "ENQUEUD" else status  # no ENQUEUD counter exists
                msgs[status] += 1
                segs[status] += msg.seg_num
        out = {"updateTs": _ts(now)}
        for status in COUNTER_STATUSES:
            out[f"total{status.capitalize()}SegNum"] = str(segs[status])
        out["totalSegNum"] = str(sum(segs.values()))
        for status in COUNTER_STATUSES:
            out[f"total{status.capitalize()}MsgNum"] = str(msgs[status])
        out["totalMsgNum"] = str(len(camp.messages))
        for status in COUNTER_STATUSES:
            out[f"total{status.capitalize()}MsgCost"] = _money(segs[status] * price)
        out["totalCost"] = _money(sum(segs.values()) * price)
        out["recipientsRejected"] = str(camp.rejected)
        return out

    def campaign_row(self, camp: Campaign, now: datetime) -> dict[str, Any]:
        """campaign/get fields."""
        status = self.status(camp, now)
        line = self.timeline(camp)
        started = line is not None and status in ("RUNNING", "SENT", "DONE")
        ended = line is not None and status in ("SENT", "DONE")
        return {
            "id": str(camp.id),
            "moderationStatus": self.moderation_status(camp, now),
            "commonStatus": status,
            "type": str(camp.type),
            "name": camp.name,
            "from": camp.sender,
            "text": camp.text,
            "deferredToTs": _ts(camp.deferred_to),
            "createTs": _ts(camp.created),
            "startSendTs": _ts(line.start) if started and line else None,
            "endSendTs": _ts(line.accepted(line.count - 1)) if ended and line else None,
            "validity": str(camp.validity),
            "mclass": str(camp.mclass),
            "isDeleted": "1" if camp.deleted else "0",
            "globalComment": DECLINE_COMMENT if status == "DECLINED" else None,
            "groups": ",".join(camp.group_ids),
            "groupsList": [self._group_row(g) for g in camp.group_ids],
            "msgType": "SMS",
            "rateLimit": _str_or_none(camp.rate_limit),
            "ratePeriod": _str_or_none(camp.rate_period),
            "sendStatus": status if status in ("SENT", "DONE") else None,
            "trackShortLinkRecipients": str(camp.track_recipients),
            "creationWay": "1",
        }

    def campaign_info(self, camp: Campaign, now: datetime, filled: bool = False) -> dict[str, Any]:
        """campaign/getInfo fields: campaign/get plus counters."""
        row = self.campaign_row(camp, now)
        if filled and camp.type == 3 and camp.messages:
            row["text"] = next(iter(camp.messages.values())).text
        row["counters"] = self.counters(camp, now)
        return row

    @staticmethod
    def _group_row(group_id: str) -> dict[str, str]:
        name, cards = CONTACT_GROUPS[group_id]
        with_mobile = [c for c in cards if CONTACT_CARDS[c].get("mobile")]
        return {"id": group_id, "name": name, "cardsCnt": str(len(with_mobile))}

    def message_row(
        self, camp: Campaign, msg: Message, now: datetime, number_info: bool, line: Timeline | None = None
    ) -> dict[str, Any]:
        """message/list item."""
        status, started, updated = self.message_state(camp, msg, now, line)
        row = {
            "id": str(msg.id),
            "campaignId": str(camp.id),
            "segNum": str(msg.seg_num),
            "segUserBuy": _money(float(self.cfg["segment_price"])),
            "from": camp.sender or DEFAULT_SENDER,
            "to": msg.number,
            "text": msg.text,
            "status": status,
            "groups": msg.groups,
            "uuid": msg.uuid,
            "startSendTs": _ts(started),
            "statusUpdateTs": _ts(updated),
        }
        if number_info:
            row["countryA2"] = country_of(msg.number)
            row["operatorName"] = "Sandbox Mobile"
        return row

    def snapshot(self, now: datetime, campaign_id: int | None = None, with_messages: bool = True) -> dict[str, Any]:
        """Everything a test asserts on (``GET /_sandbox/mobizon/state``); plain numbers."""
        self.settle(now)
        campaigns = [c for c in self.campaigns.values() if campaign_id is None or c.id == campaign_id]
        return {
            "now": now.isoformat(),
            "accounts": [_account_view(a) for a in self.accounts.values()],
            "campaigns": [self._campaign_summary(c, now, with_messages) for c in campaigns],
            "tasks": [self._task_summary(t, now) for t in self.tasks.values()],
        }

    def _campaign_summary(self, camp: Campaign, now: datetime, with_messages: bool) -> dict[str, Any]:
        messages = []
        line = self.timeline(camp)
        for msg in camp.messages.values() if with_messages else ():
            status = self.message_state(camp, msg, now, line)[0]
            messages.append({"id": msg.id, "to": msg.number, "text": msg.text, "status": status, "segNum": msg.seg_num})
        return {
            "id": camp.id,
            "account": _mask_key(camp.owner),
            "status": self.status(camp, now),
            "moderationStatus": self.moderation_status(camp, now),
            "type": camp.type,
            "name": camp.name,
            "text": camp.text,
            "from": camp.sender,
            "deferredToTs": _ts(camp.deferred_to),
            "deleted": camp.deleted,
            "sendCalls": camp.send_calls,
            "addRecipientsCalls": camp.add_calls,
            "recipients": {m["to"]: {"messageId": m["id"], "text": m["text"]} for m in messages},
            "recipientsCount": len(camp.messages),
            "recipientsRejected": camp.rejected,
            "messages": messages,
            "groups": list(camp.group_ids),
            "links": [{"id": link.id, "fullLink": link.full, "shortLink": link.short} for link in camp.links],
            "globalComment": DECLINE_COMMENT if camp.declined and self.status(camp, now) == "DECLINED" else None,
            "counters": {k: _plain_number(v) for k, v in self.counters(camp, now).items() if k != "updateTs"},
            "locked": camp.locked,
        }

    def _task_summary(self, task: Task, now: datetime) -> dict[str, Any]:
        progress, status = self.task_progress(task, now)
        return {
            "id": task.id,
            "campaignId": task.campaign_id,
            "rows": task.size,
            "progress": progress,
            "status": status,
            "error": task.error,
        }


def _plain_number(value: str) -> int | float:
    return float(value) if "." in value else int(value)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _mask_key(key: str) -> str:
    return "***" + key[-4:]


def _account_view(account: Account) -> dict[str, Any]:
    return {
        "api_key": _mask_key(account.api_key),
        "balance": round(account.balance, 4),
        "currency": account.currency,
        "blocked": account.blocked,
        "domain": account.domain,
    }


# ---------------------------------------------------------------- validation of campaign fields


def _flag(values: Mapping[str, Any], key: str, default: int = 0) -> int:
    number = _int(values.get(key), default)
    if number not in (0, 1):
        raise Invalid(key, f"{key} must be 0 or 1")
    return number


def _validate_deferred(value: Any, now: datetime) -> datetime | None:
    if not _present(value):
        return None
    moment = _parse_ts(value) if isinstance(value, str) else None
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


def campaign_fields(values: Mapping[str, Any], now: datetime, campaign_type: int | None = None) -> dict[str, Any]:
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
    check("deferred_to", lambda: _validate_deferred(values.get("deferredToTs"), now))
    check("validity", lambda: _validate_validity(values.get("validity")))
    check("mclass", lambda: _flag(values, "mclass", 1))
    check("shorten_links", lambda: _flag(values, "shortenLinks"))
    check("track_recipients", lambda: _flag(values, "trackShortLinkRecipients"))
    if errors:
        raise _Errors(errors)
    out["rate_limit"], out["rate_period"] = out.pop("rate")
    return out


# ---------------------------------------------------------------- recipient sources


def _rows_from_recipients(value: Any) -> list[Row]:
    rows = []
    for item in _values(value):
        if isinstance(item, dict):
            values = {str(k): v for k, v in item.items() if k != "recipient" and isinstance(v, str)}
            rows.append(Row(item.get("recipient"), values))
        elif isinstance(item, list):
            rows.append(Row(None))  # an array without a 'recipient' key: no number found
        else:
            rows.append(Row(item))
    return rows


def _rows_from_contacts(value: Any) -> list[Row]:
    rows = []
    for item in _values(value):
        card_id, _, field_name = str(item).strip().partition(":")
        card = CONTACT_CARDS.get(card_id)
        values = {k: v for k, v in (card or {}).items() if v is not None}
        if card is None:
            rows.append(Row(None, contact=card_id, code=R_NO_CARD))
        elif field_name and field_name not in values:
            rows.append(Row(None, contact=card_id, code=R_NO_CONTACT))
        elif not values.get(field_name or "mobile"):
            rows.append(Row(None, contact=card_id, code=R_NO_MOBILE))
        else:
            rows.append(Row(values[field_name or "mobile"], values, contact=card_id))
    return rows


def _rows_from_groups(group_ids: list[str]) -> list[Row]:
    seen: dict[str, list[str]] = {}
    for group_id in group_ids:
        for card_id in CONTACT_GROUPS[group_id][1]:
            seen.setdefault(card_id, []).append(group_id)
    rows = []
    for card_id, groups in seen.items():
        card = {k: v for k, v in CONTACT_CARDS[card_id].items() if v is not None}
        if card.get("mobile"):  # cards without a mobile are not available for sending
            rows.append(Row(card["mobile"], card, contact=card_id, groups=",".join(groups)))
    return rows


def _file_options(params: Mapping[str, Any]) -> tuple[str, bool, str, str]:
    encoding_name = str(params.get("recipientsFileEncoding") or "UTF-8").upper()
    if encoding_name not in FILE_ENCODINGS:
        raise Invalid("recipientsFileEncoding", f"encoding must be one of {', '.join(FILE_ENCODINGS)}")
    skip = _int(params.get("recipientsFileSkipHeader"), 0)
    if skip not in (0, 1):
        raise Invalid("recipientsFileSkipHeader", "recipientsFileSkipHeader must be 0 or 1")
    delimiter = str(params.get("recipientsFileDelimiter") or ",")
    enclosure = str(params.get("recipientsFileEnclosure") or "'")
    if len(delimiter) != 1 or len(enclosure) != 1:
        raise Invalid("recipientsFileDelimiter", "delimiter and enclosure must be single characters")
    return FILE_ENCODINGS[encoding_name], bool(skip), delimiter, enclosure


def _is_spreadsheet(upload: Upload) -> bool:
    name = upload.filename.lower()
    return name.endswith((".xls", ".xlsx")) or upload.content[:4] in (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number typed into Excel arrives as 7.701e10
    return str(value).strip()


def _read_spreadsheet(content: bytes) -> list[list[str]]:
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - openpyxl is a test dependency
        raise Invalid("recipientsFile", "Excel files need openpyxl on the sandbox; send CSV") from None
    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:
        raise Invalid(
            "recipientsFile", "the sandbox reads Excel files only in the .xlsx format (openpyxl); send .xlsx or CSV"
        ) from None
    try:
        sheet = book.worksheets[0]
        return [[_cell(value) for value in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _read_csv(content: bytes, encoding: str, delimiter: str, enclosure: str) -> Iterator[list[str]]:
    """Rows of a CSV file, lazily (a million-row file is never a table in memory).

    Raises UnicodeError at once, csv.Error while iterating, when it cannot be read.
    """
    text = content.decode(encoding)
    for row in csv.reader(io.StringIO(text), delimiter=delimiter, quotechar=enclosure):
        yield [cell.strip() for cell in row]


def _template_rows(table: Iterable[list[str]]) -> list[Row]:
    records = iter(table)
    header = next(records, None)
    if header is None:
        raise Invalid("recipientsFile", "a template campaign file needs a header row")
    if "recipient" not in header:
        raise Invalid("recipientsFile", "the header row has no 'recipient' column")
    if len(set(header)) != len(header):
        raise Invalid("recipientsFile", "the header row has duplicate column names")
    index = header.index("recipient")
    rows = []
    for cells in records:
        if not any(cells):
            continue
        values = {name: cells[i] for i, name in enumerate(header) if i != index and i < len(cells) and name}
        rows.append(Row(cells[index] if index < len(cells) else None, values))
    return rows


def _number_rows(table: Iterable[list[str]], skip_header: bool) -> list[Row]:
    records = iter(table)
    if skip_header:
        next(records, None)
    return [Row(cells[0]) for cells in records if cells and cells[0]]


def rows_from_file(upload: Upload, params: Mapping[str, Any], template: bool) -> tuple[list[Row], str | None]:
    """(rows, error): ``Invalid`` for problems answered at once, ``error`` for a task that ends rejected."""
    encoding, skip_header, delimiter, enclosure = _file_options(params)
    try:
        if _is_spreadsheet(upload):
            table: Iterable[list[str]] = _read_spreadsheet(upload.content)
        else:
            table = _read_csv(upload.content, encoding, delimiter, enclosure)
        return (_template_rows(table) if template else _number_rows(table, skip_header)), None
    except (UnicodeError, csv.Error) as exc:
        return [], f"the file could not be read: {exc}"


# ---------------------------------------------------------------- handlers


@dataclass
class Call:
    """One authenticated API call."""

    st: MobizonState
    account: Account
    params: dict[str, Any]
    files: dict[str, Upload]
    now: datetime


Handler = Callable[[Call], "Reply | Awaitable[Reply]"]


def user_get_own_balance(call: Call) -> Reply:
    return Reply(OK, {"balance": _money(call.account.balance), "currency": call.account.currency})


def campaign_create(call: Call) -> Reply:
    data = call.params.get("data")
    fields = campaign_fields(data if isinstance(data, dict) else {}, call.now)
    camp = call.st.new_campaign(call.account.api_key, fields, call.now)
    return Reply(OK, camp.id)


def _placeholders_flag(params: Mapping[str, Any]) -> int:
    flag = _int(params.get("placeholdersFlag"), 1)
    if flag not in (1, 2, 3):
        raise Invalid("placeholdersFlag", "placeholdersFlag must be 1, 2 or 3")
    return flag


def _recipient_kind(call: Call) -> str:
    kinds = [k for k in ("recipients", "recipientContacts", "recipientGroups") if _present(call.params.get(k))]
    kinds += [k for k in ("recipientsFile",) if k in call.files]
    if len(kinds) != 1:
        raise Invalid("recipients", "give exactly one of recipients, recipientContacts, recipientGroups, "
                      "recipientsFile", INCORRECT_PARAM)  # fmt: skip
    return kinds[0]


async def campaign_add_recipients(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.params.get("id"))
    if camp is None:
        return Reply(NOT_FOUND, None, "campaign not found")
    camp.add_calls += 1
    kind = _recipient_kind(call)
    if camp.locked:
        return Reply(DATA_UPDATE, None, "the campaign is locked by another recipient upload")
    if camp.sent_at is not None:
        return Reply(DATA_UPDATE, None, "the campaign status does not allow adding recipients")
    options = call.params.get("params")
    options = options if isinstance(options, dict) else {}
    flag = _placeholders_flag(options)
    replace = _int(options.get("replace"), 0) == 1
    if kind in ("recipientGroups", "recipientsFile"):
        return _start_import(call, camp, kind, options, flag, replace)
    rows = (_rows_from_recipients if kind == "recipients" else _rows_from_contacts)(call.params[kind])
    if len(rows) > MAX_RECIPIENTS:
        return Reply(INCORRECT_PARAM, None, f"at most {MAX_RECIPIENTS} recipients per call")
    return await _add_locked(call, camp, rows, flag, replace)


async def _add_locked(call: Call, camp: Campaign, rows: list[Row], flag: int, replace: bool) -> Reply:
    camp.busy = True  # set before the first await: concurrent calls see the lock
    try:
        # Hold the lock (and yield) so concurrent uploads overlap as they would on the real server.
        await asyncio.sleep(float(call.st.cfg["add_recipients_hold"]))
        if replace:
            call.st.clear_recipients(camp)
        results = call.st.add_rows(camp, rows, flag)
    finally:
        camp.busy = False
    added = sum(1 for result in results if result["code"] == R_ADDED)
    if added == len(results):
        return Reply(OK, results)
    if added:
        return Reply(PARTIALLY_DONE, results, "some recipients were not added")
    return Reply(NOTHING_DONE, results, "no recipients were added")


def _start_import(call: Call, camp: Campaign, kind: str, options: Mapping[str, Any], flag: int, replace: bool) -> Reply:
    error = None
    group_ids: list[str] = []
    if kind == "recipientGroups":
        group_ids = [str(g) for g in _values(call.params[kind])]
        unknown = [g for g in group_ids if g not in CONTACT_GROUPS]
        if unknown:
            raise Invalid("recipientGroups", f"groups not found: {', '.join(unknown)}")
        rows = _rows_from_groups(group_ids)
    else:
        rows, error = rows_from_file(call.files[kind], options, camp.type == 3)
    if replace:
        call.st.clear_recipients(camp)
    task = call.st.start_task(camp, rows, flag, call.now, error=error, group_ids=group_ids)
    return Reply(BACKGROUND, task.id, "recipients are being added in the background")


def campaign_send(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.params.get("id"))
    if camp is None:
        return Reply(NOT_FOUND, None, "campaign not found")
    camp.send_calls += 1
    if camp.locked:
        return Reply(DATA_UPDATE, None, "recipients are still being added to the campaign")
    if camp.sent_at is not None:
        return Reply(DATA_UPDATE, None, "the campaign has already been sent")
    if not camp.messages:
        return Reply(DATA_UPDATE, None, "the campaign has no recipients")
    return Reply(OK, call.st.send(camp, call.account, call.now))


def campaign_get(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.params.get("id"))
    if camp is None:
        return Reply(NOT_FOUND, None, "campaign not found")
    return Reply(OK, call.st.campaign_row(camp, call.now))


def campaign_get_info(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.params.get("id"))
    if camp is None:
        return Reply(NOT_FOUND, None, "campaign not found")
    filled = _int(call.params.get("getFilledTplCampaignText"), 1) == 1
    return Reply(OK, call.st.campaign_info(camp, call.now, filled))


def campaign_delete(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.params.get("id"))
    if camp is None:
        return Reply(NOT_FOUND, None, "campaign not found")
    status = call.st.status(camp, call.now)
    line = call.st.timeline(camp)
    deferred_ok = bool(
        camp.deferred_to and line and status in ("MODERATION", "READY_FOR_SEND")
        and line.start - call.now >= DELETE_MIN_LEAD
    )  # fmt: skip
    if camp.locked or not (status in ("NEW", "MODERATION", "DECLINED") or deferred_ok):
        return Reply(DATA_UPDATE, None, "the campaign cannot be deleted: its sending has started")
    camp.deleted = True
    call.account.balance += camp.charged  # nothing was sent: give the money back
    camp.charged = 0.0
    return Reply(OK, None)


def campaign_get_links(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.params.get("campaignId"))
    if camp is None:
        return Reply(NOT_FOUND, None, "campaign not found")
    links = [
        {"id": str(link.id), "code": link.code, "fullLink": link.full, "shortLink": link.short,
         "clickCnt": "0", "redirectCnt": "0", "comment": ""}
        for link in camp.links
    ]  # fmt: skip
    return Reply(OK, links)


# ------------------------------------------------------------ list helpers


def _pagination(params: Mapping[str, Any]) -> tuple[int, int]:
    pagination = params.get("pagination")
    pagination = pagination if isinstance(pagination, dict) else {}
    size = _int(pagination.get("pageSize"), 25)
    if size not in PAGE_SIZES:
        raise Invalid("pageSize", "pageSize must be 25, 50 or 100", INCORRECT_PARAM)
    page = _int(pagination.get("currentPage"), 0)
    if page is None or page < 0:
        raise Invalid("currentPage", "currentPage must be an integer from 0", INCORRECT_PARAM)
    return size, page


def _sorting(params: Mapping[str, Any], allowed: Iterable[str]) -> tuple[str, bool]:
    sort = params.get("sort")
    if not isinstance(sort, dict) or not sort:
        return "id", False
    name, direction = next(iter(sort.items()))
    if name not in allowed or str(direction).upper() not in ("ASC", "DESC"):
        raise Invalid("sort", f"sort by one of {', '.join(allowed)} with ASC or DESC", INCORRECT_PARAM)
    return name, str(direction).upper() == "DESC"


def _page(rows: list[dict[str, Any]], params: Mapping[str, Any], allowed: tuple[str, ...]) -> Reply:
    size, page = _pagination(params)
    name, descending = _sorting(params, allowed)

    def key(row: dict[str, Any]) -> tuple[int, Any]:
        value: Any = row
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            return 0, 0  # nulls first in ascending order
        if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value):
            return 1, float(value)  # numbers travel as strings but sort as numbers
        return 2, str(value)

    rows.sort(key=key, reverse=descending)
    return Reply(OK, {"items": rows[page * size : (page + 1) * size], "totalItemCount": str(len(rows))})


def _time_range(criteria: Mapping[str, Any], prefix: str) -> tuple[datetime | None, datetime | None]:
    bounds = []
    for suffix in ("From", "To"):
        value = criteria.get(prefix + suffix)
        moment = _parse_ts(value) if _present(value) else None
        if _present(value) and moment is None:
            raise Invalid(prefix + suffix, "dates must be in the format YYYY-MM-DD HH:MM:SS", INCORRECT_PARAM)
        bounds.append(moment)
    return bounds[0], bounds[1]


def _in_range(moment: str | None, bounds: tuple[datetime | None, datetime | None]) -> bool:
    start, end = bounds
    if start is None and end is None:
        return True
    when = _parse_ts(moment) if moment else None
    return when is not None and (start is None or when >= start) and (end is None or when <= end)


def _status_matches(st: MobizonState, camp: Campaign, wanted: str, now: datetime) -> bool:
    status = st.status(camp, now)
    if wanted == "NOT_YET_SENT":
        return status in NOT_YET_SENT
    if wanted == "DEFERRED":
        return bool(camp.deferred_to and camp.deferred_to > now and status in ("MODERATION", "READY_FOR_SEND"))
    if wanted == "AUTO_READY_FOR_SEND":
        return status == "READY_FOR_SEND" and not camp.moderated
    return status == wanted


def _criteria(params: Mapping[str, Any]) -> dict[str, Any]:
    criteria = params.get("criteria")
    return criteria if isinstance(criteria, dict) else {}


def campaign_list(call: Call) -> Reply:
    criteria = _criteria(call.params)
    created = _time_range(criteria, "createTs")
    sent = _time_range(criteria, "sentTs")
    ids = set(_ids(criteria.get("ids"))[:MAX_IDS]) if _present(criteria.get("ids")) else None
    rows = []
    for camp in call.st.campaigns.values():
        if camp.owner != call.account.api_key or camp.deleted:
            continue
        if not _campaign_matches(call, camp, criteria, ids):
            continue
        info = call.st.campaign_info(camp, call.now)
        if _in_range(info["createTs"], created) and _in_range(info["startSendTs"], sent):
            rows.append(info)
    allowed = ("id", "name", "from", "counters.totalMsgNum", "counters.totalCost", "createTs", "startSendTs",
               "endSendTs")  # fmt: skip
    return _page(rows, call.params, allowed)


def _campaign_matches(call: Call, camp: Campaign, criteria: Mapping[str, Any], ids: set[int] | None) -> bool:
    checks = [
        ("id", lambda v: camp.id == _int(v)),
        ("recipient", lambda v: any(_digits(v) in number for number in camp.messages)),
        ("from", lambda v: camp.sender == v),
        ("text", lambda v: camp.text == v),
        ("status", lambda v: _status_matches(call.st, camp, str(v).upper(), call.now)),
        ("type", lambda v: camp.type == _int(v)),
        ("groups", lambda v: bool(set(map(str, _values(v))) & set(camp.group_ids))),
    ]
    if ids is not None and camp.id not in ids:
        return False
    return all(check(criteria[key]) for key, check in checks if _present(criteria.get(key)))


def _one_campaign_in_id_order(call: Call, criteria: Mapping[str, Any]) -> Campaign | None:
    """The campaign whose messages a plain "messages of campaign X by id" list reads, else None.

    Such a list needs no per-message filtering or sorting (a campaign's messages are kept in
    id order), so a page is a slice: paging through a million messages stays linear.
    """
    if set(k for k, v in criteria.items() if _present(v)) != {"campaignIds"}:
        return None
    if _present(call.params.get("sort")) and call.params.get("sort") not in ({"id": "ASC"}, {"id": "asc"}):
        return None
    ids = set(_ids(criteria.get("campaignIds"))[:MAX_IDS])
    camps = [c for c in call.st.campaigns.values()
             if c.id in ids and c.owner == call.account.api_key and not c.deleted]  # fmt: skip
    return camps[0] if len(camps) == 1 else None


def message_list(call: Call) -> Reply:
    criteria = _criteria(call.params)
    camp = _one_campaign_in_id_order(call, criteria)
    if camp is not None:
        size, page = _pagination(call.params)
        number_info = _int(call.params.get("withNumberInfo"), 0) == 1
        line = call.st.timeline(camp)
        window = itertools.islice(camp.messages.values(), page * size, (page + 1) * size)
        items = [call.st.message_row(camp, msg, call.now, number_info, line) for msg in window]
        return Reply(OK, {"items": items, "totalItemCount": str(len(camp.messages))})
    ranges = {
        name: _time_range(criteria, name)
        for name in ("campaignCreateTs", "campaignSentTs", "startSendTs", "statusUpdateTs")
    }
    ids = set(_ids(criteria.get("campaignIds"))[:MAX_IDS]) if _present(criteria.get("campaignIds")) else None
    number_info = _int(call.params.get("withNumberInfo"), 0) == 1
    rows = []
    for camp in call.st.campaigns.values():
        if camp.owner != call.account.api_key or camp.deleted or (ids is not None and camp.id not in ids):
            continue
        camp_row = call.st.campaign_row(camp, call.now)
        if not _message_campaign_matches(call, camp, camp_row, criteria, ranges):
            continue
        line = call.st.timeline(camp)
        for msg in camp.messages.values():
            row = call.st.message_row(camp, msg, call.now, number_info, line)
            if _message_matches(row, criteria, ranges):
                rows.append(row)
    allowed = ("id", "campaignId", "from", "to", "text", "status", "startSendTs", "statusUpdateTs", "segNum")
    return _page(rows, call.params, allowed)


def _message_campaign_matches(
    call: Call, camp: Campaign, row: Mapping[str, Any], criteria: Mapping[str, Any], ranges: Mapping[str, Any]
) -> bool:
    wanted = criteria.get("campaignStatus")
    if _present(wanted) and not _status_matches(call.st, camp, str(wanted).upper(), call.now):
        return False
    groups = criteria.get("groups")
    if _present(groups) and not set(map(str, _values(groups))) & set(camp.group_ids):
        return False
    return _in_range(row["createTs"], ranges["campaignCreateTs"]) and _in_range(
        row["startSendTs"], ranges["campaignSentTs"]
    )


def _message_matches(row: Mapping[str, Any], criteria: Mapping[str, Any], ranges: Mapping[str, Any]) -> bool:
    checks = [
        ("from", lambda v: row["from"] == v),
        ("to", lambda v: _digits(v) in row["to"]),
        ("text", lambda v: row["text"] == v),
        ("status", lambda v: row["status"] == str(v).upper()),
    ]
    if not all(check(criteria[key]) for key, check in checks if _present(criteria.get(key))):
        return False
    return _in_range(row["startSendTs"], ranges["startSendTs"]) and _in_range(
        row["statusUpdateTs"], ranges["statusUpdateTs"]
    )


def message_get_sms_status(call: Call) -> Reply:
    ids = _ids(call.params.get("ids"))
    if not ids:
        return Reply(NOT_FOUND, None, "no message ids given")
    if len(ids) > MAX_IDS:
        return Reply(INCORRECT_PARAM, None, f"at most {MAX_IDS} ids per call")
    out = []
    for message_id in dict.fromkeys(ids):
        found = call.st.visible_message(call.account, message_id)
        if found is None:
            continue  # unknown ids are left out, not reported
        camp, msg = found
        status, started, updated = call.st.message_state(camp, msg, call.now)
        out.append({"id": str(msg.id), "status": status, "segNum": str(msg.seg_num),
                    "startSendTs": _ts(started), "statusUpdateTs": _ts(updated)})  # fmt: skip
    return Reply(OK, out)


def message_send_sms_message(call: Call) -> Reply:
    options = call.params.get("params")
    options = options if isinstance(options, dict) else {}
    values = {"text": call.params.get("text"), "from": call.params.get("from"), **options}
    fields = campaign_fields(values, call.now, campaign_type=1)
    raw = call.params.get("recipient")
    number = _digits(raw) if isinstance(raw, str) else ""
    code = call.st.number_code(number) if number else R_EMPTY
    if code != R_ADDED:
        raise Invalid("recipient", RECIPIENT_MESSAGES[code])
    camp = call.st.new_campaign(call.account.api_key, fields, call.now)
    msg = call.st._new_message(camp, number, camp.text, "")
    camp.send_calls += 1
    status = call.st.send(camp, call.account, call.now)
    return Reply(OK, {"campaignId": camp.id, "messageId": msg.id, "status": status})


def taskqueue_get_status(call: Call) -> Reply:
    task = call.st.tasks.get(_int(call.params.get("id")) or 0)
    if task is None or task.owner != call.account.api_key:
        return Reply(NOT_FOUND, None, "task not found")
    interval = float(call.st.cfg["taskqueue_min_interval"])
    clock = time.monotonic()
    if interval > 0 and task.last_poll is not None and clock - task.last_poll < interval:
        return Reply(RATE_LIMITED, None, "poll a task at most once per second")
    task.last_poll = clock
    progress, status = call.st.task_progress(task, call.now)
    return Reply(OK, {"progress": progress, "status": status})


HANDLERS: dict[str, dict[str, Handler]] = {
    "user": {"getownbalance": user_get_own_balance},
    "campaign": {
        "create": campaign_create,
        "addrecipients": campaign_add_recipients,
        "send": campaign_send,
        "get": campaign_get,
        "getinfo": campaign_get_info,
        "delete": campaign_delete,
        "getlinks": campaign_get_links,
        "list": campaign_list,
    },
    "message": {
        "getsmsstatus": message_get_sms_status,
        "list": message_list,
        "sendsmsmessage": message_send_sms_message,
    },
    "taskqueue": {"getstatus": taskqueue_get_status},
}


# ---------------------------------------------------------------- HTTP


def _envelope(reply: Reply, request: Request) -> Response:
    request.scope["sandbox.code"] = reply.code
    return JSONResponse({"code": reply.code, "data": reply.data, "message": reply.message})


async def _read_body(request: Request) -> tuple[list[tuple[str, Any]], dict[str, Upload]]:
    """Flat form pairs and uploaded files of the request body (urlencoded or multipart)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        pairs: list[tuple[str, Any]] = []
        files: dict[str, Upload] = {}
        form = await request.form(max_files=10, max_fields=100_000)
        try:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files[key] = Upload(value.filename or "", await value.read())
                else:
                    pairs.append((key, value))
        finally:
            await form.close()
        return pairs, files
    body = await request.body()
    return parse_form(body.decode("utf-8", "replace")), {}


def _route_check(query: Mapping[str, str], module: str, method: str) -> Reply | None:
    if query.get("output") != "json":
        return Reply(BAD_FORMAT, None, "output must be json")
    if not query.get("api"):
        return Reply(MISSING_PARAM, None, "the api parameter is required")
    if query["api"] != "v1":
        return Reply(INCORRECT_PARAM, None, "unsupported api version")
    if module not in HANDLERS:
        return Reply(BAD_MODULE, None, f"unknown module {module!r}")
    if method not in HANDLERS[module]:
        return Reply(BAD_METHOD, None, f"unknown method {method!r}")
    return None


def _authenticate(st: MobizonState, key: Any, host: str | None) -> Account | Reply:
    account = st.accounts.get(key) if isinstance(key, str) else None
    if account is None:
        return Reply(AUTH, None, "invalid API key")
    if account.domain and account.domain not in (st.cfg["serving_domain"], host):
        return Reply(WRONG_DOMAIN, account.domain, f"this account is served by {account.domain}")
    if account.blocked:
        return Reply(BLOCKED, None, "the account is blocked")
    return account


async def service(request: Request) -> Response:
    """``/service/{module}/{method}``: the whole Mobizon API."""
    sandbox: SandboxState = request.app.state.sandbox
    st: MobizonState = sandbox.providers[NAME]  # looked up per call: reset() replaces it
    query_pairs = request.query_params.multi_items()
    try:
        body_pairs, files = await _read_body(request)
    except Exception as exc:  # a malformed multipart body
        return _envelope(Reply(INCORRECT_PARAM, None, f"the request body could not be parsed: {exc}"), request)
    request.scope["sandbox.form_keys"] = _form_keys(body_pairs, files)
    module, method = request.path_params["module"].lower(), request.path_params["method"].lower()
    query = dict(query_pairs)
    reply = _route_check(query, module, method)
    if reply is not None:
        return _envelope(reply, request)
    params = {**php_parse(query_pairs), **php_parse(body_pairs)}  # PHP's $_REQUEST: the body wins
    account = _authenticate(st, params.get("apiKey"), request.url.hostname)
    if isinstance(account, Reply):
        return _envelope(account, request)
    now = sandbox.now()
    st.settle(now)
    call = Call(st, account, params, files, now)
    try:
        result = HANDLERS[module][method](call)
        answer = result if isinstance(result, Reply) else await result
    except (Invalid, _Errors) as exc:
        answer = exc.reply
    return _envelope(answer, request)


def new_state(sandbox: SandboxState) -> MobizonState:
    return MobizonState(sandbox)


def routes(sandbox: SandboxState) -> list[Route]:
    """The provider's API routes."""
    return [Route("/service/{module}/{method}", service, methods=["GET", "POST"])]


# ---------------------------------------------------------------- admin


async def admin_state(request: Request) -> Response:
    """``?campaign=ID`` for one campaign; ``?messages=0`` leaves out recipients and messages (big campaigns)."""
    sandbox: SandboxState = request.app.state.sandbox
    campaign_id = _int(request.query_params.get("campaign"))
    with_messages = request.query_params.get("messages") != "0"
    return JSONResponse(sandbox.providers[NAME].snapshot(sandbox.now(), campaign_id, with_messages))


async def admin_account(request: Request) -> Response:
    """Add or replace an account: ``{api_key, balance, currency, blocked, domain}``."""
    sandbox: SandboxState = request.app.state.sandbox
    try:
        spec = await request.json()
        account = Account(
            api_key=_require_key(spec["api_key"]),
            balance=float(spec.get("balance", DEFAULT_BALANCE)),
            currency=str(spec.get("currency", DEFAULT_CURRENCY)),
            blocked=bool(spec.get("blocked", False)),
            domain=spec.get("domain") or None,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return JSONResponse({"error": f"bad account: {exc}"}, status_code=400)
    sandbox.providers[NAME].accounts[account.api_key] = account
    return JSONResponse(_account_view(account))


def _require_key(value: Any) -> str:
    # Real keys are alphanumeric; any printable key without spaces is accepted, so tests can use
    # keys holding "+ / = % &" (the characters that show whether every encoded form is masked).
    if not isinstance(value, str) or not value or not value.isprintable() or any(c.isspace() for c in value):
        raise ValueError("api_key must be a non-empty printable string without spaces")
    return value


def admin_routes(sandbox: SandboxState) -> list[Route]:
    """Sandbox-only routes under ``/_sandbox/mobizon/``."""
    return [
        Route("/_sandbox/mobizon/state", admin_state, methods=["GET"]),
        Route("/_sandbox/mobizon/accounts", admin_account, methods=["POST"]),
    ]
