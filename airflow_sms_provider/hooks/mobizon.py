"""MobizonHook: an Airflow connection turned into Mobizon API calls.

Every method of the reference is here (Campaign, Message, TaskQueue, and
User/getOwnBalance for the connection test). Requests are built and answers
parsed in :mod:`airflow_sms_provider.protocols.mobizon`; retries and secret
redaction live in :mod:`airflow_sms_provider.transport`.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import functools
import io
import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property, partial
from typing import IO, Any, cast
from urllib.parse import SplitResult

import httpx
import msgspec

from airflow_sms_provider.concurrency import Gate, ordered_map, yield_gil
from airflow_sms_provider.connections import HttpSettings, as_float, as_zone, register_connection_secrets
from airflow_sms_provider.estimate import RowRule, fill_rule
from airflow_sms_provider.exceptions import SmsProtocolError, SmsProviderError, SmsValidationError
from airflow_sms_provider.hooks.base import (
    AsyncCountsReader,
    AsyncReader,
    AsyncTextSender,
    ListsPages,
    SmsHook,
    masked_number,
    provider_time,
)
from airflow_sms_provider.protocols import mobizon as proto
from airflow_sms_provider.protocols.shapes import non_object_types, object_data
from airflow_sms_provider.recipients import chunked
from airflow_sms_provider.redaction import redact_text
from airflow_sms_provider.reports import record as rec
from airflow_sms_provider.status_map import DONE, FAILED, PENDING, RUNNING
from airflow_sms_provider.transport import Request, Response, RetryPolicy, asend, async_client, send, sync_client
from airflow_sms_provider.validation import check_choice

# The campaign's page on the dashboard (links.py).
DASHBOARD_CAMPAIGN_PATH = "/campaign/view/{id}"


@dataclass(frozen=True)
class PacedRetry(RetryPolicy):
    """A retry policy whose pauses are never shorter than ``min_pause``.

    taskqueue/getStatus "should be sent no more than once per second" (taskqueue-getStatus.md):
    that holds for the retry of a failed poll too, not only for the next regular poll.
    """

    min_pause: float = proto.TASKQUEUE_MIN_POLL_INTERVAL

    def delay(self, attempt: int) -> float | None:
        pause = super().delay(attempt)
        return None if pause is None else max(pause, self.min_pause)


# Methods the documents pace, and the least pause between two of their requests.
PACED_METHODS: Mapping[tuple[str, str], float] = {("taskqueue", "getstatus"): proto.TASKQUEUE_MIN_POLL_INTERVAL}


@dataclass(frozen=True)
class MobizonSettings:
    """What a Mobizon client needs, read once from the connection."""

    http: HttpSettings
    api_key: str = field(repr=False)
    default_sender: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # The zone the account reads deferredToTs and list dates in (extra ``timezone``, default UTC).
    timezone: dt.tzinfo = dt.timezone.utc

    @classmethod
    def from_connection(cls, conn: Any) -> MobizonSettings:
        extra = conn.extra_dejson or {}
        register_connection_secrets(conn)  # the key and every secret extra, before anything can fail
        api_key = (conn.password or "").strip()
        if not api_key:
            raise SmsValidationError(
                f"connection {conn.conn_id!r}: the API key (Password field) is empty", field="password"
            )
        retry = RetryPolicy(
            max_attempts=int(extra.get("retry_attempts", RetryPolicy.max_attempts)),
            base_delay=as_float(extra.get("retry_base_delay"), RetryPolicy.base_delay, "retry_base_delay"),
        )
        return cls(
            http=HttpSettings.from_connection(conn),
            api_key=api_key,
            default_sender=extra.get("default_sender") or None,
            retry=retry,
            timezone=as_zone(extra.get("timezone")),
        )

    def request(self, module: str, method: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Request:
        return proto.build(module, method, self.api_key, params, **kw)

    def retry_for(self, module: str, method: str) -> RetryPolicy:
        """The retry policy of one method: the connection's, paced for TaskQueue polls."""
        pause = PACED_METHODS.get((module.lower(), method.lower()))
        if pause is None:
            return self.retry
        r = self.retry
        return PacedRetry(max_attempts=r.max_attempts, base_delay=r.base_delay, max_delay=r.max_delay, min_pause=pause)

    def async_client(self) -> httpx.AsyncClient:
        """A client for a trigger (the TLS context is shared by all of them)."""
        return async_client(self.http.base_url, self.http.timeout, self.http.verify)

    async def acall(self, client: httpx.AsyncClient, module: str, method: str, params: Mapping[str, Any]) -> Any:
        """One read call from a trigger: same request, parser and retry policy as the hook."""
        policy = self.retry_for(module, method)
        answer = await asend(client, self.request(module, method, params), proto.parse, policy)
        return answer.data


def sms_params(
    settings: MobizonSettings,
    recipient: str,
    text: str,
    *,
    sender: str | None = None,
    name: str | None = None,
    deferred_to: dt.datetime | str | None = None,
    shorten_links: bool | None = None,
    validity: int | None = None,
    mclass: int | None = None,
) -> dict[str, Any]:
    """message/sendSmsMessage's params (shared by the hook and the async notifier path)."""
    return {
        "recipient": recipient,
        "text": text,
        "from": sender or settings.default_sender,
        "params": {
            "name": name,
            "deferredToTs": format_ts(deferred_to, settings.timezone),
            "shortenLinks": shorten_links,
            "mclass": mclass,
            "validity": validity,
        },
    }


@dataclass
class AddResult:
    """What one or more addRecipients portions did."""

    added: int = 0
    rejected: int = 0
    duplicates: int = 0
    message_ids: list[int] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)

    def record(self, items: Iterable[Mapping[str, Any]], keep_ids: int, keep_rejections: int) -> None:
        """Count one answer's per-recipient results (codes and ids may arrive as strings)."""
        if isinstance(items, (tuple, Iterator)):
            items = list(items)
        # A lying answer's data (text, an object, numbers among the results): SmsProtocolError, not AttributeError.
        self.count_objects(_objects(items, "campaign/addRecipients"), keep_ids, keep_rejections)

    def count_objects(self, items: list[Mapping[str, Any]], keep_ids: int, keep_rejections: int) -> None:
        """:meth:`record` of results already checked to be a list of objects."""
        # Fast path: a portion where every recipient was added (nearly all of a big upload) is counted by
        # one list scan in C instead of a Python step per recipient (~0.2 µs each); same counts, same ids.
        if [item.get("code", 99) for item in items].count(proto.RECIPIENT_ADDED) == len(items):
            self.added += len(items)
            if len(self.message_ids) < keep_ids:
                for item in items:
                    if item.get("messageId") is not None:
                        self.message_ids.append(int(item["messageId"]))
                        if len(self.message_ids) >= keep_ids:
                            break
            return
        for item in items:
            code = item.get("code", 99)
            if code != proto.RECIPIENT_ADDED:
                code = int(code)
            if code == proto.RECIPIENT_ADDED:
                self.added += 1
                if len(self.message_ids) < keep_ids and item.get("messageId") is not None:
                    self.message_ids.append(int(item["messageId"]))
            elif code == proto.RECIPIENT_DUPLICATE:
                # Already in the campaign: a repeated portion after a retry lands here, not as a rejection.
                self.duplicates += 1
            else:
                self.rejected += 1
                if len(self.rejections) < keep_rejections:
                    rejection = {
                        "recipient": item.get("recipient"),
                        "code": code,
                        "reason": proto.RECIPIENT_CODES.get(code, "unknown"),
                    }
                    if item.get("contact") is not None:  # recipientContacts: which card (recipient is null)
                        rejection["contact"] = item["contact"]
                    self.rejections.append(rejection)

    def summary(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "message_ids": self.message_ids,
            "rejections": self.rejections,
        }


