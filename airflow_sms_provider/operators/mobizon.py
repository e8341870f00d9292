"""Operators for Mobizon campaigns: create, fill, send, and the one-step campaign.

Every operator validates its (rendered) input before the first request that
creates or sends anything, and returns a small summary for XCom: ids, counts and
at most a few examples, never the audience. The crash-safe work (ledger, lease,
reconcile, windows, send once) is :mod:`airflow_sms_provider.campaigns.mobizon`'s:
these operators hand it their parameters and wait (or defer) afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_sms_provider.campaigns.events import raise_for_error
from airflow_sms_provider.campaigns.mobizon import (  # noqa: F401 - the names below stay importable here
    _CAMPAIGN_FIELDS,
    MAX_NAME_LENGTH,
    MOBIZON_WINDOW_POLICIES,
    SMS_LOOKUP_SLACK,
    CampaignSpec,
    MobizonCampaignParams,
    MobizonCampaignWork,
    MobizonCreateParams,
    MobizonCreateWork,
    MobizonSmsParams,
    MobizonSmsWork,
    check_mobizon_text,
    check_sender,
    find_tagged_campaign,
    read_named,
    send_once,
    skip_upload_if_sent,
)
from airflow_sms_provider.campaigns.mobizon_upload import (  # noqa: F401 - PLACEHOLDERS_FLAGS: kept importable here
    PLACEHOLDERS_FLAGS,
    RecipientsMixin,
    wait_for_task,
)
from airflow_sms_provider.campaigns.run import TaskRuntime, params_of
from airflow_sms_provider.campaigns.watch import Outcome, poll_until
from airflow_sms_provider.exceptions import (
    SmsCampaignFailedError,
    SmsProviderError,
    SmsValidationError,
)
from airflow_sms_provider.hooks.mobizon import AddResult, MobizonHook, added_results
from airflow_sms_provider.links import MobizonCampaignLink, persist_campaign_link
from airflow_sms_provider.progress import Checkpoint
from airflow_sms_provider.protocols import mobizon as proto
from airflow_sms_provider.templating import DataFieldsMixin
from airflow_sms_provider.validation import as_int


class _MobizonOperator(DataFieldsMixin, BaseOperator):
    """Holds the connection id and the hook; subclasses do one step."""

    def __init__(self, *, mobizon_conn_id: str = MobizonHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mobizon_conn_id = mobizon_conn_id

    def hook(self) -> MobizonHook:
        return MobizonHook(self.mobizon_conn_id)


    def runtime(self, context: Any) -> TaskRuntime:
        """What the campaign work needs from this task: its context, log and id."""
        return TaskRuntime(context, self.log, self.task_id, self.dag_id)


class MobizonCreateCampaignOperator(_MobizonOperator):
    """Create a Mobizon campaign (campaign/create) and return its id.

    :param text: message text; for ``campaign_type=3`` with ``{placeholders}``.
    :param name: campaign name (≤ 255 characters).
    :param campaign_type: 1 single message, 2 bulk (default), 3 template.
    :param sender: sender ID (alpha name); the connection's ``default_sender`` when omitted.
    :param rate_limit: messages per ``rate_period`` (throttled sending).
    :param rate_period: 60, 3600 or 86400 seconds.
    :param deferred_to: send time (datetime or template string), 1 hour to 14 days ahead.
    :param mclass: 0 flash SMS, 1 normal (default).
    :param validity: delivery wait in minutes, 60 to 1440.
    :param shorten_links: shorten links in the text.
    :param track_short_link_recipients: track which recipients clicked short links.
    :param mobizon_conn_id: the ``mobizon`` connection.
    """

    template_fields: Sequence[str] = (*_CAMPAIGN_FIELDS, "mobizon_conn_id")
    operator_extra_links = (MobizonCampaignLink(),)

    def __init__(
        self,
        *,
        text: str,
        name: str | None = None,
        campaign_type: int | str = 2,
        sender: str | None = None,
        rate_limit: int | None = None,
        rate_period: int | None = None,
        deferred_to: dt.datetime | str | None = None,
        mclass: int | None = None,
        validity: int | None = None,
        shorten_links: bool | None = None,
        track_short_link_recipients: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.text, self.name, self.campaign_type, self.sender = text, name, campaign_type, sender
        self.rate_limit, self.rate_period, self.deferred_to = rate_limit, rate_period, deferred_to
        self.mclass, self.validity = mclass, validity
        self.shorten_links, self.track_short_link_recipients = shorten_links, track_short_link_recipients

    def campaign_fields(self, ckpt: Checkpoint | None = None) -> dict[str, Any]:
        """The checked fields; with ``ckpt``, deferred_to is checked only before the campaign was started."""
        return MobizonCreateWork(params_of(MobizonCreateParams, self), self.runtime({})).campaign_fields(ckpt)

    def execute(self, context: Any) -> int:
        return MobizonCreateWork(params_of(MobizonCreateParams, self), self.runtime(context)).run()


# ------------------------------------------------------------------ recipients


class MobizonAddRecipientsOperator(RecipientsMixin, _MobizonOperator):
    """Add recipients to a campaign (campaign/addRecipients), with exactly one source.

    :param campaign_id: the campaign (templated, e.g. ``{{ ti.xcom_pull('create') }}``).
    :param recipients: numbers or template rows: a list, any iterable, an upstream XCom,
        or a path to a CSV/XLSX file read here and uploaded in portions of ≤ 500.
    :param recipients_file: a CSV/XLS path uploaded as Mobizon's ``recipientsFile``
        (one upload, a background task; no per-recipient message ids).
    :param contacts: contact card ids (``123`` or ``123:mobile``).
    :param groups: contact group ids (a background task).
    :param replace: remove recipients added before.
    :param placeholders_flag: missing placeholder values: 1 keep, 2 remove, 3 reject.
    :param file_encoding: ``recipients_file`` encoding (default UTF-8).
    :param file_skip_header: skip the first line of ``recipients_file``.
    :param file_delimiter: column delimiter of ``recipients_file`` (default ``,``).
    :param file_enclosure: text enclosure of ``recipients_file`` (default ``'``).
    :param number_field: column/key holding the number in template rows (``recipient``).
    :param on_invalid: ``fail`` (default) at the first invalid number, or ``skip`` and report.
    :param reject_report_path: where to write every rejected row as CSV (local or object storage).
    :param wait_for_task: wait for the background task of a file or groups upload (default True).
    :param task_timeout: seconds to wait for it.
    :param max_reported: how many rejected examples and message ids go to XCom.
    :param file_upload_threshold: with ``recipients``, an audience of more rows than this is
        uploaded as CSV file(s) (``recipientsFile``, one background task each) instead of
        portions of 500: far fewer requests, but no per-recipient message ids or rejection
        reasons (counts come from the campaign's counters). ``None`` (default): never.
    :param max_file_bytes: split such uploads into files of at most this size
        (default ``MAX_UPLOAD_BYTES``, 8 MiB: Mobizon documents no limit).
    :param expected_count: the audience size, for progress lines (done / total, ETA) when
        ``recipients`` has no ``len()`` (a generator, a file).
    :param mobizon_conn_id: the ``mobizon`` connection.
    """

    template_fields: Sequence[str] = (
        "campaign_id", "recipients", "recipients_file", "contacts", "groups", "replace",
        "placeholders_flag", "reject_report_path", "file_upload_threshold", "expected_count", "mobizon_conn_id",
    )
    operator_extra_links = (MobizonCampaignLink(),)

    def __init__(
        self,
        *,
        campaign_id: int | str,
        recipients: Any = None,
        recipients_file: str | None = None,
        contacts: Sequence[str | int] | None = None,
        groups: Sequence[str | int] | None = None,
        replace: bool = False,
        placeholders_flag: int | None = None,
        file_encoding: str | None = None,
        file_skip_header: bool | None = None,
        file_delimiter: str | None = None,
        file_enclosure: str | None = None,
        number_field: str = "recipient",
        on_invalid: str = "fail",
        reject_report_path: str | None = None,
        wait_for_task: bool = True,
        task_timeout: float = 3600,
        max_reported: int = 20,
        file_upload_threshold: int | None = None,
        max_file_bytes: int = proto.MAX_UPLOAD_BYTES,
        expected_count: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.file_upload_threshold, self.max_file_bytes = file_upload_threshold, max_file_bytes
        self.expected_count = expected_count
        self.campaign_id, self.recipients, self.recipients_file = campaign_id, recipients, recipients_file
        self.contacts, self.groups, self.replace = contacts, groups, replace
        self.placeholders_flag = placeholders_flag
        self.file_encoding, self.file_skip_header = file_encoding, file_skip_header
        self.file_delimiter, self.file_enclosure = file_delimiter, file_enclosure
        self.number_field, self.on_invalid, self.reject_report_path = number_field, on_invalid, reject_report_path
        self.wait_for_task, self.task_timeout, self.max_reported = wait_for_task, task_timeout, max_reported

    def _source(self) -> str:
        given = [name for name in ("recipients", "recipients_file", "contacts", "groups")
                 if getattr(self, name) not in (None, "", [])]
        if len(given) != 1:
            raise SmsValidationError(
                f"give exactly one of recipients, recipients_file, contacts, groups (got {given or 'none'}); "
                "Mobizon takes one recipient type per call",
                field="recipients",
                value=given,
            )
        return given[0]

    def execute(self, context: Any) -> dict[str, Any]:
        campaign_id = as_int(self.campaign_id, "campaign_id")
        source = self._source()
        self._check_recipient_options()
        persist_campaign_link(context, self.mobizon_conn_id, campaign_id, self.log)
        hook = self.hook()
        summary: dict[str, Any] = {"campaign_id": campaign_id, "source": source}
        try:
            if source == "recipients":
                if self.replace:
                    raise SmsValidationError(
                        "replace=True with streamed recipients would drop earlier portions; "
                        "delete and recreate the campaign instead",
                        field="replace",
                        value=True,
                    )
                campaign = hook.get_campaign(campaign_id)
                ckpt = Checkpoint(context, f"mobizon_add_recipients_{campaign_id}")
                # Only a resume reads the audience ahead: to skip the first N rows only if they are
                # the numbers an earlier try uploaded (else Mobizon's list of the campaign decides).
                done = int(ckpt.get("uploaded", 0))
                content = self._read_content(campaign.get("text"), done) if done else None
                summary.update(self._upload(hook, campaign_id, campaign.get("text"), ckpt, self.log,
                                            template=campaign.get("type") == 3,
                                            prefix=content[1] if content is not None else None, owned=False))
                return summary
            if source == "contacts":
                # "split the list into portions of 500 or fewer and upload each portion with a
                # separate API call": only the first portion may replace what is there.
                result = AddResult()
                contacts = list(self.contacts or ())
                for index in range(0, len(contacts), proto.MAX_RECIPIENTS_PER_CALL):
                    portion = contacts[index : index + proto.MAX_RECIPIENTS_PER_CALL]
                    answer = hook.add_recipients(
                        campaign_id, contacts=portion,
                        replace=self.replace if index == 0 else None, placeholders_flag=self.placeholders_flag,
                    )
                    # One result per contact (a card gives one number: its mailing field or the one named).
                    items = added_results(answer.data, campaign_id, len(portion),
                                          f"{len(portion)} contact(s) (from contact {index + 1})",
                                          "; none after them was sent (a retry adds them again: those already in "
                                          "the campaign come back as duplicates)")  # fmt: skip
                    result.count_objects(items, self.max_reported, self.max_reported)
                summary.update(result.summary())
                return summary
            answer = hook.add_recipients(
                campaign_id,
                groups=list(self.groups or ()) if source == "groups" else None,
                file=self.recipients_file if source == "recipients_file" else None,
                replace=self.replace, placeholders_flag=self.placeholders_flag,
                file_encoding=self.file_encoding, file_skip_header=self.file_skip_header,
                file_delimiter=self.file_delimiter, file_enclosure=self.file_enclosure,
            )
            summary["background_task_id"] = answer.task_id
            if self.wait_for_task and answer.task_id is not None:
                summary["task"] = wait_for_task(hook, answer.task_id, self.task_timeout, self.log)
            return summary
        finally:
            hook.close()


class MobizonSendCampaignOperator(_MobizonOperator):
    """Send a filled campaign (campaign/send), at most once.

    Before sending it reads the campaign: one that has left status NEW was already
    sent (by an earlier try of this task, say) and is not sent again.

    :param campaign_id: the campaign (templated).
    :param mobizon_conn_id: the ``mobizon`` connection.

    Returns ``{"campaign_id", "send_status": 1 moderation | 2 sent | None if already sent, "status"}``.
    """

    template_fields: Sequence[str] = ("campaign_id", "mobizon_conn_id")
    operator_extra_links = (MobizonCampaignLink(),)

    def __init__(self, *, campaign_id: int | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.campaign_id = campaign_id

    def execute(self, context: Any) -> dict[str, Any]:
        campaign_id = as_int(self.campaign_id, "campaign_id")
        persist_campaign_link(context, self.mobizon_conn_id, campaign_id, self.log)
        hook = self.hook()
        try:
            return send_once(hook, campaign_id, Checkpoint(context, f"mobizon_send_{campaign_id}"), self.log)
        finally:
            hook.close()


# ------------------------------------------------------------------ one step


class MobizonCampaignOperator(MobizonCreateCampaignOperator):
    """Create a campaign, upload its recipients, send it and (optionally) wait for DONE.

    :param text: message text; for ``campaign_type=3`` with ``{placeholders}``.
    :param name: campaign name (≤ 255 characters; a tag naming the task instance is appended
        so a retry can find the campaign again).
    :param campaign_type: 1 single message, 2 bulk (default), 3 template.
    :param sender: sender ID; the connection's ``default_sender`` when omitted.
    :param rate_limit: messages per ``rate_period``.
    :param rate_period: 60, 3600 or 86400 seconds.
    :param deferred_to: send time (datetime or template string), 1 hour to 14 days ahead.
    :param mclass: 0 flash SMS, 1 normal.
    :param validity: delivery wait in minutes, 60 to 1440.
    :param shorten_links: shorten links in the text.
    :param track_short_link_recipients: track which recipients clicked short links.
    :param mobizon_conn_id: the ``mobizon`` connection.
    :param recipients: numbers or template rows (list, iterable, XCom, or CSV/XLSX path),
        uploaded in portions of ≤ 500 as they are read.
    :param number_field: column/key holding the number in template rows (``recipient``).
    :param placeholders_flag: missing placeholder values: 1 keep, 2 remove, 3 reject.
    :param on_invalid: ``fail`` (default) or ``skip`` invalid numbers with a report.
    :param reject_report_path: CSV of every rejected row (local or object storage path).
    :param wait_for_completion: wait until the campaign reaches ``target_statuses``.
    :param target_statuses: default ``["DONE"]``.
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param poll_interval: seconds between status checks while waiting.
    :param max_reported: how many rejected examples and message ids go to XCom.
    :param file_upload_threshold: above this many rows, upload CSV file(s) (``recipientsFile``)
        instead of portions: fewer requests, no per-recipient message ids (``None``: never).
    :param max_file_bytes: split such uploads into files of at most this size.
    :param task_timeout: seconds to wait for each file's background task.
    :param expected_count: the audience size for progress lines when it has no ``len()``.
    :param on_window_passed: a retry finds the campaign created and filled but not sent, and its
        ``deferred_to`` has passed meanwhile: ``fail`` (default; no retry, naming the campaign and
        how many recipients it holds) or ``send_now`` (Mobizon then starts it at once). Templated.
        ``deferred_to`` is checked (1 hour to 14 days ahead) only before the campaign is created.

    A retry resumes: the campaign id, the number of uploaded recipients and the
    send are recorded in the task's durable state as they happen, so a retried
    task never creates a second campaign, uploads only what is missing (Mobizon
    skips numbers already present) and never sends twice.

    Returns a summary: campaign_id, added/rejected/duplicates counts, a few
    rejection examples and message ids, send status and final status.
    """

    template_fields: Sequence[str] = (
        *MobizonCreateCampaignOperator.template_fields, "recipients", "placeholders_flag", "reject_report_path",
        "file_upload_threshold", "expected_count", "on_window_passed",
    )

    def __init__(
        self,
        *,
        recipients: Any,
        number_field: str = "recipient",
        placeholders_flag: int | None = None,
        on_invalid: str = "fail",
        reject_report_path: str | None = None,
        wait_for_completion: bool = True,
        target_statuses: Sequence[str] = (proto.CAMPAIGN_DONE,),
        deferrable: bool | None = None,
        poll_interval: float = 30.0,
        max_reported: int = 20,
        file_upload_threshold: int | None = None,
        max_file_bytes: int = proto.MAX_UPLOAD_BYTES,
        task_timeout: float = 3600,
        expected_count: int | None = None,
        on_window_passed: str = "fail",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.on_window_passed = on_window_passed
        self.file_upload_threshold, self.max_file_bytes = file_upload_threshold, max_file_bytes
        self.task_timeout, self.expected_count = task_timeout, expected_count
        self.recipients, self.number_field, self.placeholders_flag = recipients, number_field, placeholders_flag
        self.on_invalid, self.reject_report_path = on_invalid, reject_report_path
        self.wait_for_completion, self.target_statuses = wait_for_completion, list(target_statuses)
        self.deferrable = (
            conf.getboolean("operators", "default_deferrable", fallback=False) if deferrable is None else deferrable
        )
        self.poll_interval, self.max_reported = poll_interval, max_reported

    # It inherits the create operator's fields and checks, not its result: a summary, not an id.
    def execute(self, context: Any) -> dict[str, Any]:  # type: ignore[override]
        summary = MobizonCampaignWork(params_of(MobizonCampaignParams, self), self.runtime(context)).run()
        campaign_id = summary["campaign_id"]
        if not self.wait_for_completion:
            return summary
        if self.deferrable:
            # Imported here: DAG files import this module on every parse, and only a deferring
            # task needs Airflow's trigger machinery (a third of this module's import time).
            from airflow_sms_provider.triggers.mobizon import MobizonCampaignTrigger

            self.defer(
                trigger=MobizonCampaignTrigger(
                    self.mobizon_conn_id, campaign_id, self.poll_interval, target_statuses=self.target_statuses
                ),
                method_name="execute_complete",
                kwargs={"summary": summary},
            )
        return self._wait_in_process(campaign_id, summary)

    def _wait_in_process(self, campaign_id: int, summary: dict[str, Any]) -> dict[str, Any]:
        hook = self.hook()

        def poll() -> Outcome:
            data = read_named(hook, campaign_id)  # one deleted while we waited is named, not retried
            return (*proto.campaign_outcome(data, self.target_statuses, (proto.CAMPAIGN_DECLINED,)), data)

        try:
            outcome, message, data = poll_until(
                poll, lambda outcome: outcome in (proto.FAILED, proto.SUCCEEDED), self.poll_interval, self.log)
        finally:
            hook.close()
        if outcome == proto.FAILED:
            raise SmsCampaignFailedError(message, provider=proto.PROVIDER, details=data)
        return self._final(summary, data)

    def _final(self, summary: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        summary["status"] = data.get("commonStatus")
        return summary

    def execute_complete(self, context: Any, event: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: fail with the provider's reason, or return the summary.

        A fatal error event (a revoked key, the campaign deleted at the provider) fails the
        task without retry: a retry without durable state would create and send a new campaign.
        """
        waiting = f"waiting for campaign {summary.get('campaign_id')}"
        raise_for_error(event, waiting, proto.PROVIDER)
        if event.get("status") == proto.FAILED:
            raise SmsCampaignFailedError(event.get("message", ""), provider=proto.PROVIDER)
        if event.get("status") != proto.SUCCEEDED:
            raise SmsProviderError(f"mobizon: {waiting} failed: {event.get('message')}", provider=proto.PROVIDER)
        self.log.info(event.get("message"))
        return self._final(summary, event.get("data") or {})


# ------------------------------------------------------------------ single SMS, delete, reports


class MobizonSendSmsOperator(_MobizonOperator):
    """Send one SMS (message/sendSmsMessage).

    :param recipient: the number in international format (``+`` and spaces are stripped).
    :param text: the message.
    :param sender: sender ID; the connection's ``default_sender`` when omitted.
    :param name: campaign name for the report.
    :param deferred_to: send time, 1 hour to 14 days ahead.
    :param validity: delivery wait in minutes, 60 to 1440.
    :param shorten_links: shorten links in the text.
    :param mclass: 0 flash SMS (shown, not saved), 1 normal (the provider's default).
    :param mobizon_conn_id: the ``mobizon`` connection.

    A retry after the message was accepted does not send it again: the result is
    kept in the task's durable state. The campaign name gets a tag naming the task
    instance (``[af-…]``), so an SMS whose answer was lost is found again with
    message/list (recipient, text, creation time, then the tagged name) instead of
    being sent twice: right after the lost answer, and on a retry whose earlier try
    had started sending (or, without durable state, on every try).
    """

    template_fields: Sequence[str] = ("recipient", "text", "sender", "name", "deferred_to", "mobizon_conn_id")

    def __init__(
        self,
        *,
        recipient: str,
        text: str,
        sender: str | None = None,
        name: str | None = None,
        deferred_to: dt.datetime | str | None = None,
        validity: int | None = None,
        shorten_links: bool | None = None,
        mclass: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.recipient, self.text, self.sender, self.name = recipient, text, sender, name
        self.deferred_to, self.validity, self.shorten_links = deferred_to, validity, shorten_links
        self.mclass = mclass

    def execute(self, context: Any) -> dict[str, Any]:
        return MobizonSmsWork(params_of(MobizonSmsParams, self), self.runtime(context)).run()

class MobizonDeleteCampaignOperator(_MobizonOperator):
    """Delete a campaign that has not started sending (campaign/delete).

    :param campaign_id: the campaign (templated).
    :param missing_ok: succeed when the campaign is already gone (default True, so a retry succeeds).
    :param mobizon_conn_id: the ``mobizon`` connection.
    """

    template_fields: Sequence[str] = ("campaign_id", "mobizon_conn_id")

    def __init__(self, *, campaign_id: int | str, missing_ok: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.campaign_id, self.missing_ok = campaign_id, missing_ok

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_sms_provider.exceptions import SmsNotFoundError

        campaign_id = as_int(self.campaign_id, "campaign_id")
        hook = self.hook()
        try:
            hook.delete_campaign(campaign_id)
        except SmsNotFoundError:
            if not self.missing_ok:
                raise
            self.log.info("Campaign %s does not exist (already deleted)", campaign_id)
            return {"campaign_id": campaign_id, "deleted": False}
        finally:
            hook.close()
        return {"campaign_id": campaign_id, "deleted": True}


class MobizonCampaignStatsOperator(_MobizonOperator):
    """Fetch a campaign's statistics (campaign/getInfo) and short links (campaign/getLinks).

    :param campaign_id: the campaign (templated).
    :param include_links: also fetch short-link click counts.
    :param mobizon_conn_id: the ``mobizon`` connection.

    Returns ``{"campaign_id", "status", "counters", "links", "delivered", "total"}``:
    small enough for XCom, ready to load into a table.
    """

    template_fields: Sequence[str] = ("campaign_id", "mobizon_conn_id")
    operator_extra_links = (MobizonCampaignLink(),)

    def __init__(self, *, campaign_id: int | str, include_links: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.campaign_id, self.include_links = campaign_id, include_links

    def execute(self, context: Any) -> dict[str, Any]:
        campaign_id = as_int(self.campaign_id, "campaign_id")
        persist_campaign_link(context, self.mobizon_conn_id, campaign_id, self.log)
        hook = self.hook()
        try:
            info = hook.get_campaign_info(campaign_id)
            links = hook.get_campaign_links(campaign_id) if self.include_links else []
        finally:
            hook.close()
        counters = info.get("counters") or {}
        self.log.info(
            "Campaign %s: %s; %s of %s messages delivered, %s undelivered, %s expired; cost %s; %d link(s)",
            campaign_id, info.get("commonStatus"), counters.get("totalDelivrdMsgNum", 0),
            counters.get("totalMsgNum", 0), counters.get("totalUndelivMsgNum", 0),
            counters.get("totalExpiredMsgNum", 0), counters.get("totalCost", 0), len(links),
        )
        return {
            "campaign_id": campaign_id,
            "status": info.get("commonStatus"),
            "counters": counters,
            "delivered": counters.get("totalDelivrdMsgNum", 0),
            "total": counters.get("totalMsgNum", 0),
            "links": links,
        }


class MobizonMessageStatusOperator(_MobizonOperator):
    """Fetch delivery statuses: of given message ids (getSMSStatus, 100 per call) or of a whole campaign (message/list).

    :param message_ids: message ids (templated; e.g. from the add-recipients summary).
    :param campaign_id: instead of ids, every message of this campaign.
    :param max_reported: how many per-message rows go to XCom (counts cover all).
    :param concurrency: API calls in flight at once (default 1, one after another); a
        rate-limit answer pauses them all.

    Returns ``{"counts": {status: n}, "final": n, "total": n, "messages": [...]}``.
    :param mobizon_conn_id: the ``mobizon`` connection.
    """

    template_fields: Sequence[str] = ("message_ids", "campaign_id", "mobizon_conn_id")

    def __init__(
        self,
        *,
        message_ids: Sequence[int | str] | None = None,
        campaign_id: int | str | None = None,
        max_reported: int = 100,
        concurrency: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.message_ids, self.campaign_id, self.max_reported = message_ids, campaign_id, max_reported
        self.concurrency = concurrency

    def execute(self, context: Any) -> dict[str, Any]:
        if (self.message_ids is None) == (self.campaign_id is None):
            raise SmsValidationError("give either message_ids or campaign_id", field="message_ids",
                                     value=self.message_ids)
        hook = self.hook()
        try:
            if self.campaign_id is not None:
                rows: Iterable[dict[str, Any]] = hook.iter_messages(
                    {"campaignIds": [as_int(self.campaign_id, "campaign_id")]}, concurrency=self.concurrency
                )
            else:
                rows = hook.iter_sms_status(
                    (as_int(i, "message_ids") for i in (self.message_ids or [])), concurrency=self.concurrency
                )
            counts: dict[Any, int] = {}
            messages: list[dict[str, Any]] = []
            for row in rows:
                counts[row.get("status")] = counts.get(row.get("status"), 0) + 1
                if len(messages) < self.max_reported:
                    messages.append({k: row.get(k) for k in ("id", "to", "status", "segNum", "statusUpdateTs")
                                     if k in row})
        finally:
            hook.close()
        final = sum(n for status, n in counts.items() if status in proto.SMS_FINAL_STATUSES)
        return {"counts": counts, "final": final, "total": sum(counts.values()), "messages": messages}
