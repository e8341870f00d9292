"""The emulated account state: campaigns, messages, tasks, contacts and their lifecycle."""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from airflow_sms_provider.sandbox.mobizon.rules import (
    CONTACT_CARDS,
    CONTACT_GROUPS,
    COUNTER_STATUSES,
    DECLINE_COMMENT,
    DECLINE_WORD,
    DEFAULT_BALANCE,
    DEFAULT_CURRENCY,
    DEFAULT_SENDER,
    LINK,
    MAX_RATE,
    MODERATE_WORD,
    R_ADDED,
    R_COUNTRY,
    R_DUPLICATE,
    R_EMPTY,
    R_FORMAT,
    R_NO_NUMBER,
    R_OPERATOR,
    R_PLACEHOLDERS,
    R_SHORT_LINK,
    R_STOP_LIST,
    R_SYSTEM,
    R_UNSUPPORTED,
    SANDBOX_MOBIZON_API_KEY,
    SHARED_SENDER,
    SHORT_LINK_BASE,
    TASK_DONE,
    TASK_REJECTED,
    TASK_RUNNING,
    TASK_WAITING,
    country_of,
    fill_placeholders,
    final_status,
    segments,
)
from airflow_sms_provider.sandbox.mobizon.webhooks import WebhookBook
from airflow_sms_provider.sandbox.mobizon.wire import (
    _digits,
    _int,
    _money,
    _ts,
)

if TYPE_CHECKING:
    from airflow_sms_provider.sandbox.state import SandboxState

# ---------------------------------------------------------------- model


