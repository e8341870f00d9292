"""MobizonHook: an Airflow connection turned into Mobizon API calls.

Every method of the reference is here (Campaign, Message, TaskQueue, and
User/getOwnBalance for the connection test). Requests are built and answers
parsed in :mod:`airflow_sms_provider.protocols.mobizon`; retries and secret
redaction live in :mod:`airflow_sms_provider.transport`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import IO, Any

import httpx
from airflow.providers.common.compat.sdk import BaseHook

from airflow_sms_provider.connections import HttpSettings, as_float
from airflow_sms_provider.exceptions import SmsProviderError, SmsValidationError
from airflow_sms_provider.protocols import mobizon as proto
from airflow_sms_provider.recipients import chunked
from airflow_sms_provider.redaction import redact_text, register_secret
from airflow_sms_provider.transport import Request, RetryPolicy, asend, client_options, send


@dataclass(frozen=True)
class MobizonSettings:
    """What a Mobizon client needs, read once from the connection."""

    http: HttpSettings
    api_key: str = field(repr=False)
    default_sender: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_connection(cls, conn: Any) -> MobizonSettings:
        extra = conn.extra_dejson or {}
        api_key = (conn.password or "").strip()
        if not api_key:
            raise SmsValidationError(
                f"connection {conn.conn_id!r}: the API key (Password field) is empty", field="password"
            )
        register_secret(api_key)
        retry = RetryPolicy(
            max_attempts=int(extra.get("retry_attempts", RetryPolicy.max_attempts)),
            base_delay=as_float(extra.get("retry_base_delay"), RetryPolicy.base_delay, "retry_base_delay"),
        )
        return cls(
            http=HttpSettings.from_connection(conn),
            api_key=api_key,
            default_sender=extra.get("default_sender") or None,
            retry=retry,
        )

    def request(self, module: str, method: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Request:
        return proto.build(module, method, self.api_key, params, **kw)

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(**client_options(self.http.base_url, self.http.timeout, self.http.verify))

    async def acall(self, client: httpx.AsyncClient, module: str, method: str, params: Mapping[str, Any]) -> Any:
        """One read call from a trigger: same request, parser and retry policy as the hook."""
        answer = await asend(client, self.request(module, method, params), proto.parse, self.retry)
        return answer.data


@dataclass
class AddResult:
    """What one or more addRecipients portions did."""

    added: int = 0
    rejected: int = 0
    duplicates: int = 0
    message_ids: list[int] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)

    def record(self, items: Iterable[Mapping[str, Any]], keep_ids: int, keep_rejections: int) -> None:
        for item in items:
            code = int(item.get("code", 99))
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
                    self.rejections.append(
                        {
                            "recipient": item.get("recipient"),
                            "code": code,
                            "reason": proto.RECIPIENT_CODES.get(code, "unknown"),
                        }
                    )

    def summary(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "message_ids": self.message_ids,
            "rejections": self.rejections,
        }


def format_ts(value: dt.datetime | str | None) -> str | None:
    """Mobizon's ``YYYY-MM-DD HH:MM:SS`` from a datetime (converted to UTC) or a string kept as is."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.strftime(proto.TIMESTAMP_FORMAT)
    return str(value)


