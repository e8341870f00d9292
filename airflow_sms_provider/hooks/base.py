"""SmsHook: the one provider interface the provider-neutral layer calls.

The neutral operator, sensor and trigger, the extra links and the notifier never ask
which provider a connection belongs to: they get the connection's hook class from
:mod:`airflow_sms_provider.providers` (by ``conn_type``, from the provider info Airflow
reads) and call what is declared here, the way ``common.sql`` calls ``DbApiHook``.
A fourth provider is one hook that implements this, one protocol module and one sandbox
module; nothing provider-neutral changes.

What a hook implements:

* ``conn_type``, ``conn_name_attr`` (Airflow's own hook attributes) and
  ``status_vocabulary``: the provider's campaign status words mapped to
  ``pending``/``running``/``done``/``failed`` (:mod:`airflow_sms_provider.status_map`);
* :meth:`read_campaign` (sync) and :meth:`async_campaign_reader` (async, from a connection
  the trigger read with the async helpers) and :meth:`campaign_word`;
* :meth:`dashboard_page` for the extra link;
* :meth:`send_text` for the notifier;
* ``message_vocabulary`` and :meth:`iter_delivery_records` for delivery reports: every
  message of some campaigns as provider-neutral
  :class:`~airflow_sms_provider.reports.record.DeliveryRecord` rows, page by page;
* ``campaign_module``: the ``campaigns/`` module whose ``run_campaign(hook, params,
  context, log)`` the neutral operator calls;
* :meth:`estimate` (audience size, SMS parts, cost, sample texts; nothing sent) with
  :meth:`pricer`: by default the connection's ``price_per_part`` / ``currency`` extras, a
  provider with a price endpoint (BSG) overrides it; ``phone_digits`` as the provider checks them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import itertools
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import SplitResult

import httpx
from airflow.providers.common.compat.sdk import BaseHook

from airflow_sms_provider.estimate import Estimate, Pricer, RowRule, connection_rate, estimate_audience, fill_rule
from airflow_sms_provider.exceptions import SmsNotFoundError, SmsValidationError
from airflow_sms_provider.reports.record import PENDING, DeliveryRecord
from airflow_sms_provider.transport import not_found, origin
from airflow_sms_provider.validation import check_text

# Requests in flight at once while a report reads message pages (the hooks' status-read concurrency).
DEFAULT_REPORT_CONCURRENCY = 4
# Records per list of the default SmsHook.iter_delivery_pages (a hook that reads pages hands on its own).
DEFAULT_PAGE_RECORDS = 500

# (client, campaign id) -> the read answer, or None for a campaign the provider reports gone-as-deleted.
AsyncReader = Callable[[httpx.AsyncClient, int], Awaitable[Mapping[str, Any] | None]]
# (client, campaign id) -> (messages in the campaign, {the provider's message status word: messages}).
AsyncCountsReader = Callable[[httpx.AsyncClient, int], Awaitable[tuple[int, Mapping[str, int]]]]
# (client, normalised numbers, text, sender) -> a line per number not reached, as send_text's.
AsyncTextSender = Callable[[httpx.AsyncClient, Sequence[str], str, Any], Awaitable[list[str]]]


@dataclass(frozen=True)
class CampaignParams:
    """What the neutral operator asks of any provider: one text to one audience.

    ``sender`` is already this provider's (a per-provider mapping resolved); ``options`` are
    the provider's own extra parameters (``provider_options``, merged for this provider).
    """

    task_id: str
    conn_id: str
    text: str
    recipients: Any
    sender: Any = None
    send_at: Any = None  # an aware datetime or None
    name: str | None = None
    on_invalid: str = "fail"
    reject_report_path: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


def provider_time(value: Any, zone: dt.tzinfo) -> dt.datetime | None:
    """A provider's timestamp as an aware UTC datetime: ISO 8601 with an offset, or wall time in ``zone``
    (``YYYY-MM-DD HH:MM:SS``, the account's zone). Empty or unreadable values are None."""
    if value is None or value == "":
        return None
    try:
        return _parsed_time(value, zone)
    except TypeError:  # an unhashable value (a list, a dict) is no time
        return None


@functools.lru_cache(maxsize=4096)
def _parsed_time(value: Any, zone: dt.tzinfo) -> dt.datetime | None:
    # Cached: a delivery report reads two timestamps per message and they repeat (whole seconds, a
    # campaign's messages sent together); parsing and zone conversion were a third of a record's CPU.
    try:
        text = str(value).strip()
        moment = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)  # 3.10: no "Z"
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.timezone.utc)