@dataclass
class Account:
    api_key: str
    balance: float = DEFAULT_BALANCE
    currency: str = DEFAULT_CURRENCY
    blocked: bool = False
    domain: str | None = None
    # Registered sender IDs; None: every valid sender counts as registered.
    senders: tuple[str, ...] | None = None
    default_sender: str = DEFAULT_SENDER


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
    # The same messages in id order (messages are only added, or all removed): a page of a
    # big campaign is a slice, not a walk from its first message.
    ordered: list[Message] = field(default_factory=list)
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
    # Imports not yet in counters.totalMsgNum: (task finish, messages it added). The documents:
    # totalMsgNum is "updated during the processing (before sending)"; "counter updates may
    # occur with a delay". They are counted progressively over ``counters_delay`` seconds.
    uncounted: list[tuple[datetime, int]] = field(default_factory=list)
    partial_index: int = -1  # the last message that will be PDLIVRD (sending order), -1: none

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
        self.webhooks = WebhookBook()  # webhooks.py: forgotten, like everything else, by a reset

    @property
    def cfg(self) -> dict[str, Any]:
        return self.sandbox.config

    def zone(self) -> ZoneInfo:
        """The account's zone: deferredToTs is read as wall time in it."""
        return ZoneInfo(str(self.cfg["mobizon_account_timezone"]))

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
        if now < line.final(line.count - 1) or now < self._partial_until(camp, line):
            return "SENT"  # DONE: "all final delivery reports received"; PDLIVRD is not final
        return "DONE"

    def _partial_until(self, camp: Campaign, line: Timeline) -> datetime:
        """When the campaign's last partially delivered (PDLIVRD) message turns final."""
        if camp.partial_index < 0:
            return line.start
        return line.final(camp.partial_index) + timedelta(minutes=camp.validity)

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
        if msg.number.startswith(tuple(self.cfg["deleted_prefixes"])):
            return "DELETED", accepted, final
        if msg.seg_num > 1 and msg.number.startswith(tuple(self.cfg["partial_prefixes"])):
            # "Not all segments ... delivered"; after its lifetime the message takes the status
            # of its first segment (delivered here): PDLIVRD is not final.
            expiry = accepted + timedelta(minutes=camp.validity)
            if now < expiry:
                return "PDLIVRD", accepted, final
            return "DELIVRD", accepted, max(final, expiry)
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
            before = len(camp.messages)
            self.add_rows(camp, task.rows, task.flag, results=False)
            if len(camp.messages) > before:
                camp.uncounted.append((task.finish, len(camp.messages) - before))
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
                tuple(cfg["unknown_operator_prefixes"]), tuple(cfg["unsupported_operator_prefixes"]),
                tuple(cfg["system_error_prefixes"]))  # fmt: skip

    def number_code(self, number: str, rules: tuple[tuple[str, ...], ...] | None = None) -> int:
        """Per-recipient code for a normalised number (0 = acceptable); ``rules`` from :meth:`number_rules`."""
        stop_list, restricted, unknown, unsupported, system_error = rules or self.number_rules()
        if not 10 <= len(number) <= 15 or number.startswith("0"):
            return R_FORMAT
        if number.endswith(stop_list):
            return R_STOP_LIST
        if restricted and number.startswith(restricted):
            return R_COUNTRY
        if unknown and number.startswith(unknown):
            return R_OPERATOR
        if unsupported and number.startswith(unsupported):
            return R_UNSUPPORTED
        if system_error and number.startswith(system_error):
            return R_SYSTEM
        return R_ADDED

    def add_rows(self, camp: Campaign, rows: Iterable[Row], flag: int, *, results: bool = True) -> list[dict[str, Any]]:
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
        if code == R_ADDED and camp.links and number.startswith(tuple(self.cfg["short_link_error_prefixes"])):
            code = R_SHORT_LINK  # the personal short link of this recipient could not be made
        result["code"] = code
        if code == R_ADDED:
            msg = self._new_message(camp, number, text, row.groups)
            result["messageId"] = msg.id
        return result

    def _new_message(self, camp: Campaign, number: str, text: str, groups: str) -> Message:
        for link in camp.links:  # shortened links replace the full ones in what is sent
            text = text.replace(link.full, link.short)
        msg = Message(next(self._message_ids), camp.id, len(camp.messages), number, text, segments(text), groups)
        if msg.seg_num > 1 and number.startswith(tuple(self.cfg["partial_prefixes"])):
            camp.partial_index = msg.index
        camp.messages[number] = msg
        camp.ordered.append(msg)
        self.messages[msg.id] = msg
        return msg

    def clear_recipients(self, camp: Campaign) -> None:
        for msg in camp.messages.values():
            self.messages.pop(msg.id, None)
        camp.messages.clear()
        camp.ordered.clear()
        camp.uncounted.clear()
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
        camp.uncounted.clear()  # sending processes the campaign: its counters are complete
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
        lag = self.counter_lag(camp, now)
        msgs["NEW"] -= min(lag, msgs["NEW"])
        out = {"updateTs": _ts(now)}
        for status in COUNTER_STATUSES:
            out[f"total{status.capitalize()}SegNum"] = str(segs[status])
        out["totalSegNum"] = str(sum(segs.values()))
        for status in COUNTER_STATUSES:
            out[f"total{status.capitalize()}MsgNum"] = str(msgs[status])
        out["totalMsgNum"] = str(len(camp.messages) - lag)
        for status in COUNTER_STATUSES:
            out[f"total{status.capitalize()}MsgCost"] = _money(segs[status] * price)
        out["totalCost"] = _money(sum(segs.values()) * price)
        out["recipientsRejected"] = str(camp.rejected)
        return out

    def sender_used(self, camp: Campaign) -> str:
        """The sender a message goes out with (message-sendSmsMessage.md, ``from``).

        "If the sender ID is not specified, the default sender ID selected in your account will
        be used. If you do not have registered sender IDs or it is not possible to send with the
        specified sender ID, one of the shared service sender IDs will be used".
        """
        account = self.accounts.get(camp.owner)
        registered = account.senders if account else None
        wanted = camp.sender or (account.default_sender if account else DEFAULT_SENDER)
        if registered is None or wanted in registered:
            return wanted
        return SHARED_SENDER

    def counter_lag(self, camp: Campaign, now: datetime) -> int:
        """Imported messages that counters.totalMsgNum does not show yet at ``now``."""
        delay = float(self.cfg["counters_delay"])
        lag = 0.0
        for finish, count in camp.uncounted:
            seen = (now - finish).total_seconds() / delay if delay > 0 else 1.0
            lag += count * (1.0 - min(1.0, max(0.0, seen)))
        return math.ceil(lag)

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
            "from": self.sender_used(camp),
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
            "deferredToUtc": camp.deferred_to.astimezone(timezone.utc).isoformat() if camp.deferred_to else None,
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