def format_ts(value: dt.datetime | str | None, tz: dt.tzinfo = dt.timezone.utc) -> str | None:
    """Mobizon's ``YYYY-MM-DD HH:MM:SS`` wall time in ``tz`` (the account's zone: the connection's
    ``timezone`` extra) from a datetime (naive = UTC), or a string kept as is."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
        return aware.astimezone(tz).strftime(proto.TIMESTAMP_FORMAT)
    return str(value)


def wall_floor(since: dt.datetime, tz: dt.tzinfo, until: dt.datetime | None = None) -> str:
    """``since`` as the lower bound of Mobizon's wall-time filter in ``tz``: its own wall time, less what a
    clock turned back (a DST fall-back) between ``since`` and ``until`` (default now) takes away.

    The provider compares wall times: after a fall-back, a message changed an hour after ``since`` has an
    earlier wall time than ``since``, and an incremental report filtered by it would never list it.
    """
    start = (since if since.tzinfo else since.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)
    end = max(start, until or dt.datetime.now(dt.timezone.utc))
    # The lowest offset the window sees: zones keep an offset for months, so hourly samples miss none
    # (at most 10,000 of them: a watermark years old samples less often).
    step = max(dt.timedelta(hours=1), (end - start) / 10_000)
    own = lowest = start.astimezone(tz).utcoffset() or dt.timedelta(0)
    moment = start
    while moment < end:
        moment = min(moment + step, end)
        lowest = min(lowest, moment.astimezone(tz).utcoffset() or dt.timedelta(0))
    wall = start.astimezone(tz).replace(tzinfo=None, microsecond=0) - (own - lowest)
    return wall.strftime(proto.TIMESTAMP_FORMAT)


def list_criteria(criteria: Mapping[str, Any] | None, tz: dt.tzinfo = dt.timezone.utc) -> dict[str, Any]:
    """list criteria with every date and datetime in the documented ``YYYY-MM-DD HH:MM:SS``.

    Without this a datetime went out as ``str(value)``: ``2026-05-01 10:00:00.250000+05:00``,
    which the list methods do not read ("Format: YYYY-MM-DD HH:MM:SS", message-list.md).
    """
    out: dict[str, Any] = {}
    for key, value in (criteria or {}).items():
        if isinstance(value, dt.datetime):
            out[key] = format_ts(value.replace(microsecond=0), tz)
        elif isinstance(value, dt.date):
            out[key] = format_ts(dt.datetime.combine(value, dt.time(), tzinfo=tz), tz)  # the account's day
        else:
            out[key] = value
    return out


class MobizonHook(ListsPages, SmsHook):
    """Talks to the Mobizon SMS API of the regional domain named in the connection.

    :param mobizon_conn_id: the Airflow connection of type ``mobizon``: Host is the API
        domain (``api.mobizon.kz``, or a full URL such as the sandbox's), Password the
        API key; extras ``timeout``, ``default_sender``, ``verify_ssl``,
        ``retry_attempts``, ``retry_base_delay``, ``timezone`` (IANA zone the account reads
        deferred times and list dates in; default UTC).
    """

    conn_name_attr = "mobizon_conn_id"
    default_conn_name = "mobizon_default"
    conn_type = "mobizon"
    hook_name = "Mobizon"
    # The send's per-row length rule, shared with estimate (one rule).
    filled_text_problem = staticmethod(proto.filled_text_problem)

    def estimate_rule(self, text: str, options: Mapping[str, Any]) -> RowRule:
        """The send's rule with ``placeholders_flag``: 1 sends a row without a value with its
        ``{name}`` kept, 2 with it removed (counted with that text); 3 or unset refuses the row."""
        flag = options.get("placeholders_flag")
        check_choice(flag, (1, 2, 3), "placeholders_flag")
        return fill_rule(text, self.filled_text_problem, missing_allowed=flag in (1, 2), remove_missing=flag == 2)
    # campaign/get ``commonStatus``. SENT: every message left, delivery reports still come.
    status_vocabulary = {
        "NEW": PENDING, "MODERATION": PENDING, "READY_FOR_SEND": PENDING, "AUTO_READY_FOR_SEND": PENDING,
        "RUNNING": RUNNING, "SENT": RUNNING, "DONE": DONE, "DECLINED": FAILED,
    }
    # _other-smsStatus.md. Final but not delivered: UNDELIV/EXPIRED/DELETED went out and did not arrive;
    # REJECTD was refused by the operator (bad number, text or sender). PDLIVRD is not final.
    message_vocabulary = {
        "NEW": rec.PENDING, "ENQUEUD": rec.PENDING, "ACCEPTD": rec.PENDING, "PDLIVRD": rec.PENDING,
        "DELIVRD": rec.DELIVERED, "UNDELIV": rec.UNDELIVERED, "EXPIRED": rec.UNDELIVERED,
        "DELETED": rec.UNDELIVERED, "REJECTD": rec.FAILED,
    }  # fmt: skip
    campaign_module = "airflow_sms_provider.campaigns.mobizon"

    def __init__(self, mobizon_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mobizon_conn_id = mobizon_conn_id
        self._client: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"MobizonHook(mobizon_conn_id={self.mobizon_conn_id!r})"

    # ------------------------------------------------------------ connection & UI

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields for the connection form of pre-3.2 UIs."""
        from airflow_sms_provider.ui import widgets

        return widgets("mobizon")

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        from airflow_sms_provider.ui import field_behaviour

        return field_behaviour("mobizon")

    @cached_property
    def settings(self) -> MobizonSettings:
        return MobizonSettings.from_connection(self.get_connection(self.mobizon_conn_id))

    def get_conn(self) -> httpx.Client:
        """The keep-alive client every call of this hook shares."""
        if self._client is None:
            http = self.settings.http
            self._client = sync_client(http.base_url, http.timeout, http.verify)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def call(
        self,
        module: str,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        files: Mapping[str, tuple[str, Any, str]] | None = None,
        idempotent: bool = True,
        gate: Gate | None = None,
        convert_numbers: bool = True,
        parse: Callable[[Response], proto.Answer] | None = None,
    ) -> proto.Answer:
        """Call any API method and return its parsed answer (raises the typed error on failure).

        ``gate``: the shared pause of a bounded-concurrent job (waited on before the call,
        and paused by this call's retries, so a rate-limit answer slows every worker).
        ``convert_numbers=False``: numeric strings stay as sent (see ``protocols.mobizon.parse``).
        ``parse``: another parser of the answer, with the same errors as ``protocols.mobizon.parse``.
        """
        request = self.settings.request(module, method, params, files=files, idempotent=idempotent)
        policy = self.settings.retry_for(module, method)
        if parse is None:
            parse = proto.parse if convert_numbers else _PARSE_RESULTS
        if gate is None:
            return send(self.get_conn(), request, parse, policy)
        gate.wait()
        return send(self.get_conn(), request, parse, policy, sleep=gate.pause)

    def test_connection(self) -> tuple[bool, str]:
        """One cheap authenticated call (user/getOwnBalance) for the UI's Test button."""
        try:
            data = self.call("user", "getOwnBalance").data or {}
        except Exception as exc:
            return False, redact_text(str(exc))
        return True, f"Connected: balance {data.get('balance')} {data.get('currency')}"

    # ------------------------------------------------------------ campaign

    # ------------------------------------------------------------ the SmsHook interface

    def read_campaign(self, campaign_id: int) -> dict[str, Any]:
        return self.get_campaign(campaign_id)

    @classmethod
    def async_campaign_reader(cls, conn: Any) -> tuple[httpx.AsyncClient, AsyncReader]:
        settings = MobizonSettings.from_connection(conn)

        async def read(client: httpx.AsyncClient, campaign_id: int) -> dict[str, Any]:
            return dict(await settings.acall(client, "campaign", "get", {"id": campaign_id}))

        return settings.async_client(), read

    @classmethod
    def async_counts_reader(cls, conn: Any) -> tuple[httpx.AsyncClient, AsyncCountsReader]:
        """campaign/getInfo's ``counters``: ``totalMsgNum`` and ``total<Status>MsgNum`` per message status.

        The documents: counters "may" update with a delay; they hold final values once the
        campaign is DONE.
        """
        settings = MobizonSettings.from_connection(conn)

        async def read(client: httpx.AsyncClient, campaign_id: int) -> tuple[int, dict[str, int]]:
            info = dict(await settings.acall(client, "campaign", "getinfo", {"id": campaign_id}))
            counters = info.get("counters") or {}
            counts = {word: _count(counters.get(f"total{word.capitalize()}MsgNum")) for word in cls.message_vocabulary}
            return _count(counters.get("totalMsgNum")), {word: n for word, n in counts.items() if n}

        return settings.async_client(), read

    @classmethod
    def campaign_word(cls, data: Mapping[str, Any] | None) -> str:
        return str((data or {}).get("commonStatus") or "")

    @classmethod
    def status_reached(cls, word: str, targets: Iterable[str]) -> bool:
        return proto.status_reached(word, targets)  # the documents order them: SENT is reached by DONE

    @classmethod
    def dashboard_page(cls, api: SplitResult, campaign_id: int) -> str | None:
        # Our decision (the Mobizon API docs name no campaign page): the dashboard is taken to
        # live on the API domain without its "api." label, over https on the default port.
        hostname = (api.hostname or "").lower()
        if not hostname.startswith("api."):
            return None  # a proxy: no known dashboard
        return f"https://{hostname[len('api.'):]}" + DASHBOARD_CAMPAIGN_PATH.format(id=campaign_id)

    @classmethod
    def async_text_sender(cls, conn: Any) -> tuple[httpx.AsyncClient, AsyncTextSender]:
        settings = MobizonSettings.from_connection(conn)

        async def send_text(client: httpx.AsyncClient, numbers: Sequence[str], text: str, sender: Any) -> list[str]:
            failed = []
            for number in numbers:
                # Not idempotent, as the sync send_sms: an unanswered send is not repeated.
                request = settings.request("message", "sendSmsMessage",
                                           sms_params(settings, number, text, sender=sender or None), idempotent=False)
                try:
                    await asend(client, request, proto.parse, settings.retry_for("message", "sendSmsMessage"))
                except Exception as exc:
                    failed.append(f"{masked_number(number)}: {exc}")
            return failed

        return settings.async_client(), send_text

    def send_text(self, numbers: Sequence[str], text: str, sender: Any) -> list[str]:
        """message/sendSmsMessage per number (an alert goes to a few people)."""
        failed = []
        for number in numbers:
            try:
                self.send_sms(number, text, sender=sender or None)
            except Exception as exc:
                failed.append(f"{masked_number(number)}: {exc}")
        return failed

    def create_campaign(
        self,
        text: str,
        *,
        name: str | None = None,
        campaign_type: int = 2,
        sender: str | None = None,
        rate_limit: int | None = None,
        rate_period: int | None = None,
        deferred_to: dt.datetime | str | None = None,
        mclass: int | None = None,
        validity: int | None = None,
        shorten_links: bool | None = None,
        track_short_link_recipients: bool | None = None,
    ) -> int:
        """campaign/create; returns the new campaign id."""
        data = {
            "name": name,
            "text": text,
            "type": campaign_type,
            "from": sender or self.settings.default_sender,
            "rateLimit": rate_limit,
            "ratePeriod": rate_period,
            "deferredToTs": format_ts(deferred_to, self.settings.timezone),
            "mclass": mclass,
            "validity": validity,
            "shortenLinks": shorten_links,
            "trackShortLinkRecipients": track_short_link_recipients,
        }
        return int(self.call("campaign", "create", {"data": data}, idempotent=False, parse=_PARSE_ID).data)

    def add_recipients(
        self,
        campaign_id: int,
        recipients: Sequence[str | Mapping[str, Any]] | None = None,
        *,
        contacts: Sequence[str | int] | None = None,
        groups: Sequence[str | int] | None = None,
        file: str | os.PathLike[str] | tuple[str, IO[bytes] | bytes] | None = None,
        replace: bool | None = None,
        placeholders_flag: int | None = None,
        file_encoding: str | None = None,
        file_skip_header: bool | None = None,
        file_delimiter: str | None = None,
        file_enclosure: str | None = None,
    ) -> proto.Answer:
        """campaign/addRecipients with exactly one recipient type; one call, no splitting.

        Numbers and contacts answer with per-recipient results (code 0, 98 or 99);
        groups and files answer code 100 with a background task id.
        """
        kinds = [k for k, v in (("recipients", recipients), ("contacts", contacts), ("groups", groups),
                                ("file", file)) if v is not None]
        if len(kinds) != 1:
            raise SmsValidationError(
                f"add_recipients takes exactly one recipient type per call, got {kinds or 'none'}",
                field="recipients",
                value=kinds,
            )
        size = len(recipients or contacts or ())
        if size > proto.MAX_RECIPIENTS_PER_CALL:
            raise SmsValidationError(
                f"{size} recipients in one call; Mobizon takes at most {proto.MAX_RECIPIENTS_PER_CALL} "
                "(use add_recipients_in_portions)",
                field="recipients",
                value=size,
            )
        params: dict[str, Any] = {
            "id": campaign_id,
            "recipients": proto.recipients_param(recipients) if recipients is not None else None,
            "recipientContacts": list(contacts) if contacts is not None else None,
            "recipientGroups": list(groups) if groups is not None else None,
            "params": {
                "replace": replace,
                "placeholdersFlag": placeholders_flag,
                "recipientsFileEncoding": file_encoding,
                "recipientsFileSkipHeader": file_skip_header,
                "recipientsFileDelimiter": file_delimiter,
                "recipientsFileEnclosure": file_enclosure,
            },
        }
        if file is None:
            return self.call("campaign", "addRecipients", params)
        if not isinstance(file, tuple):
            check_recipients_file(file, file_encoding)
        name, handle = _file_part(file)
        try:
            # Mobizon takes "CSV or Excel (only XLS)": .txt goes as the CSV it is, .xlsx is
            # converted to CSV here; anything else was refused above, before any request.
            name, handle, converted = _as_documented_format(name, handle, file_delimiter, file_enclosure)
            if converted:
                params["params"]["recipientsFileEncoding"] = "UTF-8"
            if isinstance(handle, bytes) and len(handle) > proto.MAX_UPLOAD_BYTES:
                raise SmsValidationError(
                    f"recipients file {name!r} is {len(handle)} bytes; at most {proto.MAX_UPLOAD_BYTES} go in one "
                    "upload", field="recipients_file", value=name,
                )  # fmt: skip
            return self.call("campaign", "addRecipients", params, files={"recipientsFile": (name, handle, _mime(name))})
        finally:
            if hasattr(handle, "close") and not isinstance(file, tuple):
                handle.close()

    def add_recipients_in_portions(
        self,
        campaign_id: int,
        rows: Iterable[str | Mapping[str, Any]],
        *,
        portion: int = proto.MAX_RECIPIENTS_PER_CALL,
        placeholders_flag: int | None = None,
        keep_message_ids: int = 100,
        keep_rejections: int = 20,
        on_portion: Callable[[int, AddResult], None] | None = None,
        prefetch_portions: int = 2,
    ) -> AddResult:
        """Upload any number of rows in portions of at most 500, one after another.

        The campaign is locked while a portion is added, so portions are sequential;
        ``on_portion(rows_sent_so_far, result)`` runs after each one (progress, checkpoints).
        While one portion is on the wire, one worker thread counts the previous answer's
        per-recipient results (and calls ``on_portion``), then reads and encodes up to
        ``prefetch_portions`` next portions from ``rows``; so the upload waits on the network,
        not on this process. The worker is woken only once a request's body is written, so
        it never holds up the next request. ``prefetch_portions=0`` does everything in the
        calling thread. Each portion's body is the one :meth:`add_recipients` would send.
        """
        if not 1 <= portion <= proto.MAX_RECIPIENTS_PER_CALL:
            raise SmsValidationError(
                f"portion={portion} must be between 1 and {proto.MAX_RECIPIENTS_PER_CALL}", field="portion",
                value=portion,
            )
        if prefetch_portions > 0:
            # The worker must not hold up this thread when an answer arrives; every 128 rows, not 32:
            # a GIL release is a sleep(0) syscall (~18 µs of CPU on a small VM), and 128 rows take ~0.3 ms.
            rows = yield_gil(rows, every=128)
        return self._add_portions(
            campaign_id, chunked(rows, portion), placeholders_flag, keep_message_ids, keep_rejections, on_portion,
            prefetch_portions,
        )  # fmt: skip

    def add_recipient_portions(
        self,
        campaign_id: int,
        portions: Iterable[Sequence[str | Mapping[str, Any]]],
        *,
        placeholders_flag: int | None = None,
        keep_message_ids: int = 100,
        keep_rejections: int = 20,
        on_portion: Callable[[int, AddResult], None] | None = None,
        prefetch_portions: int = 2,
    ) -> AddResult:
        """:meth:`add_recipients_in_portions` for rows already grouped: each list is one call, as it is.

        For a caller that builds its portions a list at a time (no Python step per row here).
        A list of more than 500 rows is refused when it is reached; an empty one is skipped.
        """
        if prefetch_portions > 0:
            # The producer builds a whole portion between two of these GIL releases (~0.2 ms for 500 clean rows).
            portions = yield_gil(portions, every=1)
        return self._add_portions(campaign_id, _checked(portions), placeholders_flag, keep_message_ids,
                                  keep_rejections, on_portion, prefetch_portions)  # fmt: skip

    def _add_portions(
        self,
        campaign_id: int,
        portions: Iterable[Sequence[Any]],
        placeholders_flag: int | None,
        keep_message_ids: int,
        keep_rejections: int,
        on_portion: Callable[[int, AddResult], None] | None,
        prefetch_portions: int,
    ) -> AddResult:
        client, settings = self.get_conn(), self.settings  # resolved here, not in the worker thread
        result = AddResult()
        books = _Books(result, keep_message_ids, keep_rejections, on_portion, campaign_id=campaign_id)
        requests = _portion_requests(settings, campaign_id, portions, placeholders_flag)
        sent = 0
        if prefetch_portions <= 0:
            for size, request in requests:
                answer = send(client, request, _PARSE_RESULTS, settings.retry)
                sent += size
                books.record(answer, sent)
            return result
        worker = _Worker(requests, books, prefetch_portions)
        unhanded: list[tuple[proto.Answer | _Unread, int]] = []  # answers received, not yet given to the worker

        woken = [0]

        def hand_over() -> None:
            # Runs once this portion's body is written (send's on_sent): only now is the worker woken.
            woken[0] += 1
            worker.wake(unhanded[:])
            unhanded.clear()

        ok = False
        try:
            while (item := worker.next_request()) is not None:
                size, request = item
                before = woken[0]
                deferred = send(client, request, _parse_deferred, settings.retry, on_sent=hand_over)
                if woken[0] == before:  # a transport that never read the body (a test's mock): wake it now
                    hand_over()
                sent += size
                unhanded.append((deferred, sent))
            ok = True
        finally:
            # The worker counts what it was given (and stops producing); the answers it never got
            # (the last one, or those before a request that failed unwritten) are counted here, in order.
            # After a failure, a producer stuck in a slow source is not waited for past 5 s (as
            # prefetch() did); its answers then stay uncounted rather than counted out of order.
            finished = worker.stop(timeout=None if ok else 5)
            failed = worker.failed
            if finished and failed is None:
                for pending, at in unhanded:
                    if ok:
                        books.record(pending, at)
                    else:
                        with contextlib.suppress(Exception):  # the upload's own error is the one to raise
                            books.record(pending, at)
        if failed is not None:
            raise failed
        return result

    def delete_campaign(self, campaign_id: int) -> None:
        """campaign/delete: only before sending starts (≥ 5 minutes before a deferred start)."""
        request = self.settings.request("campaign", "delete", {"id": campaign_id})
        send(self.get_conn(), request, partial(proto.parse, locked_is_conflict=True), self.settings.retry)

    def get_campaign(self, campaign_id: int) -> dict[str, Any]:
        """campaign/get: the campaign's basic data, including commonStatus."""
        return dict(self.call("campaign", "get", {"id": campaign_id}).data)

    def get_campaign_info(self, campaign_id: int, *, filled_template_text: bool | None = None) -> dict[str, Any]:
        """campaign/getInfo: the campaign with its ``counters`` (statistics)."""
        params = {"id": campaign_id, "getFilledTplCampaignText": filled_template_text}
        return dict(self.call("campaign", "getInfo", params).data)

    def get_campaign_links(self, campaign_id: int) -> list[dict[str, Any]]:
        """campaign/getLinks: the campaign's short links with click counts."""
        return list(self.call("campaign", "getLinks", {"campaignId": campaign_id}).data or [])

    def list_campaigns(
        self,
        criteria: Mapping[str, Any] | None = None,
        *,
        page: int = 0,
        page_size: int = 100,
        sort: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """campaign/list: one page ``{"items": [...], "totalItemCount": n}``."""
        return self._list("campaign", criteria, page, page_size, sort)

    def iter_campaigns(
        self, criteria: Mapping[str, Any] | None = None, *, concurrency: int = 1, **kw: Any
    ) -> Iterator[dict[str, Any]]:
        """Every campaign matching ``criteria``, page after page (``concurrency``: see :meth:`iter_messages`)."""
        return self._iter_pages("campaign", criteria, concurrency, **kw)

    def send_campaign(self, campaign_id: int) -> int:
        """campaign/send; returns 1 when the campaign went to moderation, 2 when sent."""
        return int(self.call("campaign", "send", {"id": campaign_id}, idempotent=False, parse=_PARSE_ID).data)

    # ------------------------------------------------------------ message

    def get_sms_status(self, message_ids: Iterable[int | str], *, concurrency: int = 1) -> list[dict[str, Any]]:
        """message/getSMSStatus for any number of ids, 100 per call (see :meth:`iter_sms_status`)."""
        return list(self.iter_sms_status(message_ids, concurrency=concurrency))

    def iter_sms_status(self, message_ids: Iterable[int | str], *, concurrency: int = 1) -> Iterator[dict[str, Any]]:
        """Statuses of any number of ids, 100 per call, in the order of the ids' calls.

        ``concurrency``: calls in flight at once (1: one after another). Ids are read
        lazily, so a generator of millions is fine; a rate-limit answer (code 30) pauses
        every worker for the retry's backoff.
        """
        _check_concurrency(concurrency)
        gate = Gate() if concurrency > 1 else None

        def one_call(chunk: list[int | str]) -> list[dict[str, Any]]:
            data = self.call("message", "getSMSStatus", {"ids": [str(i) for i in chunk]}, gate=gate).data or []
            return _objects(data, "message/getSMSStatus")

        for statuses in ordered_map(one_call, chunked(message_ids, proto.MAX_STATUS_IDS_PER_CALL), concurrency):
            yield from statuses

    def list_messages(
        self,
        criteria: Mapping[str, Any] | None = None,
        *,
        page: int = 0,
        page_size: int = 100,
        sort: Mapping[str, str] | None = None,
        with_number_info: bool | None = None,
    ) -> dict[str, Any]:
        """message/list: one page of messages."""
        return self._list("message", criteria, page, page_size, sort, withNumberInfo=with_number_info)

    def iter_messages(
        self, criteria: Mapping[str, Any] | None = None, *, concurrency: int = 1, **kw: Any
    ) -> Iterator[dict[str, Any]]:
        """Every message matching ``criteria`` (e.g. ``{"campaignIds": [id]}``), page after page.

        ``concurrency`` > 1 reads the first page, then the remaining pages (known from
        ``totalItemCount``) with that many calls in flight, yielding items in page order;
        a rate-limit answer pauses every worker. Other keywords go to :meth:`list_messages`.
        """
        if kw.get("with_number_info") is not None:
            kw["withNumberInfo"] = kw.pop("with_number_info")
        return self._iter_pages("message", criteria, concurrency, **kw)

    def _delivery_pages(
        self, campaign_ids: Sequence[int | str], since: dt.datetime | None, concurrency: int
    ) -> Iterator[list[rec.DeliveryRecord]]:
        """message/list by campaign, one campaign after another, 100 messages a page.

        ``since`` is the provider's filter ``criteria[statusUpdateTsFrom]`` (inclusive, whole seconds in
        the account's zone, earlier by what a DST fall-back since then turned the clocks back: see
        :func:`wall_floor`). Cost is ``segUserBuy`` (the price of one segment) times ``segNum``.
        """
        criteria: dict[str, Any] = {}
        if since is not None:
            criteria["statusUpdateTsFrom"] = wall_floor(since, self.settings.timezone)
        for campaign_id in campaign_ids:
            cid = int(campaign_id)
            totals: list[int] = []
            # Numbers left as sent: delivery_records converts the few it reads (the generic conversion of
            # every field was a third of the listing's CPU). A page at a time: no generator step per item.
            pages = self._pages("message", {"campaignIds": [cid], **criteria}, concurrency,
                                parse=_parse_listed, on_total=totals.append)  # fmt: skip
            listed = 0
            for items in pages:
                listed += len(items)
                yield rec.check_page(self.delivery_records(items), cid)
            if not listed:  # an unknown campaign lists nothing too: fail naming it, not an empty report
                self.confirm_campaign(cid)
            # A page answered twice, cut or skipped must not pass as a smaller campaign.
            rec.check_count(self.conn_type, cid, listed, totals, exact=since is None)

    def delivery_record(self, item: Mapping[str, Any]) -> rec.DeliveryRecord:
        """One message/list item as a delivery record."""
        return self.delivery_records((item,))[0]

    def delivery_records(self, items: Iterable[Mapping[str, Any] | _Listed]) -> list[rec.DeliveryRecord]:
        """message/list items (a page: dicts as parsed, or the report's decoded items) as delivery records.

        Once per message in a report: what every item shares (zone, provider, the helpers) is looked up
        once per page, and each item's fields are attributes of a :class:`_Listed`.
        """
        zone, provider, status_of = self.settings.timezone, self.conn_type, self.message_status
        new, when, parts_of, cost_of = rec.new_record, provider_time, _int_or_none, _cost
        out = []
        # A decoded page as it is (its item types checked in C); anything else converted item by item.
        listed = items if isinstance(items, list) and set(map(type, items)) <= {_Listed} else map(_listed_of, items)
        for item in cast("Iterable[_Listed]", listed):
            word = str(item.status or "")
            parts = parts_of(item.seg_num)
            out.append(new(
                provider=provider, campaign_id=str(item.campaign_id), message_id=str(item.id),
                recipient=str(item.to or ""), status=status_of(word), provider_status=word, parts=parts,
                cost=cost_of(item.seg_user_buy, parts), created_at=when(item.start_send_ts, zone),
                updated_at=when(item.status_update_ts, zone),
            ))  # fmt: skip
        return out

    def send_sms(
        self,
        recipient: str,
        text: str,
        *,
        sender: str | None = None,
        name: str | None = None,
        deferred_to: dt.datetime | str | None = None,
        shorten_links: bool | None = None,
        validity: int | None = None,
        mclass: int | None = None,
    ) -> dict[str, Any]:
        """message/sendSmsMessage: one SMS; returns campaignId, messageId and status.

        ``mclass`` 0 is a flash SMS, 1 (the default) a normal one: ``params[mclass]`` in the
        Message module's document (seeds/001), though the per-method page lists no mclass.
        """
        params = sms_params(self.settings, recipient, text, sender=sender, name=name, deferred_to=deferred_to,
                            shorten_links=shorten_links, validity=validity, mclass=mclass)
        return dict(self.call("message", "sendSmsMessage", params, idempotent=False, parse=_PARSE_OBJECT).data)

    def find_sms(
        self,
        recipient: str,
        text: str,
        *,
        since: dt.datetime,
        name: str | None = None,
        scan: int = 100,
    ) -> dict[str, Any] | None:
        """The newest single SMS to ``recipient`` with ``text`` sent since ``since``, or None.

        How an unanswered sendSmsMessage is settled: message/list by recipient, text and
        campaign creation time, newest campaign first; with ``name``, the message's campaign
        must carry exactly that name (campaign/get). Returns what sendSmsMessage would have:
        campaignId, messageId, and status 1 (went to moderation) or 2 (sent without).
        """
        criteria = {"to": recipient, "text": text, "campaignCreateTsFrom": format_ts(since, self.settings.timezone)}
        items = self.iter_messages(criteria, sort={"campaignId": "DESC"})
        for item in itertools.islice(items, scan):
            # "to" also matches part of a number, so compare in full.
            if str(item.get("to")) != recipient or item.get("text") != text:
                continue
            campaign = self.get_campaign(int(item["campaignId"]))
            if name is not None and campaign.get("name") != name:
                continue
            moderation = campaign.get("moderationStatus")
            status = None if moderation is None else 2 if moderation == proto.AUTO_READY_FOR_SEND else 1
            return {"campaignId": int(item["campaignId"]), "messageId": int(item["id"]), "status": status}
        return None

    # ------------------------------------------------------------ taskqueue & user

    def get_task_status(self, task_id: int) -> dict[str, Any]:
        """taskqueue/getStatus: ``{"progress": 0..100, "status": 0|1|2|3}``."""
        return dict(self.call("taskqueue", "getStatus", {"id": task_id}).data)

    def get_balance(self) -> dict[str, Any]:
        """user/getOwnBalance: ``{"balance": float, "currency": "KZT"}``."""
        return dict(self.call("user", "getOwnBalance").data)

    # ------------------------------------------------------------ helpers

    def _list(
        self,
        module: str,
        criteria: Mapping[str, Any] | None,
        page: int,
        page_size: int,
        sort: Mapping[str, str] | None,
        gate: Gate | None = None,
        convert_numbers: bool = True,
        parse: Callable[[Response], proto.Answer] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        if page_size not in proto.PAGE_SIZES:
            raise SmsValidationError(
                f"page_size={page_size} is not one of {proto.PAGE_SIZES}", field="page_size", value=page_size
            )
        params = {
            "criteria": list_criteria(criteria, self.settings.timezone),
            "pagination": {"currentPage": page, "pageSize": page_size},
            "sort": dict(sort or {}),
            **extra,
        }
        data = self.call(module, "list", params, gate=gate, convert_numbers=convert_numbers, parse=parse).data
        # A page always names its items and their total: anything else (no data, [], {}) is not "nothing found".
        # Read as an empty page, it let a lookup before a create or a send miss what an earlier try made.
        if not isinstance(data, Mapping) or "items" not in data or "totalItemCount" not in data:
            shape = type(data).__name__ if not isinstance(data, Mapping) else f"an object with keys {sorted(data)}"
            raise SmsProtocolError(f"mobizon: {module}/list answered {shape}, not a page of items with their "
                                   "totalItemCount; what it lists is unknown", provider=proto.PROVIDER)  # fmt: skip
        total = data.get("totalItemCount") or 0
        if not (isinstance(total, (int, str)) and str(total).isdigit()):
            raise SmsProtocolError(f"mobizon: {module}/list answered a totalItemCount of type "
                                   f"{type(total).__name__} that is not a count", provider=proto.PROVIDER)  # fmt: skip
        return {"items": _objects(data.get("items") or [], f"{module}/list"), "totalItemCount": int(total)}

    def _iter_pages(
        self,
        module: str,
        criteria: Mapping[str, Any] | None,
        concurrency: int = 1,
        **kw: Any,
    ) -> Iterator[dict[str, Any]]:
        for items in self._pages(module, criteria, concurrency, **kw):
            yield from items

    def _pages(
        self,
        module: str,
        criteria: Mapping[str, Any] | None,
        concurrency: int = 1,
        *,
        page_size: int = 100,
        sort: Mapping[str, str] | None = None,
        convert_numbers: bool = True,
        parse: Callable[[Response], proto.Answer] | None = None,
        on_total: Callable[[int], None] | None = None,
        **extra: Any,
    ) -> Iterator[list[Any]]:
        """The items of every page matching ``criteria``, a page (a list) at a time, in page order;
        ``on_total`` hears each page's ``totalItemCount`` (in page order); ``parse``: see :meth:`call`."""
        _check_concurrency(concurrency)
        gate = Gate() if concurrency > 1 else None

        def list_page(page: int) -> dict[str, Any]:
            return self._list(module, criteria, page, page_size, sort, gate, convert_numbers, parse, **extra)

        def total(answer: dict[str, Any]) -> int:
            if on_total is not None:
                on_total(answer["totalItemCount"])
            return int(answer["totalItemCount"])

        first = list_page(0)
        first_total = total(first)
        if first["items"]:
            yield first["items"]
        seen = len(first["items"])
        if not first["items"] or seen >= first_total:
            return
        if concurrency == 1:
            pages: Iterable[dict[str, Any]] = (list_page(page) for page in itertools.count(1))
        else:
            # Pages past the first are known from the total, so they can be asked for together.
            last = -(-first["totalItemCount"] // page_size)
            # Twice as many asked for as in flight: the workers go on while the caller handles a page.
            pages = ordered_map(list_page, range(1, last), concurrency, window=2 * concurrency)
        for answer in pages:
            items = answer["items"]
            page_total = total(answer)
            if items:
                yield items
            seen += len(items)
            if not items or seen >= page_total:
                return


# Answers that begin like this were accepted (0: all added, 98: some, 99: none): no retry
# decision depends on the rest, so reading the 500 per-recipient results can wait for a worker.
_ACCEPTED = (b'{"code":0,', b'{"code":98,', b'{"code":99,')
# Per-recipient results: only code and messageId are read, so skip converting the other fields.
_PARSE_RESULTS = partial(proto.parse, convert_numbers=False)


@dataclass(frozen=True)
class _Unread:
    """An accepted addRecipients answer whose per-recipient results are not parsed yet."""

    content: bytes


def _parse_deferred(resp: Response) -> proto.Answer | _Unread:
    """An accepted answer is left for the worker to read; any other is parsed at once, so errors
    and retries are decided exactly as when everything runs in one thread."""
    if resp.status_code == 200 and resp.content.startswith(_ACCEPTED):
        return _Unread(resp.content)
    return _PARSE_RESULTS(resp)


@dataclass
class _Books:
    """Counts each portion's per-recipient results, in order, and reports them to ``on_portion``."""

    result: AddResult
    keep_ids: int
    keep_rejections: int
    on_portion: Callable[[int, AddResult], None] | None

    counted: int = 0  # rows whose answers were counted
    campaign_id: int | None = None  # named in errors

    def record(self, answer: proto.Answer | _Unread, sent: int) -> None:
        """Count ``answer`` (rows sent so far: ``sent``) and report it.

        An accepted answer holds one result per recipient of its portion: any other count (or results that
        are not objects) is SmsProtocolError, which recipients were added being unknown; the upload's
        reconcile reads the campaign instead of trusting the counts.
        """
        size, self.counted = sent - self.counted, sent
        if not (isinstance(answer, _Unread) and self._all_added(answer.content, size)):
            if isinstance(answer, _Unread):
                answer = _PARSE_RESULTS(Response(200, answer.content, {}))
            items = added_results(answer.data, self.campaign_id, size,
                                  f"a portion of {size} recipient(s) (rows {sent - size + 1}-{sent})")  # fmt: skip
            self.result.count_objects(items, self.keep_ids, self.keep_rejections)
        if self.on_portion is not None:
            self.on_portion(sent, self.result)

    def _all_added(self, content: bytes, size: int) -> bool:
        """Count an answer whose every result is "added" (nearly all of a big upload) and say True; any
        other answer (a rejection, a code as a string, an unexpected shape) is left to the full parse.

        Reads only each result's code and messageId, into slotted objects: half orjson's time for a
        500-result answer, the rest of each result skipped in C.
        """
        try:
            items = _ACCEPTED_ANSWER.decode(content).data
        except msgspec.DecodeError:  # also a ValidationError: another shape
            return False
        if len(items) != size or [item.code for item in items].count(proto.RECIPIENT_ADDED) != len(items):
            return False
        result, keep = self.result, self.keep_ids
        result.added += len(items)
        ids = result.message_ids
        for item in items:
            if len(ids) >= keep:
                break
            if item.messageId is not None:
                ids.append(int(item.messageId))
        return True


class _AddedResult(msgspec.Struct, gc=False):
    """One per-recipient result of addRecipients, the fields counting reads (any JSON value: checked after)."""

    code: Any = 99
    messageId: Any = None


class _AcceptedAnswer(msgspec.Struct, gc=False):
    data: list[_AddedResult]


_ACCEPTED_ANSWER = msgspec.json.Decoder(_AcceptedAnswer)


class _Listed(msgspec.Struct, gc=False, rename="camel"):
    """One message/list item: the fields a delivery record reads, as sent (any JSON value); the rest of the
    item is skipped in C. A report reads a million of them: no dict per item."""

    id: Any = None
    campaign_id: Any = None
    to: Any = None
    status: Any = None
    seg_num: Any = None
    seg_user_buy: Any = None
    start_send_ts: Any = None
    status_update_ts: Any = None


class _ListedData(msgspec.Struct, gc=False, rename="camel"):
    items: list[_Listed]
    total_item_count: Any  # required: a page without it goes to the full parse, which refuses it


class _ListedAnswer(msgspec.Struct, gc=False):
    code: int
    data: _ListedData


# One decoder for the report's page-reading threads: msgspec's decoders are thread-safe (since 0.16).
_LISTED_ANSWER = msgspec.json.Decoder(_ListedAnswer)
# Each field's name in the answer (campaign_id: campaignId), for items parsed as dicts.
_LISTED_FIELDS = {field.name: field.encode_name for field in msgspec.structs.fields(_Listed)}


def added_results(
    data: Any, campaign_id: int | str | None, size: int, sent: str, then: str = ""
) -> list[Mapping[str, Any]]:
    """An accepted campaign/addRecipients answer's results: one object per recipient or contact ``sent`` (``size``
    of them), else SmsProtocolError naming the campaign (``then``: what a retry does about it)."""
    items = _objects(data if data is not None else [], "campaign/addRecipients")
    if len(items) != size:
        raise SmsProtocolError(
            f"mobizon: campaign/addRecipients of campaign {campaign_id} answered {len(items)} result(s) for {sent}: "
            f"which of them are in the campaign is unknown{then}",
            provider=proto.PROVIDER,
        )
    return items


def _objects(items: Any, what: str) -> list[Any]:
    """``items`` as a list, or SmsProtocolError naming what ``what`` answered instead of a list of objects.

    A lying server's item that is a number or null would otherwise reach whoever reads the items (a report,
    a stats operator, the recovery of an unanswered send) as an AttributeError outside the parser.
    """
    odd = non_object_types(items, _OBJECTS)
    if odd:
        raise SmsProtocolError(f"mobizon: {what} answered items of type {', '.join(odd)}, not objects",
                               provider=proto.PROVIDER)  # fmt: skip
    return list(items)


def _shaped(shape: Callable[[Any], Any]) -> Callable[[Response], proto.Answer]:
    """``protocols.mobizon.parse`` with the data made into what the call returns inside the parser.

    Code 0 with data of another shape is an answer that cannot be read: for a paid call (create, send) the
    transport says it may have been carried out (SmsAmbiguousError), so it is looked up, never repeated; a
    ValueError after the parser would have passed as a failure like any other.
    """

    def parse(resp: Response) -> proto.Answer:
        answer = proto.parse(resp)
        return proto.Answer(answer.code, shape(answer.data), answer.message)

    return parse


def _whole_number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise ValueError(f"data of type {type(value).__name__} where an id or a status number belongs")
    return int(value)


_PARSE_ID = _shaped(_whole_number)
_PARSE_OBJECT = _shaped(object_data)


_OBJECTS = frozenset({dict, _Listed})  # a page's items as parsed, or as the report decodes them


def _listed_of(item: Any) -> _Listed:
    """A message/list item parsed as a dict (or one already decoded) as a :class:`_Listed`."""
    if isinstance(item, _Listed):
        return item
    if not isinstance(item, Mapping):
        raise SmsProtocolError(f"mobizon: a message/list item is {type(item).__name__}, not an object",
                               provider=proto.PROVIDER)  # fmt: skip
    return _Listed(**{name: item.get(key) for name, key in _LISTED_FIELDS.items()})


def _parse_listed(resp: Response) -> proto.Answer:
    """A message/list answer with its items as :class:`_Listed`, for a delivery report.

    An answer that is not plainly "code 0 with a list of item objects" (an error, a code as a string, an
    odd shape or a value msgspec refuses where ``json`` reads it, such as NaN or a lone surrogate) goes
    through the full parse: the same values and errors as ``protocols.mobizon.parse``, items converted
    afterwards. msgspec reads integers of any length exactly and keeps the last of repeated keys, as
    ``json`` does.
    """
    if resp.status_code == 200 and len(resp.content) <= proto.MAX_RESPONSE_BYTES:
        try:
            answer = _LISTED_ANSWER.decode(resp.content)
        except msgspec.DecodeError:  # also a ValidationError: another shape
            answer = None
        if answer is not None and answer.code == proto.OK:  # any other code: the full parse decides
            page = answer.data
            return proto.Answer(proto.OK, {"items": page.items, "totalItemCount": page.total_item_count}, "")
    parsed = _PARSE_RESULTS(resp)
    data = parsed.data
    if isinstance(data, Mapping) and isinstance(data.get("items"), list):
        data = {**data, "items": [_listed_of(item) for item in data["items"]]}
    return proto.Answer(parsed.code, data, parsed.message)


class _Worker:
    """The upload's one worker thread: counts the answers and prepares the next requests.

    It works only between a request's write and its answer: the caller wakes it (:meth:`wake`,
    from ``send``'s ``on_sent``) once a body is on the wire, handing it the answers received
    so far; it counts them (``on_portion`` too), then encodes requests until ``depth`` wait
    ready, and sleeps. Taking a ready request (:meth:`next_request`) does not wake it, so when
    an answer arrives the caller has the GIL to itself until its next request is written.
    A producer's error is raised by :meth:`next_request` where it happened (what came before
    is still sent); a counting error by the next :meth:`next_request` (or is :attr:`failed`).
    """

    def __init__(self, requests: Iterator[tuple[int, Request]], books: _Books, depth: int) -> None:
        self._requests, self._books, self._depth = requests, books, depth
        self._cond = threading.Condition()
        self._ready: deque[tuple[int, Request] | None] = deque()  # None: the requests ended
        self._answers: deque[tuple[proto.Answer | _Unread, int]] = deque()
        self._error: BaseException | None = None  # the producer's, delivered in order
        self._failed: BaseException | None = None  # counting's, delivered at once
        self._ended = self._stopping = False
        self._thread = threading.Thread(target=self._run, name="sms-portions", daemon=True)
        self._thread.start()

    def wake(self, answers: list[tuple[proto.Answer | _Unread, int]]) -> None:
        with self._cond:
            self._answers.extend(answers)
            self._cond.notify_all()

    def next_request(self) -> tuple[int, Request] | None:
        """The next prepared request (waits while the worker encodes it); None after the last."""
        with self._cond:
            while not self._ready and self._failed is None:
                self._cond.wait()
            if self._failed is not None:
                raise self._failed
            item = self._ready.popleft()
        if item is None and self._error is not None:
            raise self._error
        return item

    @property
    def failed(self) -> BaseException | None:
        """The error counting an answer raised (the worker stopped there), if any."""
        return self._failed

    def stop(self, timeout: float | None = None) -> bool:
        """Count what was handed over, stop producing, and wait; False if still busy after ``timeout``."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _idle(self) -> bool:
        return not self._answers and (self._ended or self._stopping or len(self._ready) >= self._depth)

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while self._idle() and not (self._stopping and not self._answers):
                        self._cond.wait()
                    if self._stopping and not self._answers:
                        return
                    job = self._answers.popleft() if self._answers else None
                if job is not None:
                    try:
                        self._books.record(*job)
                    except BaseException as exc:
                        with self._cond:
                            self._failed = exc
                            self._cond.notify_all()
                        return
                    continue
                try:
                    item: tuple[int, Request] | None = next(self._requests)
                except StopIteration:
                    item = None
                except BaseException as exc:  # delivered to the caller after the portions before it
                    item, self._error = None, exc
                with self._cond:
                    self._ended = item is None
                    self._ready.append(item)
                    self._cond.notify_all()
        finally:
            close = getattr(self._requests, "close", None)
            if not self._ended and close is not None:
                close()  # a generator left half-way: run its finally blocks in the thread that ran it


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def _decimal_or_none(value: Any) -> Decimal | None:
    try:
        # str() first: a float the parser made of "0.0500" becomes Decimal("0.05"), not its binary expansion.
        return None if value in (None, "") else Decimal(str(value))
    except (ArithmeticError, ValueError):
        return None


def _cost(price: Any, parts: int | None) -> Decimal | None:
    """One segment's price times the segments (None when either is unknown)."""
    if parts is None:
        return None
    try:
        return _segment_cost(price, parts)
    except TypeError:  # unhashable: no price
        return None


@functools.lru_cache(maxsize=1024)
def _segment_cost(price: Any, parts: int) -> Decimal | None:
    # Cached: a campaign's messages share a price and a few part counts; Decimal arithmetic per message
    # showed in a million-message report's profile.
    if isinstance(price, str):  # as the protocol's number conversion does: "0.0250" is 0.025
        with contextlib.suppress(ValueError):
            price = float(price)
    unit = _decimal_or_none(price)
    return None if unit is None else unit * parts


def _check_concurrency(concurrency: int) -> None:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise SmsValidationError(
            f"concurrency={concurrency!r} must be a positive integer", field="concurrency", value=concurrency
        )


def _checked(portions: Iterable[Sequence[Any]]) -> Iterator[Sequence[Any]]:
    """``portions`` without empty lists; a list over Mobizon's 500 rows a call is refused."""
    for chunk in portions:
        if len(chunk) > proto.MAX_RECIPIENTS_PER_CALL:
            raise SmsValidationError(
                f"a portion of {len(chunk)} rows is over Mobizon's {proto.MAX_RECIPIENTS_PER_CALL} a call",
                field="portions", value=len(chunk),
            )  # fmt: skip
        if chunk:
            yield chunk


def _portion_requests(
    settings: MobizonSettings, campaign_id: int, portions: Iterable[Sequence[Any]], placeholders_flag: int | None
) -> Iterator[tuple[int, Request]]:
    """(rows in the portion, its addRecipients request): the same body as ``add_recipients(chunk)``."""
    options = {"placeholdersFlag": placeholders_flag} if placeholders_flag is not None else None
    for chunk in portions:
        params = {"id": campaign_id, "recipients": proto.recipients_param(chunk), "params": options}
        yield len(chunk), settings.request("campaign", "addRecipients", params)


# Mobizon's encoding names (campaign/addRecipients) and the Python codecs that read them.
FILE_ENCODINGS = {
    "KOI8-R": "koi8_r", "CP866": "cp866", "WINDOWS-1252": "cp1252", "WINDOWS-1251": "cp1251",
    "UTF-8": "utf-8", "ASCII": "ascii", "ISO-8859-1": "latin-1", "UCS-2": "utf-16",
}
# What Mobizon takes ("CSV or Excel (only XLS)", campaign-addRecipients.md) and what the hook
# turns into CSV before uploading (.txt: numbers one per line is CSV; .xlsx: read by openpyxl).
UPLOAD_SUFFIXES = (".csv", ".xls")
CONVERTED_SUFFIXES = (".txt", ".xlsx")
FILE_SUFFIXES = UPLOAD_SUFFIXES + CONVERTED_SUFFIXES


def _suffix_ok(name: str) -> None:
    if not name.lower().endswith(FILE_SUFFIXES):
        raise SmsValidationError(
            f"recipients_file={name!r}: Mobizon takes CSV or Excel (only XLS) files; .txt and .xlsx are converted "
            f"to CSV before the upload. Accepted: {', '.join(FILE_SUFFIXES)}", field="recipients_file", value=name,
        )  # fmt: skip


def _as_documented_format(
    name: str, handle: Any, delimiter: str | None, enclosure: str | None
) -> tuple[str, Any, bool]:
    """(name, content, converted): the upload as CSV or XLS; ``converted`` when the hook wrote the CSV."""
    _suffix_ok(name)
    lower = name.lower()
    if lower.endswith(UPLOAD_SUFFIXES):
        return name, handle, False
    stem = name[: name.rfind(".")]
    if lower.endswith(".txt"):
        return stem + ".csv", handle, False  # the same bytes: a number per line is CSV
    content = handle if isinstance(handle, bytes) else handle.read()
    return stem + ".csv", _xlsx_to_csv(name, content, delimiter or ",", enclosure or "'"), True


def _xlsx_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a number typed into Excel is a float: 77011234567.0
    return str(value)


def _xlsx_to_csv(name: str, content: bytes, delimiter: str, enclosure: str) -> bytes:
    """The first sheet of an .xlsx file as UTF-8 CSV with Mobizon's delimiter and enclosure."""
    try:
        import openpyxl
    except ImportError:
        raise SmsValidationError(
            f"recipients_file={name!r}: Mobizon takes no .xlsx; converting it needs openpyxl "
            "(pip install 'airflow-sms-provider[excel]'), or save it as CSV or XLS", field="recipients_file",
            value=name,
        ) from None
    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a damaged file
        raise SmsValidationError(f"recipients_file={name!r} is not a readable .xlsx file ({exc})",
                                 field="recipients_file", value=name) from None
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, quotechar=enclosure, lineterminator="\n")
    try:
        for row in book.worksheets[0].iter_rows(values_only=True):
            writer.writerow([_xlsx_cell(value) for value in row])
    finally:
        book.close()
    return out.getvalue().encode("utf-8")


def check_recipients_file(file: str | os.PathLike[str], encoding: str | None) -> None:
    """Refuse, before uploading, a recipientsFile Mobizon would reject or misread.

    The format (by extension), the size, and for text files that every line decodes
    with the declared encoding (a wrong one would garble numbers and placeholder values).
    """
    path = os.fspath(file)
    _suffix_ok(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise SmsValidationError(f"recipients file {path!r} cannot be read: {exc.strerror}", field="recipients_file",
                                 value=path) from None
    if size > proto.MAX_UPLOAD_BYTES:
        raise SmsValidationError(
            f"recipients_file={path!r} is {size} bytes; at most {proto.MAX_UPLOAD_BYTES} go in one upload "
            "(stream the rows through `recipients` with file_upload_threshold to split it)",
            field="recipients_file", value=path,
        )
    name = (encoding or "UTF-8").upper()
    if name not in FILE_ENCODINGS:
        raise SmsValidationError(f"file_encoding={encoding!r} is not one of {sorted(FILE_ENCODINGS)}",
                                 field="encoding", value=encoding)
    if path.lower().endswith((".csv", ".txt")):
        _check_decodes(path, FILE_ENCODINGS[name], name)


def _check_decodes(path: str, codec: str, name: str) -> None:
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(iter(fh.readline, b""), 1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError:
                raise SmsValidationError(
                    f"recipients_file={path!r}: line {line_no} is not valid {name} (set file_encoding)",
                    field="encoding", value=name,
                ) from None


def _file_part(file: str | os.PathLike[str] | tuple[str, IO[bytes] | bytes]) -> tuple[str, Any]:
    if isinstance(file, tuple):
        return file[0], file[1]
    path = os.fspath(file)
    try:
        return os.path.basename(path), open(path, "rb")
    except OSError as exc:
        raise SmsValidationError(f"recipients file {path!r} cannot be read: {exc.strerror}", field="file",
                                 value=path) from None


def _mime(name: str) -> str:
    lower = name.lower()
    if lower.endswith(".xls"):
        return "application/vnd.ms-excel"
    if lower.endswith(".xlsx"):
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return "text/csv"


__all__ = ["AddResult", "MobizonHook", "MobizonSettings", "SmsProviderError", "format_ts", "list_criteria"]


def _count(value: Any) -> int:
    """A counter as Mobizon writes it (numbers often as strings); anything else is 0."""
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0
