"""BsgHook: an Airflow connection turned into BSG One-API calls.

Requests are built and answers parsed in :mod:`airflow_sms_provider.protocols.bsg`;
retries and redaction live in :mod:`airflow_sms_provider.transport`. The JWT is the
one piece of state: :class:`BsgSession` keeps it per hook (or per trigger), logs in
lazily, refreshes it before it expires and logs in again once when BSG answers 401/403.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any
from urllib.parse import SplitResult

import httpx

from airflow_sms_provider.concurrency import ordered_map
from airflow_sms_provider.connections import HttpSettings, as_float, as_zone, register_connection_secrets
from airflow_sms_provider.estimate import RowRule, fill_rule
from airflow_sms_provider.exceptions import SmsAuthError, SmsProviderError, SmsValidationError
from airflow_sms_provider.hooks.base import (
    AsyncCountsReader,
    AsyncReader,
    AsyncTextSender,
    ListsPages,
    SmsHook,
    provider_time,
)
from airflow_sms_provider.protocols import bsg as proto
from airflow_sms_provider.redaction import redact_text, register_token
from airflow_sms_provider.reports import record as rec
from airflow_sms_provider.status_map import DONE, FAILED, PENDING, RUNNING
from airflow_sms_provider.transport import Parser, Request, RetryPolicy, asend, client_options, send, sync_client

log = logging.getLogger(__name__)

# Answers after which one fresh login is worth a try (an expired or revoked token).
RELOGIN_STATUSES = (401, 403)
# The personal account (bsg/openapi.yaml links app.bsg.world/sms/senders, .../integration/remote);
# the campaign path is our decision: the OpenAPI spec names no campaign page.
DASHBOARD = "https://app.bsg.world"
DASHBOARD_CAMPAIGN_PATH = "/campaigns/{id}"


@dataclass(frozen=True)
class BsgSettings:
    """What a BSG client needs, read once from the connection."""

    http: HttpSettings
    api_key: str = field(repr=False)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # The zone the account reads start_at in (extra ``timezone``; docs/bsg.md "Time zone").
    timezone: dt.tzinfo = proto.START_AT_TIMEZONE

    @classmethod
    def from_connection(cls, conn: Any) -> BsgSettings:
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
        return cls(http=HttpSettings.from_connection(conn, default_host=proto.DEFAULT_BASE_URL),
                   api_key=api_key, retry=retry, timezone=as_zone(extra.get("timezone")))

    def client(self) -> httpx.Client:
        return sync_client(self.http.base_url, self.http.timeout, self.http.verify)

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(**client_options(self.http.base_url, self.http.timeout, self.http.verify))


@dataclass
class _Token:
    value: str = field(repr=False)
    expires_at: float | None  # on the session's clock; None: the token does not say
    margin: float = 0.0

    def state(self, now: float) -> str:
        """"fresh", "refresh" (close to expiry) or "expired"."""
        if self.expires_at is None or now < self.expires_at - self.margin:
            return "fresh"
        return "refresh" if now < self.expires_at else "expired"


# One step of a session flow: the request to send and how to parse its answer.
_Step = tuple[Request, Parser[Any]]


class BsgSession:
    """The JWT of one hook or trigger, and the rules for getting and renewing it.

    The rules are one generator (:meth:`_flow`) that yields the requests to send and
    receives their parsed answers or errors; :meth:`call` drives it with a sync client
    and :meth:`acall` with an async one, so both behave the same.

    :meth:`call` may be used from several threads at once (bounded-concurrent campaign
    creation): getting or renewing the token happens under a lock, so it happens once,
    and the others wait for it and use the new token.

    :param clock: monotonic seconds; tests pass their own to move time.
    """

    def __init__(self, settings: BsgSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self._token: _Token | None = None
        self.logins = 0
        self.refreshes = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BsgSession(logged_in={self._token is not None}, logins={self.logins}, refreshes={self.refreshes})"

    # ------------------------------------------------------------ the rules

    def _keep(self, token: str) -> None:
        register_token(token)
        lifetime = proto.token_lifetime(token, time.time())
        if lifetime is None:
            self._token = _Token(token, None)
        else:
            self._token = _Token(token, self.clock() + lifetime, proto.refresh_margin(lifetime))

    def _login(self) -> Generator[_Step, Any, None]:
        self._token = None
        try:
            token = yield proto.login(self.settings.api_key), proto.parse_token
        except SmsAuthError as err:
            raise SmsAuthError(
                f"bsg: login refused ({err}); check the API key in the connection's Password field"
                + ("" if self.settings.api_key.startswith(proto.API_KEY_PREFIXES)
                   else " (BSG keys start with live_ or test_)"),
                provider=proto.PROVIDER, code=err.code,
            ) from None
        self.logins += 1
        self._keep(token)
        log.info("bsg: logged in")

    def _ensure_token(self) -> Generator[_Step, Any, None]:
        state = "expired" if self._token is None else self._token.state(self.clock())
        if state == "refresh":
            assert self._token is not None
            try:
                token = yield proto.refresh(self._token.value), proto.parse_token
            except SmsAuthError:
                log.info("bsg: token refresh refused; logging in again")
            else:
                self.refreshes += 1
                self._keep(token)
                log.info("bsg: token refreshed before it expired")
                return
        if state != "fresh":
            yield from self._login()

    def _flow(
        self, request: Request, parse: Parser[Any], guard: contextlib.AbstractContextManager[Any]
    ) -> Generator[_Step, Any, Any]:
        # ``guard`` is held while the token is read or renewed (the sync driver's lock).
        with guard:
            yield from self._ensure_token()
            assert self._token is not None
            used = self._token.value
        # A token this call logged in for may still expire before BSG reads it (retries with
        # backoff resend the same header), so only its second refusal fails the call.
        own_logins, borrowed = 0, False
        while True:
            try:
                return (yield proto.authorize(request, used), parse)
            except SmsAuthError as err:
                if err.code not in RELOGIN_STATUSES:
                    raise
                if own_logins >= 2:
                    why = "the account may lack access to it" if err.code == 403 else "BSG refused the new token too"
                    raise SmsAuthError(
                        f"{err} ({request.label} still refused after a fresh login: {why})",
                        provider=proto.PROVIDER, code=err.code, details=err.details,
                    ) from None
                # A refused request did nothing, so repeating it with another token is safe.
                log.info("bsg: %s answered HTTP %s; trying again with a new token", request.label, err.code)
            with guard:
                if self._token is None or self._token.value == used or borrowed:
                    yield from self._login()
                    own_logins += 1
                else:
                    # Another call renewed the token meanwhile (its renewal revoked ours): use that one
                    # first. Should it be refused too (expired while this call was in flight), the next
                    # round logs in for this call itself; only a refusal of that fails the call.
                    borrowed = True
                assert self._token is not None
                used = self._token.value

    # ------------------------------------------------------------ drivers

    def call(
        self,
        client: httpx.Client,
        request: Request,
        parse: Parser[Any] = proto.parse,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Any:
        """Send ``request`` with a valid token and return ``parse(answer)``.

        ``sleep`` is the pause between retries (a shared throttle's, in a concurrent job).
        """
        flow = self._flow(request, parse, self._lock)
        try:
            step = next(flow)
            while True:
                try:
                    # Login and refresh go out holding the token lock: their retries must not wait for a
                    # throttle slot, since the slot holders may be waiting for that lock (a deadlock).
                    pause = time.sleep if step[1] is proto.parse_token else sleep
                    try:
                        answer = send(client, *step, self.settings.retry, pause)
                    except SmsProviderError as exc:
                        step = flow.throw(exc)  # the flow decides: another step, or the error goes on
                    else:
                        step = flow.send(answer)
                except StopIteration as stop:
                    return stop.value
        finally:
            flow.close()  # whatever escaped (an interrupt), the token lock is not left held

    async def acall(self, client: httpx.AsyncClient, request: Request, parse: Parser[Any] = proto.parse) -> Any:
        """The async twin of :meth:`call`, for triggers (one call at a time per session: no lock)."""
        flow = self._flow(request, parse, contextlib.nullcontext())
        step = next(flow)
        while True:
            try:
                try:
                    answer = await asend(client, *step, self.settings.retry)
                except SmsProviderError as exc:
                    step = flow.throw(exc)  # the flow decides: another step, or the error goes on
                else:
                    step = flow.send(answer)
            except StopIteration as stop:
                return stop.value


class BsgHook(ListsPages, SmsHook):
    """Talks to BSG One-API (``https://one-api.bsg.world`` unless the connection says otherwise).

    :param bsg_conn_id: the Airflow connection of type ``bsg``: Password is the API key
        (``live_…`` or ``test_…``), Host an optional base URL (a full URL with port works,
        e.g. the sandbox's); extras ``timeout``, ``verify_ssl``, ``retry_attempts``,
        ``retry_base_delay``, ``timezone`` (IANA name of the zone the account reads start_at
        in; default UTC).

    The JWT is kept for the life of the hook and shared by its calls, which may come from
    several threads at once (one login for all of them).
    """

    conn_name_attr = "bsg_conn_id"
    default_conn_name = "bsg_default"
    conn_type = "bsg"
    hook_name = "BSG One-API"
    # The send's per-row length rule, shared with estimate (one rule).
    filled_text_problem = staticmethod(proto.filled_text_problem)

    def estimate_rule(self, text: str, options: Mapping[str, Any]) -> RowRule:
        """The send's rule; the ``reference_field`` column (default ``reference_id``) is BSG's, not a
        value for the text (a text without placeholders goes out in bulk, which reads only that)."""
        own = [options.get("reference_field") or "reference_id"]
        return fill_rule(text, self.filled_text_problem, own_columns=own)
    # GET /api/campaigns/{id} ``status``.
    status_vocabulary = {
        "creation": PENDING, "moderation": PENDING, "scheduled": PENDING, "paused": PENDING,
        "sending": RUNNING, "done": DONE, "stopped": FAILED, "spam": FAILED,
    }
    # MessageStatus of openapi.yaml. "unknown" is not final (no report yet); not_viber_user and
    # not_service_user are channel outcomes: the message did not reach the person.
    message_vocabulary = {
        "scheduled": rec.PENDING, "moderation": rec.PENDING, "accepted": rec.PENDING, "sending": rec.PENDING,
        "sent": rec.PENDING, "unknown": rec.PENDING, "delivered": rec.DELIVERED, "read": rec.DELIVERED,
        "expired": rec.UNDELIVERED, "undelivered": rec.UNDELIVERED, "not_viber_user": rec.UNDELIVERED,
        "not_service_user": rec.UNDELIVERED, "failed": rec.FAILED,
    }  # fmt: skip
    # Statuses whose time a message carries (delivered_at); any other change has no timestamp.
    _TIMED_FINAL = frozenset({"delivered", "read"})
    campaign_module = "airflow_sms_provider.campaigns.bsg"
    phone_digits = (proto.PHONE_MIN_DIGITS, proto.PHONE_MAX_DIGITS)
    default_base_url = proto.DEFAULT_BASE_URL

    def __init__(self, bsg_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bsg_conn_id = bsg_conn_id
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        #: The pause between a call's retries. A bounded-concurrent job sets its throttle's
        #: (:meth:`airflow_sms_provider.concurrency.Throttle.pause`), so a rate-limit answer
        #: slows every worker down instead of only the one that got it.
        self.retry_sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        return f"BsgHook(bsg_conn_id={self.bsg_conn_id!r})"

    # ------------------------------------------------------------ connection & UI

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields for the connection form of pre-3.2 UIs."""
        from airflow_sms_provider.ui import widgets

        return widgets("bsg")

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        from airflow_sms_provider.ui import field_behaviour

        return field_behaviour("bsg")

    @cached_property
    def settings(self) -> BsgSettings:
        return BsgSettings.from_connection(self.get_connection(self.bsg_conn_id))

    @cached_property
    def session(self) -> BsgSession:
        return BsgSession(self.settings)

    def get_conn(self) -> httpx.Client:
        """The keep-alive client every call of this hook shares (httpx clients are thread-safe)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    # The session too, under the lock: threads racing to the first call share one token.
                    _ = self.session
                    self._client = self.settings.client()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def call(self, request: Request, parse: Parser[Any] = proto.parse) -> Any:
        """Send any built request with the session's token (raises the typed error on failure)."""
        client = self.get_conn()  # first: it makes the session once
        return self.session.call(client, request, parse, self.retry_sleep)

    def test_connection(self) -> tuple[bool, str]:
        """Log in and read the balance, for the UI's Test button."""
        try:
            data = self.get_balance()
        except Exception as exc:
            return False, redact_text(str(exc))
        return True, f"Connected: balance {data.get('balance')} {data.get('currency')}"

    # ------------------------------------------------------------ the SmsHook interface

    def read_campaign(self, campaign_id: int) -> dict[str, Any]:
        return self.get_campaign(campaign_id)

    @classmethod
    def async_campaign_reader(cls, conn: Any) -> tuple[httpx.AsyncClient, AsyncReader]:
        settings = BsgSettings.from_connection(conn)
        session = BsgSession(settings)  # one token for the whole wait, renewed as it ages

        async def read(client: httpx.AsyncClient, campaign_id: int) -> dict[str, Any]:
            return dict(await session.acall(client, proto.get_campaign(campaign_id)))

        return settings.async_client(), read

    @classmethod
    def async_counts_reader(cls, conn: Any) -> tuple[httpx.AsyncClient, AsyncCountsReader]:
        """GET /api/campaigns/{id}/detail: ``total_messages`` and ``statistics`` per MessageStatus."""
        settings = BsgSettings.from_connection(conn)
        session = BsgSession(settings)

        async def read(client: httpx.AsyncClient, campaign_id: int) -> tuple[int, dict[str, int]]:
            detail = dict(await session.acall(client, proto.get_campaign_detail(campaign_id)))
            stats = detail.get("statistics") or {}
            counts = {str(k): int(v) for k, v in stats.items() if isinstance(v, int) and not isinstance(v, bool) and v}
            total = detail.get("total_messages")
            return (total if isinstance(total, int) and not isinstance(total, bool) else sum(counts.values())), counts

        return settings.async_client(), read

    @classmethod
    def campaign_word(cls, data: Mapping[str, Any] | None) -> str:
        return str((data or {}).get("status") or "")

    @classmethod
    def dashboard_page(cls, api: SplitResult, campaign_id: int) -> str | None:
        # Any Host (the API, a proxy): the account and its campaigns live on BSG's dashboard.
        return DASHBOARD + DASHBOARD_CAMPAIGN_PATH.format(id=campaign_id)

    @classmethod
    def async_text_sender(cls, conn: Any) -> tuple[httpx.AsyncClient, AsyncTextSender]:
        settings = BsgSettings.from_connection(conn)
        session = BsgSession(settings)

        async def send_text(client: httpx.AsyncClient, numbers: Sequence[str], text: str, sender: Any) -> list[str]:
            await session.acall(client, _bulk_request(settings, list(numbers), text, sender))
            return []

        return httpx.AsyncClient(**client_options(settings.http.base_url, settings.http.timeout,
                                                  settings.http.verify)), send_text

    def send_text(self, numbers: Sequence[str], text: str, sender: Any) -> list[str]:
        """One sms/send campaign (BSG requires a sender; its check names the field)."""
        self.send_bulk(list(numbers), text, sender)
        return []

    def pricer(self, sender: Any, tariff_code: int | None = None) -> BsgPricer:
        """BSG prices a send itself (``POST /api/campaigns/price``); it needs the sender."""
        return BsgPricer(self, proto.check_sender(sender), proto.check_tariff_code(tariff_code))

    def campaign_price(self, phones: Sequence[Any], text: str, sender: str, *, tariff_code: int | None = None
                       ) -> tuple[float | None, str | None]:
        """POST /api/campaigns/price for up to 10,000 phones: ``(price, currency)``; nothing is sent."""
        numbers = [_phone(p, f"phones[{i}]") for i, p in enumerate(phones)]
        request = proto.campaign_price(numbers, proto.check_message_text(text), proto.check_sender(sender),
                                       tariff_code=proto.check_tariff_code(tariff_code))
        price: tuple[float | None, str | None] = self.call(request, proto.parse_price)
        return price

    def get_balance(self) -> dict[str, Any]:
        """GET /api/accounts/balance: ``{"balance", "currency", "credit"}``."""
        return dict(self.call(proto.get_balance()) or {})

    def events_callback_url(self, events_url: str | None = None) -> str:
        """The ``callback_url`` that sends this connection's delivery callbacks to the SMS events receiver.

        ``<events_url>/bsg/<conn_id>/<callback_token>`` (docs/events.md, "BSG"): ``events_url`` from
        the argument or the connection's ``events_url`` extra, the token from its ``callback_token``
        extra (registered with the secrets masker). Refused before any request when a piece is
        missing or the URL is longer than BSG's 100 characters.
        """
        conn = self.get_connection(self.bsg_conn_id)
        # Every form of the token (it travels in a JSON body's callback_url), as for any secret extra.
        register_connection_secrets(conn)
        extra = conn.extra_dejson or {}
        token = extra.get("callback_token")
        if not token:
            raise SmsValidationError(
                f"connection {self.bsg_conn_id!r} has no callback_token extra: the receiver refuses BSG callbacks "
                "without it (docs/events.md)", field="callback_token")  # fmt: skip
        token = proto.check_callback_token(token, self.bsg_conn_id)
        return proto.events_callback_url(events_url or extra.get("events_url"), self.bsg_conn_id, token)

    def _campaign_options(self, validity: Any, tariff_code: Any, start_at: Any, callback_url: Any) -> dict[str, Any]:
        """The shared campaign settings, checked; start_at in the connection's zone."""
        return {
            "validity": proto.check_validity(validity),
            "tariff_code": proto.check_tariff_code(tariff_code),
            "start_at": proto.format_start_at(start_at, tz=self.settings.timezone),
            "callback_url": proto.check_callback_url(callback_url),
        }

    # ------------------------------------------------------------ campaigns

    def send_bulk(
        self,
        phones: Sequence[Any],
        text: str,
        sender: str,
        *,
        validity: int | None = None,
        tariff_code: int | None = None,
        start_at: Any = None,
        transliterate: bool | None = None,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """sms/send: one text to up to 10,000 phones; returns the new campaign.

        ``phones`` items are numbers, or mappings with ``number`` and an optional
        ``reference_id``. Everything is checked before the request is sent.
        """
        request = _bulk_request(self.settings, phones, text, sender, validity=validity, tariff_code=tariff_code,
                                start_at=start_at, transliterate=transliterate, callback_url=callback_url)
        return self.call(request, proto.parse_object)

    def send_groups(
        self,
        groups: Sequence[int | str],
        text: str,
        sender: str,
        *,
        validity: int | None = None,
        tariff_code: int | None = None,
        start_at: Any = None,
        transliterate: bool | None = None,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """sms/send-groups: one text (``{field_id}`` placeholders allowed) to contact lists."""
        group_ids = proto.campaign_ids(list(groups), "groups")
        request = proto.send_groups(
            group_ids, proto.check_message_text(text), proto.check_sender(sender),
            **self._campaign_options(validity, tariff_code, start_at, callback_url), transliterate=transliterate,
        )
        return self.call(request, proto.parse_object)

    def send_individual(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        validity: int | None = None,
        tariff_code: int | None = None,
        start_at: Any = None,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """sms/send-individual: per-recipient ``phone``, ``text``, ``sender`` (and ``reference_id``,
        ``tariff_code``, ``transliterate``), up to 10,000; returns the new campaign."""
        items = [_individual_item(m, i) for i, m in enumerate(messages)]
        proto.check_audience_size(len(items), "messages")
        proto.check_unique_references(items, "messages")
        request = proto.send_individual(items, **self._campaign_options(validity, tariff_code, start_at, callback_url))
        return self.call(request, proto.parse_object)

    def get_campaign(self, campaign_id: int) -> dict[str, Any]:
        """GET /api/campaigns/{id}: status and short statistics (sent, delivered)."""
        return dict(self.call(proto.get_campaign(campaign_id)))

    def get_campaign_detail(self, campaign_id: int) -> dict[str, Any]:
        """GET /api/campaigns/{id}/detail: statistics per message status, totals and price."""
        return dict(self.call(proto.get_campaign_detail(campaign_id)))

    def stop_campaign(self, campaign_id: int) -> dict[str, Any]:
        """PATCH /api/campaigns/{id}/stop (scheduled, sending, paused or moderation only)."""
        return dict(self.call(proto.stop_campaign(campaign_id)))

    # ------------------------------------------------------------ messages

    def list_messages(
        self,
        *,
        campaign_id: int | None = None,
        reference_id: str | None = None,
        offset: int = 0,
        limit: int = proto.MESSAGES_PAGE_LIMITS[1],
        sort: str | None = None,
        way: str | None = None,
    ) -> dict[str, Any]:
        """GET /api/messages: one page ``{"items", "total", "offset", "limit"}``."""
        request = proto.list_messages(campaign_id=campaign_id, reference_id=reference_id, offset=offset,
                                      limit=limit, sort=sort, way=way)
        return self.call(request, proto.parse_page)

    def iter_messages(self, campaign_id: int, *, page_size: int = proto.MESSAGES_PAGE_LIMITS[1]
                      ) -> Iterator[dict[str, Any]]:
        """Every message of a campaign (per-recipient reports), page after page, by id."""
        offset = 0
        while True:
            page = self.list_messages(campaign_id=campaign_id, offset=offset, limit=page_size, sort="id", way="asc")
            yield from page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return

    def _delivery_pages(
        self, campaign_ids: Sequence[int | str], since: dt.datetime | None, concurrency: int
    ) -> Iterator[list[rec.DeliveryRecord]]:
        """GET /api/messages by campaign, 500 a page in id order; pages after the first
        (known from ``meta.page.total``) with ``concurrency`` reads in flight.

        BSG has no "status changed since" filter (``filter[from]`` is the message's date) and no
        status-change time, so ``since`` filters here: a message is kept when its created, sent or
        delivered time is at or after ``since``, or when its status is not delivered/read (its change
        carries no time: a late "undelivered" must not be missed).
        """
        limit = proto.MESSAGES_PAGE_LIMITS[1]
        for campaign_id in campaign_ids:
            cid = int(campaign_id)

            def page(offset: int, cid: int = cid) -> dict[str, Any]:
                return self.list_messages(campaign_id=cid, offset=offset, limit=limit, sort="id", way="asc")

            first = page(0)
            if not first["items"]:  # an unknown campaign lists nothing too: fail naming it, not an empty report
                self.confirm_campaign(cid)
            # Twice as many pages asked for as in flight: the workers go on while the caller handles one.
            pages: Iterator[dict[str, Any]] = ordered_map(
                page, range(limit, first["total"], limit), concurrency, window=2 * concurrency
            ) if first["items"] else iter(())  # fmt: skip
            # BSG lists every message whatever ``since`` is, so the listing must add up exactly: a page
            # answered twice, cut or skipped must not pass as a smaller campaign.
            totals: list[int] = []
            listed = 0
            for answer in itertools.chain([first], pages):
                if not answer["items"]:
                    # Short of the announced total: stop here (check_count names it), not read a lying
                    # total's worth of empty pages.
                    break
                totals.append(int(answer["total"]))
                listed += len(answer["items"])
                records = rec.check_page(list(map(self.delivery_record, answer["items"])), cid)
                if since is not None:
                    records = [record for record in records if self._changed_since(record, since)]
                if records:
                    yield records
            rec.check_count(self.conn_type, cid, listed, totals, exact=True)

    def _changed_since(self, record: rec.DeliveryRecord, since: dt.datetime) -> bool:
        if record.provider_status not in self._TIMED_FINAL:
            return True
        return record.updated_at is None or record.updated_at >= since

    def delivery_record(self, item: Mapping[str, Any]) -> rec.DeliveryRecord:
        """One MessageApiSchema item as a delivery record (updated_at: its latest time)."""
        zone = self.settings.timezone
        word = str(item.get("status") or "")
        times = [provider_time(item.get(key), zone) for key in ("created_at", "sent_at", "delivered_at")]
        known = [moment for moment in times if moment is not None]
        amount = item.get("amount") or {}
        try:
            cost = Decimal(str(amount["value"])) if amount.get("value") not in (None, "") else None
        except (InvalidOperation, KeyError, TypeError):
            cost = None
        parts = item.get("parts")
        return rec.new_record(
            provider=self.conn_type,
            campaign_id=str(item.get("campaign_id")),
            message_id=str(item.get("id")),
            recipient=str(item.get("phone") or ""),
            status=self.message_status(word),
            provider_status=word,
            parts=int(parts) if isinstance(parts, (int, str)) and str(parts).isdigit() else None,
            cost=cost,
            created_at=times[0],
            updated_at=max(known) if known else None,
        )

    def find_message(self, reference_id: str) -> dict[str, Any] | None:
        """The message sent with ``reference_id``, or None: how a retry finds what an earlier try created."""
        page = self.list_messages(reference_id=reference_id, limit=proto.MESSAGES_PAGE_LIMITS[0])
        return page["items"][0] if page["items"] else None


class BsgPricer:
    """An estimate's prices from BSG: one request per 10,000 rows of the same part count.

    The endpoint prices one text for many phones, and BSG's tariff depends on each number's
    country, so phones are asked for, not multiplied by a rate. A personalised text's rows differ
    in length: rows are grouped by their number of parts and each group is priced with its first
    filled text (same parts, same price per recipient). At most one group of 10,000 phones per
    part count is held at a time (flat memory).
    """

    def __init__(self, hook: BsgHook, sender: str, tariff_code: int | None = None) -> None:
        self.hook, self.sender, self.tariff_code = hook, sender, tariff_code
        self.groups: dict[int, tuple[str, list[int]]] = {}
        self.cost, self.requests, self.unpriced = Decimal(0), 0, 0
        self.currency: str | None = None

    def add(self, number: str, text: str, parts: int) -> None:
        group = self.groups.setdefault(parts, (text, []))
        group[1].append(int(number))
        if len(group[1]) >= proto.MAX_PHONES_PER_CAMPAIGN:
            self._price(parts)

    def _price(self, parts: int) -> None:
        text, phones = self.groups.pop(parts)
        price, currency = self.hook.campaign_price(phones, text, self.sender, tariff_code=self.tariff_code)
        self.requests += 1
        if price is None:  # the schema allows null: say so rather than count it as free
            self.unpriced += len(phones)
            return
        if self.currency is not None and currency != self.currency:
            raise SmsProviderError(f"bsg: price answers in {self.currency} and {currency}", provider="bsg")
        self.currency = currency
        self.cost += Decimal(str(price))

    def result(self) -> tuple[float | None, str | None, str]:
        for parts in sorted(self.groups):
            self._price(parts)
        basis = f"BSG's price endpoint, {self.requests} request{'s' if self.requests != 1 else ''}"
        if self.unpriced:
            return None, None, f"unknown: BSG answered no price for {self.unpriced} recipients ({basis})"
        return float(self.cost.quantize(Decimal("0.000001"))), self.currency, basis


def _phone(value: Any, field: str) -> int:
    try:
        return proto.phone_number(value)
    except ValueError as exc:
        raise SmsValidationError(f"{field}={value!r}: {exc}", field=field, value=value) from None


def _bulk_request(
    settings: BsgSettings,
    phones: Sequence[Any],
    text: str,
    sender: str,
    *,
    validity: int | None = None,
    tariff_code: int | None = None,
    start_at: Any = None,
    transliterate: bool | None = None,
    callback_url: str | None = None,
) -> Request:
    """sms/send, checked (shared by :meth:`BsgHook.send_bulk` and the async notifier path)."""
    items = [_phone_item(p, i) for i, p in enumerate(phones)]
    proto.check_audience_size(len(items), "phones")
    proto.check_unique_references(items, "phones")
    return proto.send_bulk(
        items, proto.check_message_text(text), proto.check_sender(sender),
        validity=proto.check_validity(validity),
        tariff_code=proto.check_tariff_code(tariff_code),
        start_at=proto.format_start_at(start_at, tz=settings.timezone),
        callback_url=proto.check_callback_url(callback_url),
        transliterate=transliterate,
    )


def _phone_item(value: Any, index: int) -> dict[str, Any]:
    raw = value.get("number") if isinstance(value, Mapping) else value
    item: dict[str, Any] = {"number": _phone(raw, f"phones[{index}]")}
    ref = value.get("reference_id") if isinstance(value, Mapping) else None
    if ref is not None:
        item["reference_id"] = proto.check_reference_id(ref, f"phones[{index}].reference_id")
    return item


def _individual_item(message: Mapping[str, Any], index: int) -> dict[str, Any]:
    where = f"messages[{index}]"
    item: dict[str, Any] = {
        "phone": _phone(message.get("phone"), f"{where}.phone"),
        "text": proto.check_message_text(message.get("text"), f"{where}.text"),
        "sender": proto.check_sender(message.get("sender"), f"{where}.sender"),
    }
    if message.get("reference_id") is not None:
        item["reference_id"] = proto.check_reference_id(message["reference_id"], f"{where}.reference_id")
    if message.get("tariff_code") is not None:
        item["tariff_code"] = proto.check_tariff_code(message["tariff_code"], f"{where}.tariff_code")
    if message.get("transliterate") is not None:
        item["transliterate"] = bool(message["transliterate"])
    return item


__all__ = ["BsgHook", "BsgSession", "BsgSettings"]