class MobizonHook(BaseHook):
    """Talks to the Mobizon SMS API of the regional domain named in the connection.

    :param mobizon_conn_id: the Airflow connection of type ``mobizon``: Host is the API
        domain (``api.mobizon.kz``, or a full URL such as the sandbox's), Password the
        API key; extras ``timeout``, ``default_sender``, ``verify_ssl``,
        ``retry_attempts``, ``retry_base_delay``.
    """

    conn_name_attr = "mobizon_conn_id"
    default_conn_name = "mobizon_default"
    conn_type = "mobizon"
    hook_name = "Mobizon"

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
            self._client = httpx.Client(**client_options(http.base_url, http.timeout, http.verify))
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
    ) -> proto.Answer:
        """Call any API method and return its parsed answer (raises the typed error on failure)."""
        request = self.settings.request(module, method, params, files=files, idempotent=idempotent)
        return send(self.get_conn(), request, proto.parse, self.settings.retry)

    def test_connection(self) -> tuple[bool, str]:
        """One cheap authenticated call (user/getOwnBalance) for the UI's Test button."""
        try:
            data = self.call("user", "getOwnBalance").data or {}
        except Exception as exc:
            return False, redact_text(str(exc))
        return True, f"Connected: balance {data.get('balance')} {data.get('currency')}"

    # ------------------------------------------------------------ campaign

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
            "deferredToTs": format_ts(deferred_to),
            "mclass": mclass,
            "validity": validity,
            "shortenLinks": shorten_links,
            "trackShortLinkRecipients": track_short_link_recipients,
        }
        answer = self.call("campaign", "create", {"data": data}, idempotent=False)
        return int(answer.data)

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
        name, handle = _file_part(file)
        try:
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
    ) -> AddResult:
        """Upload any number of rows in portions of at most 500, one after another.

        The campaign is locked while a portion is added, so portions are sequential;
        ``on_portion(rows_sent_so_far, result)`` runs after each one (progress, checkpoints).
        """
        if not 1 <= portion <= proto.MAX_RECIPIENTS_PER_CALL:
            raise SmsValidationError(
                f"portion={portion} must be between 1 and {proto.MAX_RECIPIENTS_PER_CALL}", field="portion",
                value=portion,
            )
        result = AddResult()
        sent = 0
        for chunk in chunked(rows, portion):
            answer = self.add_recipients(campaign_id, chunk, placeholders_flag=placeholders_flag)
            result.record(answer.data or [], keep_message_ids, keep_rejections)
            sent += len(chunk)
            if on_portion is not None:
                on_portion(sent, result)
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

    def iter_campaigns(self, criteria: Mapping[str, Any] | None = None, **kw: Any) -> Iterator[dict[str, Any]]:
        """Every campaign matching ``criteria``, page after page."""
        return self._iter_pages(self.list_campaigns, criteria, **kw)

    def send_campaign(self, campaign_id: int) -> int:
        """campaign/send; returns 1 when the campaign went to moderation, 2 when sent."""
        return int(self.call("campaign", "send", {"id": campaign_id}, idempotent=False).data)

    # ------------------------------------------------------------ message

    def get_sms_status(self, message_ids: Iterable[int | str]) -> list[dict[str, Any]]:
        """message/getSMSStatus for any number of ids, 100 per call."""
        statuses: list[dict[str, Any]] = []
        for chunk in chunked(message_ids, proto.MAX_STATUS_IDS_PER_CALL):
            statuses.extend(self.call("message", "getSMSStatus", {"ids": [str(i) for i in chunk]}).data or [])
        return statuses

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

    def iter_messages(self, criteria: Mapping[str, Any] | None = None, **kw: Any) -> Iterator[dict[str, Any]]:
        """Every message matching ``criteria`` (e.g. ``{"campaignIds": [id]}``), page after page."""
        return self._iter_pages(self.list_messages, criteria, **kw)

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
    ) -> dict[str, Any]:
        """message/sendSmsMessage: one SMS; returns campaignId, messageId and status."""
        params = {
            "recipient": recipient,
            "text": text,
            "from": sender or self.settings.default_sender,
            "params": {
                "name": name,
                "deferredToTs": format_ts(deferred_to),
                "shortenLinks": shorten_links,
                "validity": validity,
            },
        }
        return dict(self.call("message", "sendSmsMessage", params, idempotent=False).data)

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
        **extra: Any,
    ) -> dict[str, Any]:
        if page_size not in proto.PAGE_SIZES:
            raise SmsValidationError(
                f"page_size={page_size} is not one of {proto.PAGE_SIZES}", field="page_size", value=page_size
            )
        params = {
            "criteria": dict(criteria or {}),
            "pagination": {"currentPage": page, "pageSize": page_size},
            "sort": dict(sort or {}),
            **extra,
        }
        data = self.call(module, "list", params).data or {}
        return {"items": list(data.get("items") or []), "totalItemCount": int(data.get("totalItemCount") or 0)}

    @staticmethod
    def _iter_pages(
        list_page: Callable[..., dict[str, Any]], criteria: Mapping[str, Any] | None, **kw: Any
    ) -> Iterator[dict[str, Any]]:
        page = 0
        seen = 0
        while True:
            answer = list_page(criteria, page=page, **kw)
            items = answer["items"]
            yield from items
            seen += len(items)
            if not items or seen >= answer["totalItemCount"]:
                return
            page += 1


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


__all__ = ["AddResult", "MobizonHook", "MobizonSettings", "SmsProviderError", "format_ts"]