def masked_number(number: str) -> str:
    """A number as logs show it: enough to recognise, not enough to dial."""
    return f"...{number[-4:]}" if len(number) > 4 else "***"


class SmsHook(BaseHook):
    """The provider interface; see the module docstring. Subclasses are Airflow hooks."""

    conn_type: ClassVar[str]
    conn_name_attr: ClassVar[str]
    # The provider's campaign status words -> status_map's vocabulary. An unknown word counts as pending.
    status_vocabulary: ClassVar[Mapping[str, str]] = {}
    # The provider's message status words -> pending/delivered/undelivered/failed (reports.record).
    message_vocabulary: ClassVar[Mapping[str, str]] = {}
    # The campaigns/ module with run_campaign(hook, params, context, log) -> neutral summary.
    campaign_module: ClassVar[str] = ""
    # The API base URL an empty Host means (links read the Host without building the hook).
    default_base_url: ClassVar[str | None] = None
    # (fewest, most) digits of a number, country code included, as the provider's operators check them.
    phone_digits: ClassVar[tuple[int, int]] = (10, 15)

    @classmethod
    def for_connection(cls, conn_id: str) -> SmsHook:
        """The hook for connection ``conn_id`` (each hook names its id keyword in ``conn_name_attr``)."""
        return cls(**{cls.conn_name_attr: conn_id})

    # ------------------------------------------------------------ campaign status

    @property
    def api_base_url(self) -> str:
        """The API base URL errors name (never the credentials)."""
        return str(self.settings.http.base_url)  # type: ignore[attr-defined]

    @staticmethod
    def filled_text_problem(filled: str) -> str | None:
        """What is wrong with one row's filled text (over the provider's length limit), or None.

        The send refuses such a row and the estimate counts it as rejected: one rule, the provider's
        (its protocol module's ``filled_text_problem``). None here: no per-row limit.
        """
        return None

    def confirm_campaign(self, campaign_id: int) -> None:
        """Raise, naming the campaign id and host, when the provider does not know ``campaign_id``.

        For listings that found no message: "no message" and "no such campaign" (deleted, a
        mistyped id, another account's) look the same there, and a report must not quietly be empty.
        """
        try:
            found = self.read_campaign(campaign_id)
        except SmsNotFoundError as err:
            raise not_found("campaign", campaign_id, self.api_base_url, err) from err
        if found is None:
            raise SmsNotFoundError(f"campaign {campaign_id} not found at {origin(self.api_base_url)}: the provider "
                                   "reports it deleted")  # fmt: skip

    def read_campaign(self, campaign_id: int) -> Mapping[str, Any] | None:
        """The provider's read of one campaign; ``None`` when the provider reports it deleted.

        A campaign the provider does not know raises :class:`~airflow_sms_provider.exceptions.SmsNotFoundError`.
        """
        raise NotImplementedError

    @classmethod
    def async_campaign_reader(cls, conn: Any) -> tuple[httpx.AsyncClient, AsyncReader]:
        """An async client for connection ``conn`` and the async :meth:`read_campaign`.

        ``conn`` is what the trigger read with the async connection helpers: nothing here may
        call the sync connection API.
        """
        raise NotImplementedError

    @classmethod
    def async_counts_reader(cls, conn: Any) -> tuple[httpx.AsyncClient, AsyncCountsReader] | None:
        """An async client and a read of one campaign's message count and per-status counts.

        ``None``: the provider has no cheap per-status counts (the event trigger's ``counts`` and
        ``delivered_ratio`` then are not available). Same rules as :meth:`async_campaign_reader`.
        """
        return None

    @classmethod
    def campaign_word(cls, data: Mapping[str, Any] | None) -> str:
        """The provider's own status word in one :meth:`read_campaign` answer."""
        raise NotImplementedError

    @classmethod
    def describe_campaign(cls, data: Mapping[str, Any] | None) -> dict[str, str]:
        """``{"status": <vocabulary>, "provider_status": <the provider's word>}`` for one read answer."""
        word = cls.campaign_word(data)
        return {"status": cls.neutral_word(word), "provider_status": word}

    @classmethod
    def neutral_word(cls, word: str) -> str:
        """The vocabulary word for one of the provider's status words (``pending`` when unknown)."""
        from airflow_sms_provider.status_map import PENDING

        return cls.status_vocabulary.get(word, PENDING)

    @classmethod
    def status_reached(cls, word: str, targets: Iterable[str]) -> bool:
        """Whether the provider's status ``word`` reached or passed one of ``targets`` (default: equality)."""
        return word in set(targets)

    def neutral_status(self, campaign_id: int) -> tuple[str, str]:
        """(vocabulary word, provider's word) of one campaign, read now."""
        described = self.describe_campaign(self.read_campaign(campaign_id))
        return described["status"], described["provider_status"]

    # ------------------------------------------------------------ delivery reports

    @classmethod
    def message_status(cls, word: str) -> str:
        """The neutral word for one of the provider's message statuses (``pending`` when unknown)."""
        return cls.message_vocabulary.get(word, PENDING)

    def iter_delivery_records(
        self,
        campaign_ids: Sequence[int | str],
        *,
        since: dt.datetime | None = None,
        concurrency: int = DEFAULT_REPORT_CONCURRENCY,
    ) -> Iterator[DeliveryRecord]:
        """Every message of ``campaign_ids`` as a delivery record, read page by page (flat memory).

        ``since`` (aware): only messages whose status changed at or after it (each hook says whether
        the provider filters or the hook does). ``concurrency``: page reads in flight at once.
        """
        raise NotImplementedError

    def iter_delivery_pages(
        self,
        campaign_ids: Sequence[int | str],
        *,
        since: dt.datetime | None = None,
        concurrency: int = DEFAULT_REPORT_CONCURRENCY,
    ) -> Iterator[list[DeliveryRecord]]:
        """:meth:`iter_delivery_records` a list (a page, none empty) at a time: what the report operator reads.

        A hook that reads pages overrides it to hand each page on whole, checked
        (:func:`~airflow_sms_provider.reports.record.check_page`): no Python step per record between the
        listing and the destination. This default groups the records (``iter_delivery_records`` is called
        now, so a provider that cannot list messages fails here, not at the first page).
        """
        records = iter(self.iter_delivery_records(campaign_ids, since=since, concurrency=concurrency))
        return iter(lambda: list(itertools.islice(records, DEFAULT_PAGE_RECORDS)), [])

    # ------------------------------------------------------------ links

    @classmethod
    def dashboard_page(cls, api: SplitResult, campaign_id: int) -> str | None:
        """The campaign's page in the provider's web dashboard for an API base URL, or ``None``.

        Only ``api``'s scheme, host name, port and path may be used: never its user info.
        """
        return None

    # ------------------------------------------------------------ governed sends

    def pricer(self, sender: Any) -> Pricer:
        """What prices an estimate: the connection's ``price_per_part`` and ``currency`` extras
        (cost unknown without them). A provider whose API prices a send overrides this."""
        conn_id = getattr(self, self.conn_name_attr)
        return connection_rate(self.get_connection(conn_id).extra_dejson, conn_id)

    def estimate(
        self,
        text: str,
        recipients: Any,
        sender: Any = None,
        *,
        number_field: str = "recipient",
        sample_size: int = 3,
        max_reported: int = 20,
        options: Mapping[str, Any] | None = None,
    ) -> Estimate:
        """Audience size, SMS parts and cost of sending ``text`` to ``recipients``; no SMS is sent.

        The audience is read once, streaming, with the send's rules (invalid rows reported, a
        number repeated counted once); each row's placeholders are filled before its parts are
        counted. ``options``: the send's provider options (``SmsCampaignOperator``'s
        ``provider_options`` for this provider) where they change which rows are sent or their
        text (:meth:`estimate_rule`). See :mod:`airflow_sms_provider.estimate`.
        """
        low, high = self.phone_digits
        return estimate_audience(text, recipients, self.pricer(sender), provider=self.conn_type,
                                 number_field=number_field, min_digits=low, max_digits=high,
                                 sample_size=sample_size, max_reported=max_reported,
                                 text_problem=self.filled_text_problem,
                                 row_rule=self.estimate_rule(check_text(text), dict(options or {})))  # fmt: skip

    def estimate_rule(self, text: str, options: Mapping[str, Any]) -> RowRule:
        """The per-row rule the send applies with ``options``: which rows it refuses, what it sends.

        This default is the provider-neutral ``{name}`` rule (:func:`~airflow_sms_provider.estimate.fill_rule`),
        options ignored. A provider whose options change it (Mobizon's ``placeholders_flag``,
        BSG's ``reference_field``, Ogangi's file send) overrides this.
        """
        return fill_rule(text, self.filled_text_problem)

    # ------------------------------------------------------------ the notifier

    def send_text(self, numbers: Sequence[str], text: str, sender: Any) -> list[str]:
        """Send ``text`` to a few normalised numbers now; returns a line per number not reached
        (numbers masked with :func:`masked_number`). Raises when nothing was sent."""
        raise NotImplementedError

    @classmethod
    def async_text_sender(cls, conn: Any) -> tuple[httpx.AsyncClient, AsyncTextSender]:
        """The async twin of :meth:`send_text` for a connection (the notifier's ``async_notify``):
        a client to close and a coroutine function sending the same requests over it.

        This default (a hook of another package without an async twin) runs :meth:`send_text`
        in a worker thread: the event loop is not blocked, a thread is. This package's hooks
        override it with their ``httpx.AsyncClient`` path.
        """

        def send_in_thread(numbers: Sequence[str], text: str, sender: Any) -> list[str]:
            hook = cls.for_connection(conn.conn_id)
            try:
                return hook.send_text(numbers, text, sender)
            finally:
                close = getattr(hook, "close", None)
                if close is not None:
                    close()

        async def send_text(client: httpx.AsyncClient, numbers: Sequence[str], text: str, sender: Any) -> list[str]:
            return await asyncio.to_thread(send_in_thread, numbers, text, sender)

        return httpx.AsyncClient(), send_text



