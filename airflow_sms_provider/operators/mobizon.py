"""Operators for Mobizon campaigns: create, fill, send, and the one-step campaign.

Every operator validates its (rendered) input before the first request that
creates or sends anything, and returns a small summary for XCom: ids, counts and
at most a few examples, never the audience.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_sms_provider.campaigns.events import not_found, raise_for_error
from airflow_sms_provider.campaigns.lease import fence
from airflow_sms_provider.campaigns.ledger import Ledger, SequenceDigest
from airflow_sms_provider.campaigns.mobizon_upload import (  # noqa: F401 - PLACEHOLDERS_FLAGS: kept importable here
    PLACEHOLDERS_FLAGS,
    RecipientsMixin,
    wait_for_task,
)
from airflow_sms_provider.campaigns.reconcile import check_mobizon_audience, mobizon_numbers, verify_mobizon_campaign
from airflow_sms_provider.campaigns.watch import Outcome, poll_until
from airflow_sms_provider.exceptions import (
    SmsAmbiguousError,
    SmsCampaignFailedError,
    SmsFatalError,
    SmsNotFoundError,
    SmsProtocolError,
    SmsProviderError,
    SmsValidationError,
)
from airflow_sms_provider.hooks.mobizon import AddResult, MobizonHook
from airflow_sms_provider.links import MobizonCampaignLink, persist_campaign_link
from airflow_sms_provider.progress import Checkpoint
from airflow_sms_provider.protocols import mobizon as proto
from airflow_sms_provider.recipients import RejectReport, normalize_phone, placeholders, sms_parts
from airflow_sms_provider.recovery import run_tag, tagged_name
from airflow_sms_provider.templating import DataFieldsMixin
from airflow_sms_provider.validation import (
    as_int,
    check_choice,
    check_range,
    check_text,
    check_window,
    check_window_once,
    check_window_policy,
    parse_when,
    window_passed,
)

MAX_NAME_LENGTH = 255
# A created campaign's deferred time cannot be changed (the API has no campaign update): no keep_offset.
MOBIZON_WINDOW_POLICIES = ("fail", "send_now")
# How far before a single SMS was first sent its lookup reaches back: Mobizon does not say in
# which time zone it filters campaignCreateTsFrom, and the tagged name, not the time, identifies it.
SMS_LOOKUP_SLACK = dt.timedelta(days=1)


class _MobizonOperator(DataFieldsMixin, BaseOperator):
    """Holds the connection id and the hook; subclasses do one step."""

    def __init__(self, *, mobizon_conn_id: str = MobizonHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mobizon_conn_id = mobizon_conn_id

    def hook(self) -> MobizonHook:
        return MobizonHook(self.mobizon_conn_id)


# ------------------------------------------------------------------ campaign settings


def check_mobizon_text(text: Any) -> str:
    """A non-empty text of at most ``MAX_TEXT_PARTS`` SMS parts (placeholders counted as written)."""
    text = check_text(text)
    encoding, chars, parts = sms_parts(text)
    if parts > proto.MAX_TEXT_PARTS:
        raise SmsValidationError(
            f"text is {chars} {encoding} characters, {parts} SMS parts; at most {proto.MAX_TEXT_PARTS} parts "
            "are sent (1530 GSM-7 or 670 UCS-2 characters)",
            field="text", value=text[:40] + "…",
        )
    return text


def check_sender(sender: Any) -> None:
    """Sender IDs: up to 11 Latin letters, digits, spaces, '.', '-', '_', or up to 15 digits."""
    if sender is None or sender == "":
        return
    if not isinstance(sender, str) or not re.fullmatch(proto.SENDER_PATTERN, sender):
        raise SmsValidationError(
            f"sender={sender!r} is not a valid sender ID (up to 11 Latin letters, digits, spaces, '.', '-', '_', "
            "or up to 15 digits)",
            field="sender", value=sender,
        )


class CampaignSpec:
    """The fields of campaign/create, checked against the reference's limits."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    def validate(self, now: dt.datetime | None = None, *, check_deferred: bool = True) -> dict[str, Any]:
        """The checked fields; ``check_deferred=False`` when resuming a campaign an earlier try created
        (its deferred time was checked then: a later clock does not judge it again)."""
        f = dict(self.fields)
        text = check_mobizon_text(f["text"])
        check_sender(f.get("sender"))
        ctype = as_int(f.get("campaign_type") or 2, "campaign_type")
        check_choice(ctype, proto.CAMPAIGN_TYPES, "campaign_type")
        if ctype == 3 and not placeholders(text):
            raise SmsValidationError(
                "campaign_type=3 (template) needs {placeholders} in text, found none", field="text", value=text
            )
        name = f.get("name")
        if name is not None and len(str(name)) > MAX_NAME_LENGTH:
            raise SmsValidationError(
                f"name is {len(str(name))} characters; Mobizon allows {MAX_NAME_LENGTH}", field="name", value=name
            )
        check_choice(f.get("rate_period"), proto.RATE_PERIODS, "rate_period")
        if (f.get("rate_limit") is None) != (f.get("rate_period") is None):
            raise SmsValidationError(
                "rate_limit and rate_period go together: set both or neither",
                field="rate_limit",
                value=f.get("rate_limit"),
            )
        check_range(f.get("rate_limit"), 1, 10**9, "rate_limit")
        check_range(f.get("validity"), *proto.VALIDITY_MINUTES, "validity")
        check_choice(f.get("mclass"), (0, 1), "mclass")
        deferred = parse_when(f.get("deferred_to"), "deferred_to")
        if deferred is not None and check_deferred:
            check_window(
                deferred,
                "deferred_to",
                min_ahead=dt.timedelta(seconds=proto.DEFERRED_MIN_SECONDS),
                max_ahead=dt.timedelta(seconds=proto.DEFERRED_MAX_SECONDS),
                now=now,
            )
        f.update(text=text, campaign_type=ctype, deferred_to=deferred)
        return f


