"""Operators for BSG One-API campaigns: bulk, contact lists, personalised, stop, statistics.

Every operator validates its (rendered) input before the first request that creates
anything, and returns a small summary for XCom: ids, counts and a few examples, never
the audience.

An audience is read twice: first to check every row (so a bad row 90,000 fails the task
before campaign 1 is created), then to send it in campaigns of at most 10,000 phones.
Files and lists can be read twice; a one-shot iterator is kept in memory for that.

Crash safety: each message gets a ``reference_id`` (yours, or one derived from the task
run and the phone, the same in any order), the campaign ids are recorded in the task's
durable state as they are created, and a campaign whose creation went unanswered, or
whose ids BSG refuses as repeated (429), is looked up by its reference_ids, verified and
adopted instead of being created again (campaigns/bsg.py, ``settle``): only phones no
campaign holds are sent. That work is :mod:`airflow_sms_provider.campaigns.bsg`'s: the bulk
and personalised operators hand it their parameters.

The campaigns of a split audience are created ``max_concurrent_creates`` at a time
(threads sharing the hook and its token); each is recorded under its chunk's position as
soon as its answer arrives, whatever the order, and a rate-limit answer makes every
worker pause and fewer requests run at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_sms_provider.campaigns.bsg import (  # noqa: F401 - MAX_CONCURRENT_CREATES: kept importable here
    _OPTION_FIELDS,
    MAX_CONCURRENT_CREATES,
    BsgAudienceWork,
    BsgBulkParams,
    BsgBulkWork,
    BsgIndividualParams,
    BsgIndividualWork,
    CampaignSettings,
)
from airflow_sms_provider.campaigns.run import TaskRuntime, params_of
from airflow_sms_provider.exceptions import (
    SmsConflictError,
    SmsFatalError,
    SmsProviderError,
    SmsRetryableError,
)
from airflow_sms_provider.hooks.bsg import BsgHook
from airflow_sms_provider.links import BsgCampaignLink, persist_campaign_link
from airflow_sms_provider.progress import Checkpoint
from airflow_sms_provider.protocols import bsg as proto
from airflow_sms_provider.templating import DataFieldsMixin


class _BsgOperator(DataFieldsMixin, BaseOperator):
    """Holds the connection id and makes hooks; subclasses do one step."""

    def __init__(self, *, bsg_conn_id: str = BsgHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bsg_conn_id = bsg_conn_id

    def hook(self) -> BsgHook:
        return BsgHook(self.bsg_conn_id)


class _CampaignOperator(CampaignSettings, _BsgOperator):
    """Settings every campaign kind shares (validity, tariff, schedule, callback)."""

    def __init__(
        self,
        *,
        validity: int | str | None = None,
        tariff_code: int | str | None = None,
        start_at: Any = None,
        transliterate: bool | None = None,
        callback_url: str | None = None,
        delivery_events: bool = False,
        start_at_lateness: float = proto.START_AT_LATENESS.total_seconds() / 60,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.validity, self.tariff_code, self.start_at = validity, tariff_code, start_at
        self.transliterate, self.callback_url = transliterate, callback_url
        self.delivery_events = delivery_events
        self.start_at_lateness = start_at_lateness


class _AudienceCampaignOperator(_CampaignOperator):
    """Shared by the bulk and personalised operators: their parameters; the work is campaigns/bsg.py's."""

    operator_extra_links = (BsgCampaignLink(),)
    work_class: type[BsgAudienceWork]
    params_class: type[Any]

    def __init__(
        self,
        *,
        recipients: Any,
        number_field: str = "recipient",
        reference_field: str = "reference_id",
        on_invalid: str = "fail",
        reject_report_path: str | None = None,
        split: bool = True,
        chunk_size: int = proto.MAX_PHONES_PER_CAMPAIGN,
        auto_reference_ids: bool = True,
        max_reported: int = 20,
        max_concurrent_creates: int | str = 4,
        on_window_passed: str = "fail",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.on_window_passed = on_window_passed
        self.recipients, self.number_field, self.reference_field = recipients, number_field, reference_field
        self.on_invalid, self.reject_report_path = on_invalid, reject_report_path
        self.split, self.chunk_size, self.auto_reference_ids = split, chunk_size, auto_reference_ids
        self.max_reported = max_reported
        self.max_concurrent_creates = max_concurrent_creates

    def execute(self, context: Any) -> dict[str, Any]:
        runtime = TaskRuntime(context, self.log, self.task_id, self.dag_id)
        return self.work_class(params_of(self.params_class, self), runtime).run()


class BsgBulkCampaignOperator(_AudienceCampaignOperator):
    """Send one text to a list of phones (``sms/send``), 10,000 phones per campaign.

    :param recipients: phone numbers, or rows with a number column and an optional
        ``reference_id`` column: a list, any iterable, an upstream XCom, or a CSV/XLSX path.
    :param text: the message (≤ 765 GSM-7 or ≤ 335 UCS-2 characters).
    :param sender: sender name: 3-11 Latin letters/digits/symbols/spaces, or 3-15 digits.
    :param number_field: column/key holding the number (default ``recipient``; ``number``,
        ``phone`` and ``msisdn`` are recognised too).
    :param reference_field: column/key holding your reference_id (≤ 32 letters/digits, unique).
    :param on_invalid: ``fail`` (default) at the first bad row, or ``skip`` it and report it.
    :param reject_report_path: CSV of every rejected row (local or object storage path).
    :param split: send an audience of more than ``chunk_size`` phones as several campaigns
        (default); when False such an audience is an error.
    :param chunk_size: phones per campaign, 1 to 10,000.
    :param max_concurrent_creates: how many of a split audience's campaigns are created at
        once (default 4; 1: one after the other; templated; at most 16). Each chunk's campaign
        is recorded as soon as it exists; when BSG answers "too many requests" every creation
        pauses (for its Retry-After, if it sends one) and fewer run at once.
    :param auto_reference_ids: give rows without a reference_id one derived from the task run and
        the phone, so a retry finds what an earlier try created, in any order, instead of sending it
        twice (default True). A campaign
        whose rows have none cannot be found: if its creation goes unanswered the task fails without retry.
    :param validity: hours a message may wait for delivery, 1-72 (BSG's default 72).
    :param tariff_code: the account's tariff to bill, 0-9.
    :param start_at: when to send (datetime, pendulum or template string), up to 30 days ahead, read in
        the connection's ``timezone``. At most ``start_at_lateness`` minutes in the past means now.
    :param start_at_lateness: minutes start_at may lie in the past at the first check and still be
        sent (as "now"), default 15 (``{{ data_interval_end }}`` on a scheduled run). Further: refused.
        Checked before the first creation only; a retry resuming created chunks does not judge it again.
    :param on_window_passed: a retry resumes after ``start_at`` has passed with chunks still to create:
        ``fail`` (default; no retry, naming the created campaigns and what is left), ``send_now``
        (create the rest without start_at) or ``keep_offset`` (the rest starts as long after now as
        start_at was after the first check). Templated.
    :param transliterate: let BSG transliterate the text when needed.
    :param callback_url: delivery-report URL (≤ 100 characters).
    :param delivery_events: send BSG's status callbacks to the SMS events receiver (the connection's
        ``events_url`` and ``callback_token`` extras make the URL; docs/events.md); not with ``callback_url``.
    :param max_reported: how many rejected rows and campaigns are listed in the summary.
    :param bsg_conn_id: the ``bsg`` connection (default ``bsg_default``).

    Returns ``{"campaign_ids", "campaigns", "phones", "invalid", "calculated_price",
    "currency", "start_at", "reference_prefix"}``.
    """

    template_fields: Sequence[str] = (
        "recipients", "text", "sender", *_OPTION_FIELDS, "reject_report_path", "max_concurrent_creates",
        "bsg_conn_id", "on_window_passed",
    )  # fmt: skip
    work_class, params_class = BsgBulkWork, BsgBulkParams

    def __init__(self, *, text: str, sender: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text, self.sender = text, sender


class BsgIndividualCampaignOperator(_AudienceCampaignOperator):
    """Send each recipient its own text (``sms/send-individual``), 10,000 per campaign.

    Each row's text is its ``text_field`` column when present, else ``text`` with
    ``{placeholders}`` filled from the row's other columns; the sender is the row's
    ``sender_field`` column or ``sender``.

    :param recipients: rows (dicts, a CSV/XLSX path, an XCom of rows) with a number column.
    :param text: template for rows without their own text, e.g. ``"Hi {name}, code {code}"``.
    :param sender: default sender for rows without one.
    :param text_field: column holding a ready text (default ``text``).
    :param sender_field: column holding a sender (default ``sender``).
    :param number_field: column/key holding the number (default ``recipient``; ``number``,
        ``phone`` and ``msisdn`` are recognised too).
    :param reference_field: column/key holding your reference_id (≤ 32 letters/digits, unique).
    :param on_invalid: ``fail`` (default) at the first bad row, or ``skip`` it and report it; rows
        whose text is too long, whose placeholders have no value or whose sender is invalid count
        as bad rows.
    :param reject_report_path: CSV of every rejected row (local or object storage path).
    :param split: send an audience of more than ``chunk_size`` rows as several campaigns (default).
    :param chunk_size: messages per campaign, 1 to 10,000.
    :param max_concurrent_creates: how many of a split audience's campaigns are created at
        once (default 4; 1: one after the other; templated; at most 16). Each chunk's campaign
        is recorded as soon as it exists; when BSG answers "too many requests" every creation
        pauses (for its Retry-After, if it sends one) and fewer run at once.
    :param auto_reference_ids: give rows without a reference_id one derived from the task run and
        the phone, so a retry finds what an earlier try created, in any order (default True). A campaign
        whose rows have none cannot be found: if its creation goes unanswered the task fails without retry.
    :param validity: hours a message may wait for delivery, 1-72 (BSG's default 72).
    :param tariff_code: the account's tariff to bill, 0-9.
    :param start_at: when to send (datetime, pendulum or template string), up to 30 days ahead, read in
        the connection's ``timezone``. At most ``start_at_lateness`` minutes in the past means now.
    :param start_at_lateness: minutes start_at may lie in the past at the first check and still be
        sent (as "now"), default 15 (``{{ data_interval_end }}`` on a scheduled run). Further: refused.
        Checked before the first creation only; a retry resuming created chunks does not judge it again.
    :param on_window_passed: a retry resumes after ``start_at`` has passed with chunks still to create:
        ``fail`` (default; no retry, naming the created campaigns and what is left), ``send_now``
        (create the rest without start_at) or ``keep_offset`` (the rest starts as long after now as
        start_at was after the first check). Templated.
    :param transliterate: let BSG transliterate the texts when needed.
    :param callback_url: delivery-report URL (≤ 100 characters).
    :param delivery_events: send BSG's status callbacks to the SMS events receiver (the connection's
        ``events_url`` and ``callback_token`` extras make the URL; docs/events.md); not with ``callback_url``.
    :param max_reported: how many rejected rows and campaigns are listed in the summary.
    :param bsg_conn_id: the ``bsg`` connection (default ``bsg_default``).

    Returns the same summary as :class:`BsgBulkCampaignOperator`.
    """

    template_fields: Sequence[str] = (
        "recipients", "text", "sender", *_OPTION_FIELDS, "reject_report_path", "max_concurrent_creates",
        "bsg_conn_id", "on_window_passed",
    )  # fmt: skip
    work_class, params_class = BsgIndividualWork, BsgIndividualParams

    def __init__(
        self,
        *,
        text: str | None = None,
        sender: str | None = None,
        text_field: str = "text",
        sender_field: str = "sender",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.text, self.sender, self.text_field, self.sender_field = text, sender, text_field, sender_field


class BsgGroupsCampaignOperator(_CampaignOperator):
    """Send one text to contact lists of the BSG contact book (``sms/send-groups``).

    :param groups: contact list ids (a list, "1,2", or one id; templated).
    :param text: the message; ``{12}`` placeholders (numeric custom-field ids) take the contacts'
        field values. Named ones (``{name}``) are refused: BSG would send them literally.
    :param sender: sender name.
    :param validity: hours a message may wait for delivery, 1-72 (BSG's default 72).
    :param tariff_code: the account's tariff to bill, 0-9.
    :param start_at: when to send (datetime, pendulum or template string), up to 30 days ahead, read in
        the connection's ``timezone``. At most ``start_at_lateness`` minutes in the past means now.
    :param start_at_lateness: minutes start_at may lie in the past at the first check and still be
        sent (as "now"), default 15 (``{{ data_interval_end }}`` on a scheduled run). Further: refused.
    :param transliterate: let BSG transliterate the text when needed.
    :param callback_url: delivery-report URL (≤ 100 characters).
    :param delivery_events: send BSG's status callbacks to the SMS events receiver (the connection's
        ``events_url`` and ``callback_token`` extras make the URL; docs/events.md); not with ``callback_url``.
    :param bsg_conn_id: the ``bsg`` connection (default ``bsg_default``).

    BSG refuses lists holding more than 10,000 contacts together (split them into several tasks).

    A campaign without reference_ids cannot be looked up, so a retry after an unanswered
    creation (recorded in the task's durable state) fails instead of sending again: check
    the account's campaigns, then clear the task. Without durable state (Airflow < 3.3) the
    unanswered try itself fails without retry, with the same advice.

    Returns ``{"campaign_ids": [id], "campaign_id", "groups", "status", "calculated_price", "currency"}``.
    """

    template_fields: Sequence[str] = ("groups", "text", "sender", *_OPTION_FIELDS, "bsg_conn_id")
    operator_extra_links = (BsgCampaignLink(),)

    def __init__(self, *, groups: Any, text: str, sender: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.groups, self.text, self.sender = groups, text, sender

    def execute(self, context: Any) -> dict[str, Any]:
        groups = proto.campaign_ids(self.groups, "groups")
        text = proto.check_group_placeholders(proto.check_message_text(self.text))
        sender = proto.check_sender(self.sender)
        ckpt = Checkpoint(context, "bsg_groups")
        options = self.campaign_options(ckpt, started=bool(ckpt.get("campaign") or ckpt.get("pending")))
        if ckpt.get("campaign"):
            self.log.info("Campaign %s was created by an earlier try", ckpt.get("campaign")["id"])
            persist_campaign_link(context, self.bsg_conn_id, ckpt.get("campaign")["id"], self.log)
            return self._summary(ckpt.get("campaign"), groups)
        if ckpt.get("pending"):
            raise SmsFatalError(
                "an earlier try sent the send-groups request and recorded no answer: the campaign may exist. "
                "Check the BSG account's campaigns, then clear this task to send again",
                provider=proto.PROVIDER,
            )
        hook = self.hook()
        try:
            ckpt.save(pending=True)
            request = proto.send_groups(groups, text, sender, **options, transliterate=self.transliterate)
            try:
                campaign = dict(hook.call(request))
            except Exception as err:
                refused = isinstance(err, (SmsFatalError, SmsRetryableError))
                if refused and not isinstance(err, proto.BsgDuplicateRequestError):
                    ckpt.save(pending=False)  # invalid, unauthorised, rate limited: nothing was created
                elif not ckpt.durable:
                    # No answer, an unreadable one, or "duplicate": it may exist, and without durable
                    # state a retry could not know and would send again. Stop now.
                    raise SmsFatalError(
                        f"{err}; the campaign may exist. Check the BSG account's campaigns for contact lists "
                        f"{groups}, then clear this task to send again",
                        provider=proto.PROVIDER,
                    ) from err
                raise  # with durable state the retry reads "pending" and stops with the same advice
        finally:
            hook.close()
        ckpt.save(campaign=campaign, pending=False)
        persist_campaign_link(context, self.bsg_conn_id, campaign.get("id"), self.log)
        self.log.info("Created BSG campaign %s for contact lists %s", campaign.get("id"), groups)
        return self._summary(campaign, groups)

    @staticmethod
    def _summary(campaign: Mapping[str, Any], groups: list[int]) -> dict[str, Any]:
        return {
            "campaign_ids": [int(campaign["id"])],
            "campaign_id": int(campaign["id"]),
            "groups": groups,
            "status": campaign.get("status"),
            "calculated_price": campaign.get("calculated_price"),
            "currency": campaign.get("currency"),
        }


class BsgStopCampaignOperator(_BsgOperator):
    """Stop campaigns (``PATCH /api/campaigns/{id}/stop``).

    :param campaign_ids: one id, several, or an upstream campaign operator's summary (templated).
    :param finished_ok: a campaign that already ended (done, stopped, spam) counts as success
        (default True, so a retry after a stop succeeds).
    :param bsg_conn_id: the ``bsg`` connection (default ``bsg_default``).

    BSG stops campaigns that are scheduled, sending, paused or in moderation. One still in
    ``creation`` makes the task fail with a retryable error (it will be stoppable shortly).

    Returns ``{"stopped": [ids], "already_final": {id: status}, "statuses": {id: status}}``.
    """

    template_fields: Sequence[str] = ("campaign_ids", "bsg_conn_id")
    operator_extra_links = (BsgCampaignLink(),)

    def __init__(self, *, campaign_ids: Any, finished_ok: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.campaign_ids, self.finished_ok = campaign_ids, finished_ok

    def execute(self, context: Any) -> dict[str, Any]:
        ids = proto.campaign_ids(self.campaign_ids)
        persist_campaign_link(context, self.bsg_conn_id, ids, self.log)
        result: dict[str, Any] = {"stopped": [], "already_final": {}, "statuses": {}}
        hook = self.hook()
        try:
            for campaign_id in ids:
                result["statuses"][str(campaign_id)] = self._stop(hook, campaign_id, result)
        finally:
            hook.close()
        return result

    def _stop(self, hook: BsgHook, campaign_id: int, result: dict[str, Any]) -> str:
        try:
            data = hook.stop_campaign(campaign_id)
        except SmsConflictError:
            status = str(hook.get_campaign(campaign_id).get("status"))
            if status in proto.FINAL_STATUSES and self.finished_ok:
                self.log.info("Campaign %s has already ended (%s)", campaign_id, status)
                result["already_final"][str(campaign_id)] = status
                return status
            if status == "creation":
                raise SmsProviderError(
                    f"campaign {campaign_id} is still in creation, which BSG cannot stop yet; retry shortly",
                    provider=proto.PROVIDER,
                ) from None
            raise
        self.log.info("Stopped campaign %s", campaign_id)
        result["stopped"].append(campaign_id)
        return str(data.get("status"))


class BsgCampaignStatsOperator(_BsgOperator):
    """Load campaigns' statistics (``GET /api/campaigns/{id}/detail``) and, optionally, message reports.

    :param campaign_ids: one id, several, or an upstream campaign operator's summary (templated).
    :param include_messages: also page through ``GET /api/messages`` per campaign and count the
        messages per status (per-recipient reports), with a few examples.
    :param max_reported: how many example messages go to XCom.
    :param bsg_conn_id: the ``bsg`` connection (default ``bsg_default``).

    Returns ``{"campaign_ids", "campaigns": {id: {status, statistics, total_phones, total_price,
    currency}}, "statistics" (summed), "total_phones", "total_price", "currency"}`` and, with
    ``include_messages``, ``"messages": {"counts": {status: n}, "total": n, "examples": [...]}``.
    """

    template_fields: Sequence[str] = ("campaign_ids", "bsg_conn_id")
    operator_extra_links = (BsgCampaignLink(),)

    def __init__(self, *, campaign_ids: Any, include_messages: bool = False, max_reported: int = 20,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.campaign_ids, self.include_messages, self.max_reported = campaign_ids, include_messages, max_reported

    def execute(self, context: Any) -> dict[str, Any]:
        ids = proto.campaign_ids(self.campaign_ids)
        persist_campaign_link(context, self.bsg_conn_id, ids, self.log)
        hook = self.hook()
        try:
            details = {campaign_id: hook.get_campaign_detail(campaign_id) for campaign_id in ids}
            messages = self._messages(hook, ids) if self.include_messages else None
        finally:
            hook.close()
        summary = _sum_details(details)
        summary["campaign_ids"] = ids
        if messages is not None:
            summary["messages"] = messages
        return summary

    def _messages(self, hook: BsgHook, ids: list[int]) -> dict[str, Any]:
        counts: dict[Any, int] = {}
        examples: list[dict[str, Any]] = []
        for campaign_id in ids:
            for row in hook.iter_messages(campaign_id):
                counts[row.get("status")] = counts.get(row.get("status"), 0) + 1
                if len(examples) < self.max_reported:
                    examples.append({k: row.get(k) for k in ("id", "campaign_id", "phone", "reference_id",
                                                              "status", "sent_at", "delivered_at")})
        return {"counts": counts, "total": sum(counts.values()), "examples": examples}


def _sum_details(details: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """Per-campaign detail plus the statistics, phones and price added up."""
    campaigns: dict[str, Any] = {}
    totals: dict[str, int] = {}
    price = Decimal(0)
    for campaign_id, detail in details.items():
        stats = dict(detail.get("statistics") or {})
        for key, value in stats.items():
            totals[key] = totals.get(key, 0) + int(value or 0)
        with contextlib.suppress(InvalidOperation):  # a price BSG did not fill in adds nothing
            price += Decimal(str(detail.get("total_price") or 0))
        campaigns[str(campaign_id)] = {
            "status": detail.get("status"),
            "statistics": stats,
            "total_phones": detail.get("total_phones"),
            "total_price": detail.get("total_price"),
            "currency": detail.get("currency"),
        }
    return {
        "campaigns": campaigns,
        "statistics": totals,
        "total_phones": sum(int(c["total_phones"] or 0) for c in campaigns.values()),
        "total_price": str(price),
        "currency": next((c["currency"] for c in campaigns.values() if c["currency"]), None),
    }
