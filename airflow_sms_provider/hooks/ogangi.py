"""OgangiHook: an Airflow connection turned into signed Messangi MMC REST calls.

Every method of the reference is here: sendSMSByFile, getShortcodes,
createBroadcastFromJson, getBroadcast, suspend/resume/stopBroadcast and the
broadcast DELETE. URLs, signatures and XML parsing live in
:mod:`airflow_sms_provider.protocols.ogangi`; retries and redaction in
:mod:`airflow_sms_provider.transport`.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import IO, Any
from urllib.parse import SplitResult

import httpx

from airflow_sms_provider.connections import HttpSettings, as_float, register_connection_secrets
from airflow_sms_provider.estimate import RowRule
from airflow_sms_provider.exceptions import SmsNotFoundError, SmsNotSupportedError, SmsValidationError
from airflow_sms_provider.hooks.base import (
    DEFAULT_REPORT_CONCURRENCY,
    AsyncReader,
    AsyncTextSender,
    SmsHook,
    masked_number,
)
from airflow_sms_provider.protocols import ogangi as proto
from airflow_sms_provider.recipients import fill_placeholders
from airflow_sms_provider.redaction import redact_text
from airflow_sms_provider.reports import record as rec
from airflow_sms_provider.status_map import DONE, FAILED, PENDING, RUNNING
from airflow_sms_provider.transport import Request, RetryPolicy, asend, client_options, send, sync_client

# The broadcast's page on the MMC server (links.py).
DASHBOARD_BROADCAST_PATH = "/broadcasts/{id}"

FileArg = str | os.PathLike[str] | bytes | tuple[str, bytes | IO[bytes]]


def _required(conn: Any, value: Any, what: str, field: str) -> str:
    text = str(value or "").strip()
    if not text:
        raise SmsValidationError(f"connection {conn.conn_id!r}: {what} is empty", field=field, value=value)
    return text


@dataclass(frozen=True)
class OgangiSettings:
    """What an Ogangi client needs, read once from the connection."""

    http: HttpSettings
    account: proto.Account
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    schedule_timezone: str = proto.SCHEDULE_TIMEZONE

    @classmethod
    def from_connection(cls, conn: Any) -> OgangiSettings:
        extra = conn.extra_dejson or {}
        register_connection_secrets(conn)  # the key and every secret extra, before anything can fail
        private_key = _required(conn, conn.password, "the private key (Password field)", "password")
        user = _required(conn, conn.login, "the user name (Login field)", "login")
        public_key = _required(conn, extra.get("public_key"), "the public key (extra public_key)", "public_key")
        raw_instance = extra.get("instance_id")
        try:
            instance_id = int(str(raw_instance).strip())
        except (TypeError, ValueError):
            raise SmsValidationError(
                f"connection {conn.conn_id!r}: extra instance_id={raw_instance!r} is not a whole number",
                field="instance_id",
                value=raw_instance,
            ) from None
        retry = RetryPolicy(
            max_attempts=int(extra.get("retry_attempts", RetryPolicy.max_attempts)),
            base_delay=as_float(extra.get("retry_base_delay"), RetryPolicy.base_delay, "retry_base_delay"),
        )
        timezone = str(extra.get("schedule_timezone") or proto.SCHEDULE_TIMEZONE)
        proto.zone(timezone)
        return cls(
            http=HttpSettings.from_connection(conn),
            account=proto.Account(instance_id, user, public_key, private_key),
            retry=retry,
            schedule_timezone=timezone,
        )

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(**client_options(self.http.base_url, self.http.timeout, self.http.verify))

    async def acall(self, client: httpx.AsyncClient, request: Request) -> proto.Answer:
        """One call from a trigger: same request, parser and retry policy as the hook."""
        return await asend(client, request, proto.parse, self.retry)

    async def aget_broadcast(self, client: httpx.AsyncClient, broadcast_id: int) -> dict[str, Any]:
        return proto.broadcast(await self.acall(client, proto.get_broadcast(self.account, broadcast_id)))


def build_sms_file(
    rows: Iterable[Mapping[str, Any]],
    *,
    defaults: Mapping[str, Any] | None = None,
    limit: int = proto.MAX_UPLOAD_BYTES,
) -> tuple[bytes, int]:
    """The sendSMSByFile recipient file (CSV bytes) and its row count.

    Each row maps ``number`` (required), ``from``, ``carrier``, ``text``,
    ``encoding``, ``timezone`` and ``params`` (a list for ``{0}``, ``{1}``…, or a
    dict keyed 0, 1…); ``defaults`` fills what a row leaves out. Raises when the
    file would pass ``limit`` bytes or a row has no number or no text.
    """
    base = {key: value for key, value in (defaults or {}).items() if value not in (None, "")}
    out = io.BytesIO()
    count = 0
    width = -1
    for index, row in enumerate(rows, 1):
        merged = {**base, **{key: value for key, value in row.items() if value not in (None, "")}}
        for required in ("number", "text"):
            if not str(merged.get(required) or "").strip():
                raise SmsValidationError(
                    f"recipients row {index}: no {required!r} (give it in the row or as the default)",
                    field=required,
                    value=index,
                )
        if width < 0:
            params = merged.get("params") or ()
            width = len(params)
            out.write(proto.csv_line(proto.sms_file_header(width)))
        out.write(proto.csv_line(proto.sms_file_row(merged, width, index)))
        count += 1
        if out.tell() > limit:
            raise SmsValidationError(
                f"recipients: the file passes {limit} bytes at row {index}; split the audience",
                field="recipients",
                value=index,
            )
    if count == 0:
        raise SmsValidationError("recipients: no rows, the file would be empty", field="recipients")
    return out.getvalue(), count


def _digits(number: Any) -> str:
    return "".join(char for char in str(number or "") if "0" <= char <= "9")  # ASCII only: isdigit takes "²"


def unanswered(
    messages: Sequence[Mapping[str, Any]], numbers: Iterable[str]
) -> tuple[list[str], list[Mapping[str, Any]]]:
    """What a sendSMSByFile answer (one message per row) does not account for, numbers compared as digits:
    the numbers sent that no message is for (one per row), and the messages for no number sent."""
    left = Counter(map(_digits, numbers))
    extra = []
    for message in messages:
        key = _digits(message.get("to"))
        if left[key] > 0:
            left[key] -= 1
        else:
            extra.append(message)
    return list(left.elements()), extra


def _not_reached(messages: Sequence[Mapping[str, Any]], numbers: Sequence[str]) -> list[str]:
    """send_text's lines: the rows sendSMSByFile answered with a failed status, the numbers it gave no
    message for (their fate is unknown) and any message for a number that was not sent to."""
    missing, extra = unanswered(messages, numbers)
    extra_ids = {id(message) for message in extra}
    return [
        *(f"{masked_number(str(m.get('to') or '?'))}: {m.get('status')}" for m in messages
          if m.get("status") in proto.MESSAGE_FAILED_STATUSES and id(m) not in extra_ids),
        *(f"{masked_number(number)}: no message in the provider's answer (unknown whether it was sent)"
          for number in missing),
        *(f"{masked_number(str(m.get('to') or '?'))}: a message ({m.get('status')}) for a number not sent to"
          for m in extra),
    ]  # fmt: skip


def _mime(name: str) -> str:
    lower = name.lower()
    if lower.endswith(".xls"):
        return "application/vnd.ms-excel"
    if lower.endswith((".xlsx", ".xlsm")):
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return proto.SMS_FILE_MIME


def _check_size(size: int, name: str, limit: int) -> None:
    if size > limit:
        raise SmsValidationError(
            f"file {name!r} is {size} bytes; at most {limit} are uploaded (split the audience)",
            field="file",
            value=name,
        )


def _check_format(name: str, data: bytes) -> tuple[str, bytes]:
    """CSV (UTF-8) or Excel, by the file name's extension; a CSV file's bytes are checked to decode."""
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in proto.UPLOAD_SUFFIXES:
        raise SmsValidationError(
            f"file {name!r}: unsupported file type {suffix or '(no extension)'!r}; Ogangi takes CSV (UTF-8) "
            f"or Excel ({', '.join(proto.UPLOAD_SUFFIXES)})",
            field="file",
            value=name,
        )
    if suffix in (".csv", ".txt"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = data.count(b"\n", 0, err.start) + 1
            raise SmsValidationError(
                f"file {name!r}: line {line} cannot be decoded as UTF-8 ({err.reason} at byte {err.start}); "
                "Ogangi takes CSV files in UTF-8 encoding",
                field="encoding",
                value=name,
            ) from None
    return name, data


def read_upload(file: FileArg, limit: int = proto.MAX_UPLOAD_BYTES) -> tuple[str, bytes]:
    """``(name, content)`` of a file to upload: a path, bytes, or ``(name, bytes | binary file)``.

    Raises when the file is over ``limit`` bytes, is not CSV or Excel, or is a CSV that is not UTF-8.
    """
    if isinstance(file, bytes):
        _check_size(len(file), "recipients.csv", limit)
        return _check_format("recipients.csv", file)
    if isinstance(file, tuple):
        name, data = file
        if not isinstance(data, bytes):
            data = data.read(limit + 1)
        _check_size(len(data), name, limit)
        return _check_format(name, data)
    path = os.fspath(file)
    try:
        _check_size(os.path.getsize(path), path, limit)
        with open(path, "rb") as fh:
            return _check_format(os.path.basename(path), fh.read())
    except OSError as exc:
        raise SmsValidationError(
            f"file {path!r} cannot be read: {exc.strerror}", field="file", value=path
        ) from None


def recipient_items(
    recipients: Iterable[str | Mapping[str, Any]], text: str | None = None, server_side_params: bool = False
) -> Iterable[dict[str, Any]]:
    """Broadcast ``to`` items from numbers or mappings (``to``/``number``, ``text``, ``params``).

    ``params`` fill the text's ``{name}`` placeholders here and are not sent: the document
    never says the server fills them. ``server_side_params``: send text and params as given.
    """
    for index, item in enumerate(recipients, 1):
        if isinstance(item, Mapping):
            number = item.get("to") or item.get("number")
            item_text, params = item.get("text") or text, item.get("params")
        else:
            number, item_text, params = item, text, None
        if not number or not item_text:
            missing = "number" if not number else "text"
            raise SmsValidationError(
                f"recipients item {index}: no {missing}", field="recipients", value=index
            )
        if params and not server_side_params:
            yield proto.broadcast_recipient(str(number), fill_placeholders(str(item_text), params))
        else:
            yield proto.broadcast_recipient(str(number), str(item_text), params)


class OgangiHook(SmsHook):
    """Talks to a customer's Messangi MMC REST API (Ogangi Mobile Engagement).

    :param ogangi_conn_id: the Airflow connection of type ``ogangi``: Host is the base
        URL (``https://customer.example.com/mmc``), Login the user name, Password the
        private key; extras ``instance_id``, ``public_key``, ``timeout``,
        ``verify_ssl``, and optionally ``schedule_timezone`` (the zone scheduled dates
        are written in, default UTC), ``retry_attempts``, ``retry_base_delay``.
    """

    conn_name_attr = "ogangi_conn_id"
    default_conn_name = "ogangi_default"
    conn_type = "ogangi"
    hook_name = "Ogangi (Messangi MMC)"
    # getBroadcast status names (protocols.ogangi.BROADCAST_STATUSES).
    status_vocabulary = {
        "SCHEDULED": PENDING, "SUSPENDED": PENDING, "RUNNING": RUNNING, "FINISHED": DONE,
        "STOPPED": FAILED, "DELETED": FAILED,
    }
    # Message statuses the reference names (sendSMSByFile answers carry one per message, at origination).
    message_vocabulary = {
        "SENT_TO_CARRIER": rec.PENDING, "SENT": rec.PENDING, "DELIVERED_TO_CARRIER": rec.PENDING,
        "SENT_TO_DEVICE": rec.PENDING, "DELIVERED_TO_DEVICE": rec.DELIVERED, "UNDELIVERED": rec.UNDELIVERED,
        "EXPIRED": rec.UNDELIVERED, "UNREACHABLE": rec.UNDELIVERED, "NOT_SENT": rec.FAILED,
        "BAD_FROM": rec.FAILED, "BAD_TO": rec.FAILED, "BAD_ENCODING": rec.FAILED, "BAD_CARRIER": rec.FAILED,
    }  # fmt: skip
    campaign_module = "airflow_sms_provider.campaigns.ogangi"

    def __init__(self, ogangi_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ogangi_conn_id = ogangi_conn_id
        self._client: httpx.Client | None = None

    def estimate_rule(self, text: str, options: Mapping[str, Any]) -> RowRule:
        """The broadcast's ``{name}`` rule, or with ``by_file=True`` the file send's
        (``OgangiSendSmsByFileOperator``: ``{0}``, ``{1}``… filled from the row's values in
        ``template_params`` order, or the row's own; a row's ``text`` column is its text)."""
        template_params = options.get("template_params")
        if not options.get("by_file"):
            if template_params is not None:
                raise SmsValidationError(
                    "template_params is an option of the file send (OgangiSendSmsByFileOperator): give by_file=True "
                    "too, or the estimate would read {0} as a placeholder named '0'",
                    field="template_params", value=template_params,
                )  # fmt: skip
            return super().estimate_rule(text, options)
        if template_params is not None and (
            isinstance(template_params, str) or not all(isinstance(p, str) for p in template_params)
        ):
            raise SmsValidationError(f"template_params={template_params!r} must be a list of field names",
                                     field="template_params", value=template_params)
        from airflow_sms_provider.campaigns.ogangi import file_fill  # the campaigns import this module

        def rule(params: Mapping[str, Any]) -> tuple[str | None, str]:
            fill = file_fill(text, params, template_params)
            return fill.problem, fill.filled if fill.filled is not None else str(params.get("text") or text)

        return rule

    def __repr__(self) -> str:
        return f"OgangiHook(ogangi_conn_id={self.ogangi_conn_id!r})"

    # ------------------------------------------------------------ connection & UI

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields for the connection form of pre-3.2 UIs."""
        from airflow_sms_provider.ui import widgets

        return widgets("ogangi")

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        from airflow_sms_provider.ui import field_behaviour

        return field_behaviour("ogangi")

    @cached_property
    def settings(self) -> OgangiSettings:
        return OgangiSettings.from_connection(self.get_connection(self.ogangi_conn_id))

    @property
    def account(self) -> proto.Account:
        return self.settings.account

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

    def call(self, request: Request) -> proto.Answer:
        """Send a request built by the protocol module; returns the OK answer or raises the typed error."""
        return send(self.get_conn(), request, proto.parse, self.settings.retry)

    def test_connection(self) -> tuple[bool, str]:
        """getShortcodes, for the UI's Test button: proves the URL, keys, instance and user."""
        try:
            codes = self.get_shortcodes()
        except Exception as exc:
            return False, redact_text(str(exc))
        shown = ", ".join(codes[:10]) + (" …" if len(codes) > 10 else "")
        return True, f"Connected to instance {self.account.instance_id}: {len(codes)} short/long codes ({shown})"

    # ------------------------------------------------------------ methods

    # ------------------------------------------------------------ the SmsHook interface

    def read_campaign(self, campaign_id: int) -> dict[str, Any] | None:
        try:
            return self.get_broadcast(campaign_id)
        except SmsNotFoundError:
            return None  # deleted: campaign_word reads it as DELETED, i.e. failed

    @classmethod
    def async_campaign_reader(cls, conn: Any) -> tuple[httpx.AsyncClient, AsyncReader]:
        settings = OgangiSettings.from_connection(conn)

        async def read(client: httpx.AsyncClient, campaign_id: int) -> dict[str, Any] | None:
            try:
                return await settings.aget_broadcast(client, campaign_id)
            except SmsNotFoundError:
                return None

        return settings.async_client(), read

    @classmethod
    def campaign_word(cls, data: Mapping[str, Any] | None) -> str:
        """``None`` (the broadcast no longer exists) is ``DELETED``. Ogangi publishes no status
        table, so a broadcast whose ``endDate`` is set or whose expected messages are all sent
        is ``FINISHED`` whatever its code says, the rule of ``OgangiBroadcastSensor``."""
        if data is None:
            return proto.DELETED
        outcome, _ = proto.broadcast_outcome(data)
        if outcome == proto.SUCCEEDED:
            return proto.FINISHED
        return str(proto.status_name(data) or "")

    @classmethod
    def dashboard_page(cls, api: SplitResult, campaign_id: int) -> str | None:
        # Our decision: the MMC server at the connection's base URL is taken to serve the
        # customer's Campaign Manager (the reference names no broadcast page).
        netloc = (api.hostname or "").lower() + (f":{api.port}" if api.port else "")
        return f"{api.scheme}://{netloc}{api.path.rstrip('/')}" + DASHBOARD_BROADCAST_PATH.format(id=campaign_id)

    @classmethod
    def async_text_sender(cls, conn: Any) -> tuple[httpx.AsyncClient, AsyncTextSender]:
        settings = OgangiSettings.from_connection(conn)

        async def send_text(client: httpx.AsyncClient, numbers: Sequence[str], text: str, sender: Any) -> list[str]:
            rows = [{"number": number} for number in numbers]
            content, _ = build_sms_file(rows, defaults={"text": text, "from": sender or None})
            request = proto.send_sms_by_file(settings.account, "recipients.csv", content, _mime("recipients.csv"))
            return _not_reached(proto.messages(await settings.acall(client, request)), numbers)

        return settings.async_client(), send_text

    def send_text(self, numbers: Sequence[str], text: str, sender: Any) -> list[str]:
        """One sendSMSByFile; it answers per row (BAD_TO, NOT_SENT... mean that number gets nothing)."""
        messages = self.send_sms_rows([{"number": number} for number in numbers], text=text, sender=sender or None)
        return _not_reached(messages, numbers)

    def iter_delivery_records(
        self,
        campaign_ids: Sequence[int | str],
        *,
        since: dt.datetime | None = None,
        concurrency: int = DEFAULT_REPORT_CONCURRENCY,
    ) -> Iterator[rec.DeliveryRecord]:
        """Not possible: raises :class:`SmsNotSupportedError` (see docs/delivery-reports.md)."""
        raise SmsNotSupportedError(
            "ogangi: delivery reports per recipient are not available: the Messangi MMC REST API has no call "
            "that lists a broadcast's messages or reads a message's status later (getBroadcast gives only "
            "expectedMessages/sentMessages counts; sendSMSByFile gives each message's status at origination). "
            f"Campaign ids asked for: {', '.join(map(str, campaign_ids)) or 'none'}",
            provider="ogangi",
        )

    def get_shortcodes(self) -> list[str]:
        """getShortcodes: the instance's short/long codes."""
        return proto.shortcodes(self.call(proto.get_shortcodes(self.account)))

    def send_sms_by_file(self, file: FileArg) -> list[dict[str, Any]]:
        """sendSMSByFile: upload a recipient file (CSV or Excel) as-is; one dict per message.

        Sends SMS: a missing answer raises :class:`SmsAmbiguousError` instead of repeating.
        """
        name, content = read_upload(file)
        return proto.messages(self.call(proto.send_sms_by_file(self.account, name, content, _mime(name))))

    def send_sms_rows(
        self, rows: Iterable[Mapping[str, Any]], **defaults: Any
    ) -> list[dict[str, Any]]:
        """Build the recipient file from rows (see :func:`build_sms_file`) and send it.

        ``defaults`` may name ``from``/``sender``, ``carrier``, ``text``, ``encoding``, ``timezone``.
        """
        if "sender" in defaults:
            defaults["from"] = defaults.pop("sender")
        content, _ = build_sms_file(rows, defaults=defaults)
        return self.send_sms_by_file(("recipients.csv", content))

    def create_broadcast(
        self,
        recipients: Iterable[str | Mapping[str, Any]],
        *,
        text: str | None = None,
        broadcast_id: int | None = None,
        shortcode: str | None = None,
        campaign_name: str | None = None,
        scheduled_at: dt.datetime | None = None,
        schedule_timezone: str | None = None,
        server_side_params: bool = False,
    ) -> dict[str, Any]:
        """createBroadcastFromJson: a new broadcast, or an edit of ``broadcast_id``.

        ``recipients``: numbers (each gets ``text``) or mappings with ``to``/``number``,
        optional ``text`` and ``params``. ``params`` are filled into ``{name}`` placeholders
        here (the document does not say the server would); ``server_side_params=True`` sends
        the template and the params instead, for an instance known to fill them. ``shortcode``
        None lets the instance choose (shortcodeIgnore); ``scheduled_at`` None starts now. Returns the broadcast
        (id, expectedMessages, statusDescription…).
        """
        body, count = proto.recipients_json(recipient_items(recipients, text, server_side_params))
        if count == 0:
            raise SmsValidationError("recipients: a broadcast needs at least one", field="recipients")
        date = proto.format_date(scheduled_at, schedule_timezone or self.settings.schedule_timezone)
        request = proto.create_broadcast(
            self.account,
            body,
            broadcast_id=proto.NEW_BROADCAST_ID if broadcast_id is None else int(broadcast_id),
            shortcode=shortcode,
            campaign_name=campaign_name,
            date=date,
        )
        return proto.broadcast(self.call(request))

    def get_broadcast(self, broadcast_id: int) -> dict[str, Any]:
        """getBroadcast: counts, dates, numeric status (and ``statusName`` from the status table)."""
        return proto.broadcast(self.call(proto.get_broadcast(self.account, int(broadcast_id))))

    def broadcast_action(self, action: str, broadcast_id: int) -> str:
        """suspend, resume, stop or delete a broadcast; returns the answer's description."""
        return self.call(proto.broadcast_action(self.account, action, int(broadcast_id))).description

    def suspend_broadcast(self, broadcast_id: int) -> str:
        return self.broadcast_action("suspend", broadcast_id)

    def resume_broadcast(self, broadcast_id: int) -> str:
        return self.broadcast_action("resume", broadcast_id)

    def stop_broadcast(self, broadcast_id: int) -> str:
        return self.broadcast_action("stop", broadcast_id)

    def delete_broadcast(self, broadcast_id: int) -> str:
        return self.broadcast_action("delete", broadcast_id)


__all__ = ["OgangiHook", "OgangiSettings", "build_sms_file", "read_upload", "recipient_items", "unanswered"]