_CAMPAIGN_FIELDS = (
    "text",
    "name",
    "campaign_type",
    "sender",
    "rate_limit",
    "rate_period",
    "deferred_to",
    "mclass",
    "validity",
    "shorten_links",
    "track_short_link_recipients",
)


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
        started = ckpt is not None and _campaign_started(ckpt)
        fields = CampaignSpec(**{name: getattr(self, name) for name in _CAMPAIGN_FIELDS}).validate(
            check_deferred=not started
        )
        if ckpt is not None and fields.get("deferred_to") is not None and not started:
            check_window_once(ckpt, fields["deferred_to"], "deferred_to", started=False,
                              min_ahead=dt.timedelta(0), max_ahead=dt.timedelta(seconds=proto.DEFERRED_MAX_SECONDS))
        return fields

    def execute(self, context: Any) -> int:
        ckpt = Checkpoint(context, "mobizon_create")
        fields = self.campaign_fields(ckpt)
        tag = run_tag(context)
        if tag is not None:
            fields["name"] = tagged_name(fields.get("name"), tag, MAX_NAME_LENGTH)
        hook = self.hook()
        try:
            campaign_id, _ = self._create_once(hook, fields, ckpt, tag)
        finally:
            hook.close()
        persist_campaign_link(context, self.mobizon_conn_id, campaign_id, self.log)
        return campaign_id

    def _create_once(self, hook: MobizonHook, fields: dict[str, Any], ckpt: Checkpoint, tag: str | None
                     ) -> tuple[int, bool]:
        """This task instance's campaign and whether an earlier try made it: recorded, found, or created now."""
        campaign_id = ckpt.get("campaign_id")
        if campaign_id is None and tag is not None and (not ckpt.durable or ckpt.get("create_started")):
            # No durable state (Airflow < 3.3), or an earlier try's create went unanswered and
            # could not be looked up then: the campaign may exist already.
            campaign_id = find_tagged_campaign(hook, fields["text"], fields["name"])
            if campaign_id is not None:
                ckpt.save(campaign_id=campaign_id)
        if campaign_id is not None:
            # Adopted only if it is what this task would create now (text, sender, type).
            verify_mobizon_campaign(read_named(hook, int(campaign_id)), fields, hook.settings.default_sender)
            self.log.info("Using Mobizon campaign %s, created by an earlier try", campaign_id)
            return int(campaign_id), True
        ckpt.save(create_started=True)  # before the call: a retry looks the campaign up first
        campaign_id = self._create(hook, fields)
        ckpt.save(campaign_id=campaign_id)
        self.log.info("Created Mobizon campaign %s", campaign_id)
        return campaign_id, False

    def _create(self, hook: MobizonHook, fields: dict[str, Any]) -> int:
        """campaign/create; after an ambiguous failure, look for the tagged campaign instead of repeating."""
        try:
            return hook.create_campaign(**fields)
        except (SmsAmbiguousError, SmsProtocolError):  # no answer, or one that cannot be read: it may exist
            found = find_tagged_campaign(hook, fields["text"], fields["name"]) if "[af-" in fields["name"] else None
            if found is None:
                raise
            verify_mobizon_campaign(hook.get_campaign(found), fields, hook.settings.default_sender)
            self.log.warning("campaign/create went unanswered, but campaign %s exists: using it", found)
            return found


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
                    answer = hook.add_recipients(
                        campaign_id, contacts=contacts[index : index + proto.MAX_RECIPIENTS_PER_CALL],
                        replace=self.replace if index == 0 else None, placeholders_flag=self.placeholders_flag,
                    )
                    result.record(answer.data or [], self.max_reported, self.max_reported)
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