class ListsPages:
    """``iter_delivery_records`` and ``iter_delivery_pages`` of a hook whose provider lists a campaign's
    messages: the hook gives ``_delivery_pages`` (checked pages, in order) and says there what ``since``
    means. Put before :class:`SmsHook` in the bases.
    """

    def _delivery_pages(
        self, campaign_ids: Sequence[int | str], since: dt.datetime | None, concurrency: int
    ) -> Iterator[list[DeliveryRecord]]:
        raise NotImplementedError

    def iter_delivery_records(
        self,
        campaign_ids: Sequence[int | str],
        *,
        since: dt.datetime | None = None,
        concurrency: int = DEFAULT_REPORT_CONCURRENCY,
    ) -> Iterator[DeliveryRecord]:
        """Every message of ``campaign_ids`` as a checked delivery record (see ``_delivery_pages``)."""
        return itertools.chain.from_iterable(
            self.iter_delivery_pages(campaign_ids, since=since, concurrency=concurrency)
        )

    def iter_delivery_pages(
        self,
        campaign_ids: Sequence[int | str],
        *,
        since: dt.datetime | None = None,
        concurrency: int = DEFAULT_REPORT_CONCURRENCY,
    ) -> Iterator[list[DeliveryRecord]]:
        """The provider's pages of delivery records, each checked; the arguments are checked now."""
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise SmsValidationError(f"concurrency={concurrency!r} must be a positive integer", field="concurrency",
                                     value=concurrency)  # fmt: skip
        return self._delivery_pages(campaign_ids, since, concurrency)


__all__ = [
    "DEFAULT_REPORT_CONCURRENCY",
    "AsyncReader",
    "AsyncTextSender",
    "CampaignParams",
    "ListsPages",
    "SmsHook",
    "masked_number",
    "provider_time",
]