def _mobizon_sent(ckpt: Checkpoint) -> str | None:
    """What an earlier try of the one-step operator put into Mobizon, for an error message; None if nothing."""
    campaign_id, uploaded = ckpt.get("campaign_id"), int(ckpt.get("uploaded", 0))
    if campaign_id is None or not (uploaded or ckpt.get("uploaded_all") or ckpt.get("send_started")):
        return None
    what = f"{uploaded:,} recipients were uploaded to Mobizon campaign {campaign_id}"
    if ckpt.get("uploaded_all"):
        what = f"Mobizon campaign {campaign_id} holds that whole audience"
    if ckpt.get("sent") or ckpt.get("send_started"):
        return what + (" and it was sent" if ckpt.get("sent") else " and it may have been sent")
    return what + " (not sent yet)"


def _same_prefix(ckpt: Checkpoint, prefix: SequenceDigest) -> bool:
    """Durable state proves the campaign holds only this audience's numbers, so no readback is needed.

    An earlier try recorded N uploaded numbers, this read's first N are the same sequence, and
    the audience's digest is the one recorded (the ledger stops a changed audience once
    anything was recorded as uploaded): whatever went up unrecorded after those N came from
    this same audience. Anything less (nothing recorded, another order, no durable state) reads
    the campaign back.
    """
    done = int(ckpt.get("uploaded", 0))
    return ckpt.durable and done > 0 and prefix.count == done and prefix.matches(ckpt.get("uploaded_sequence"))


def _campaign_started(ckpt: Checkpoint) -> bool:
    """Durable state says an earlier try created (or started creating) this task's campaign."""
    return ckpt.get("campaign_id") is not None or bool(ckpt.get("create_started"))


def find_tagged_campaign(hook: MobizonHook, text: str, name: str, scan: int = 500) -> int | None:
    """The newest campaign with this exact text and tagged name, if any (sent or not).

    campaign/list has no name criterion, so it filters by text and compares names here,
    newest first, looking at no more than ``scan`` campaigns.
    """
    for item in itertools.islice(hook.iter_campaigns({"text": text}, sort={"id": "DESC"}), scan):
        if item.get("name") == name:
            return int(item["id"])
    return None


def read_named(hook: MobizonHook, campaign_id: int) -> dict[str, Any]:
    """campaign/get; a campaign that is gone (deleted, or another account's) is named with its host."""
    try:
        return hook.get_campaign(campaign_id)
    except SmsNotFoundError as err:
        raise not_found("campaign", campaign_id, hook.settings.http.base_url, err) from err


def skip_upload_if_sent(
    hook: MobizonHook, campaign_id: int, ckpt: Checkpoint, log: Any, audience: Iterable[int | str] | None = None
) -> None:
    """Mark the upload done when a campaign found again has already left NEW.

    Only a fully uploaded campaign is sent, and Mobizon refuses recipients once it is sent
    (code 10, again on every retry): uploading again would fail the task for good.
    ``audience`` (this try's numbers, read only here): a sent campaign that does not hold
    exactly them stops the task, naming it; without durable state nothing else tells a
    changed audience from the one the campaign was sent to.
    """
    status = read_named(hook, campaign_id).get("commonStatus")
    if status not in (None, "NEW") and audience is not None:
        wanted = {int(number) for number in audience}
        held = mobizon_numbers(hook, campaign_id)
        if held != wanted:
            missing, extra = len(wanted - held), len(held - wanted)
            raise SmsFatalError(
                f"Mobizon campaign {campaign_id} was already sent ({status}) by an earlier try to {len(held):,} "
                f"numbers, but this try's audience has {missing:,} number(s) it does not hold (not uploaded, or "
                f"refused by Mobizon) and lacks {extra:,} it holds: the audience changed between tries. Not "
                "sending anything more (a new campaign could message some numbers twice); check the campaign, "
                "then send the rest as a new task",
                provider=proto.PROVIDER,
            )
    if status not in (None, "NEW"):
        log.info("Campaign %s is %s: sent by an earlier try with its whole audience; not uploading", campaign_id,
                 status)
        ckpt.save(uploaded_all=True, upload_summary={"upload": "done by an earlier try"})


def send_once(hook: MobizonHook, campaign_id: int, ckpt: Checkpoint, log: Any) -> dict[str, Any]:
    """campaign/send unless this campaign was already sent (checkpoint or status says so)."""
    status = read_named(hook, campaign_id).get("commonStatus")
    if ckpt.get("sent") or status not in (None, "NEW"):
        log.info("Campaign %s is %s: already sent, not sending again", campaign_id, status)
        return {"campaign_id": campaign_id, "send_status": ckpt.get("send_status"), "status": status}
    # Recorded before the call: if the worker dies while it is in flight, the retry
    # reads the campaign's status instead of sending blindly.
    ckpt.save(send_started=True)
    send_status = hook.send_campaign(campaign_id)
    ckpt.save(sent=True, send_status=send_status)
    log.info("Sent campaign %s (%s)", campaign_id, "moderation" if send_status == 1 else "sending")
    status = hook.get_campaign(campaign_id).get("commonStatus")
    return {"campaign_id": campaign_id, "send_status": send_status, "status": status}


# ------------------------------------------------------------------ one step


class MobizonCampaignOperator(RecipientsMixin, MobizonCreateCampaignOperator):
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
        ckpt = Checkpoint(context, "mobizon_campaign")
        fields = self.campaign_fields(ckpt)  # deferred_to: checked before the create, not on resuming
        policy = check_window_policy(self.on_window_passed, MOBIZON_WINDOW_POLICIES)
        self._check_recipient_options()
        if self.recipients is None or self.recipients == []:
            raise SmsValidationError("recipients is empty: the campaign has no audience", field="recipients",
                                     value=self.recipients)
        # The pre-pass checks every row and digests the audience: a retry whose audience holds
        # other numbers than the one an earlier try uploaded stops here, naming that campaign.
        content = self._read_content(fields["text"], int(ckpt.get("uploaded", 0)))
        if content is not None:
            Ledger(ckpt).check_audience(content[0], sent=_mobizon_sent(ckpt), provider=proto.PROVIDER)
        tag = run_tag(context)
        if tag is not None:
            fields["name"] = tagged_name(fields.get("name"), tag, MAX_NAME_LENGTH)
        hook = self.hook()
        # Fence overlapping tries: wait for another live try before creating or sending anything.
        try:
            lease, waited = fence(context, "mobizon_campaign", hook, self.log, provider=proto.PROVIDER)
        except Exception:
            hook.close()
            raise
        if waited:
            ckpt = Checkpoint(context, "mobizon_campaign")  # what the other try recorded meanwhile
        self._lease = lease
        try:
            lease.renew()
            campaign_id, earlier = self._create_once(hook, fields, ckpt, tag)
            held: set[int] | None = None
            if earlier and not ckpt.get("uploaded_all"):
                skip_upload_if_sent(hook, campaign_id, ckpt, self.log, audience=self._numbers(fields["text"]))
                if not ckpt.get("uploaded_all") and content is not None and not _same_prefix(ckpt, content[1]):
                    # The campaign exists and an earlier try may have filled it (even unrecorded:
                    # a lost answer, a kill before the checkpoint). Read it back before uploading.
                    held = check_mobizon_audience(hook, campaign_id, self._numbers(fields["text"]),
                                                  read_named(hook, campaign_id).get("commonStatus"))
            summary: dict[str, Any] = {"campaign_id": campaign_id}
            persist_campaign_link(context, self.mobizon_conn_id, campaign_id, self.log)
            if not ckpt.get("uploaded_all"):
                lease.renew()
                summary.update(self._upload(hook, campaign_id, fields["text"], ckpt, self.log,
                                            template=fields["campaign_type"] == 3,
                                            prefix=content[1] if content is not None else None,
                                            # A one-shot iterator cannot be read twice: it is
                                            # reconciled while uploading, still before sending.
                                            reconcile=earlier and content is None, held=held))
                ckpt.save(uploaded_all=True, upload_summary=summary)
            else:
                summary.update(ckpt.get("upload_summary") or {})
            if not ckpt.get("sent"):
                self._window_policy(hook, campaign_id, fields.get("deferred_to"), policy, summary)
            lease.renew()
            summary.update(send_once(hook, campaign_id, ckpt, self.log))
        finally:
            lease.release()
            self._lease = None
            hook.close()
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

    def _numbers(self, text: str) -> Iterator[str]:
        """The audience's valid numbers, read again (not for a one-shot iterator)."""
        return (item if isinstance(item, str) else item["recipient"]
                for item in self._stream(RejectReport(cap=0), text))  # fmt: skip

    def _window_policy(
        self, hook: MobizonHook, campaign_id: int, deferred: dt.datetime | None, policy: str, summary: dict[str, Any]
    ) -> None:
        """Before sending a filled campaign whose deferred time has passed meanwhile: ``on_window_passed``."""
        if not window_passed(deferred):
            return
        assert deferred is not None
        if hook.get_campaign(campaign_id).get("commonStatus") not in (None, "NEW"):
            return  # sent already: send_once says so and does nothing
        if policy == "send_now":
            self.log.warning("Campaign %s was to be sent at %s, which has passed: on_window_passed='send_now', "
                             "sending it now", campaign_id, deferred.isoformat())
            return
        holds = summary.get("added")
        if holds is None:
            holds = (hook.get_campaign_info(campaign_id).get("counters") or {}).get("totalMsgNum")
        raise SmsFatalError(
            f"Mobizon campaign {campaign_id} is created and filled ({holds} recipients) but was not sent, and its "
            f"deferred_to={deferred.isoformat()} has passed. on_window_passed='fail': not sending it late. "
            f"Send it with MobizonSendCampaignOperator(campaign_id={campaign_id}) (it starts at once), delete "
            "it, or set on_window_passed='send_now'",
            provider=proto.PROVIDER,
        )

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
        try:
            number = normalize_phone(self.recipient)
        except ValueError as exc:
            raise SmsValidationError(f"recipient={self.recipient!r}: {exc}", field="recipient",
                                     value=self.recipient) from None
        text = check_mobizon_text(self.text)
        check_sender(self.sender)
        check_range(self.validity, *proto.VALIDITY_MINUTES, "validity")
        check_choice(self.mclass, (0, 1), "mclass")
        deferred = parse_when(self.deferred_to, "deferred_to")
        ckpt = Checkpoint(context, "mobizon_sms")
        # Checked before the first send only: a retry of a try that started sending looks the SMS up.
        check_window_once(ckpt, deferred, "deferred_to", started=ckpt.get("started_at") is not None,
                          min_ahead=dt.timedelta(seconds=proto.DEFERRED_MIN_SECONDS),
                          max_ahead=dt.timedelta(seconds=proto.DEFERRED_MAX_SECONDS))
        if ckpt.get("result"):
            self.log.info("This SMS was already accepted by an earlier try: %s", ckpt.get("result"))
            return ckpt.get("result")
        tag = run_tag(context)
        # The tag makes this task instance's SMS recognisable when an answer is lost.
        name = tagged_name(self.name, tag, MAX_NAME_LENGTH) if tag is not None else self.name
        hook = self.hook()
        # Fence overlapping tries: another try's sendSmsMessage may still be in flight.
        try:
            lease, waited = fence(context, "mobizon_sms", hook, self.log, provider=proto.PROVIDER)
        except Exception:
            hook.close()
            raise
        if waited:
            ckpt = Checkpoint(context, "mobizon_sms")
            if ckpt.get("result"):
                lease.release()
                hook.close()
                self.log.info("The other try sent this SMS: %s", ckpt.get("result"))
                return ckpt.get("result")
        started = ckpt.get("started_at")
        try:
            if tag is not None and (started is not None or not ckpt.durable):
                # An earlier try may have sent it: recorded as started, or unknowable without durable state.
                found = self._find(hook, number, text, name, started)
                if found is not None:
                    self.log.info("This SMS was sent by an earlier try (message %s); not sending again",
                                  found["messageId"])
                    ckpt.save(result=found)
                    return found
            if started is None:
                # Recorded before the call: a retry after a lost answer looks the SMS up instead of sending.
                ckpt.save(started_at=dt.datetime.now(dt.timezone.utc).isoformat())
            try:
                result = hook.send_sms(number, text, sender=self.sender, name=name, deferred_to=deferred,
                                       validity=self.validity, shorten_links=self.shorten_links, mclass=self.mclass)
            except SmsAmbiguousError:
                found = self._find(hook, number, text, name, started) if tag is not None else None
                if found is None:
                    raise
                self.log.warning("message/sendSmsMessage went unanswered, but message %s exists: using it",
                                 found["messageId"])
                result = found
            ckpt.save(result=result)  # before the lease is released: a waiting try reads it
        finally:
            lease.release()
            hook.close()
        return result

    def _find(self, hook: MobizonHook, number: str, text: str, name: str | None, started: str | None
              ) -> dict[str, Any] | None:
        """This task instance's SMS (tagged campaign name), created at most a day before it was first sent."""
        since = dt.datetime.fromisoformat(started) if started else dt.datetime.now(dt.timezone.utc)
        return hook.find_sms(number, text, since=since - SMS_LOOKUP_SLACK, name=name)


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
