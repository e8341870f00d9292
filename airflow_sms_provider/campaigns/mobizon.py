"""Mobizon campaign work: create, fill and send once, resumable; the one SMS; and the
neutral interface's entry (``MobizonHook.campaign_module``).

The operators in :mod:`airflow_sms_provider.operators.mobizon` build the parameters below
from their own arguments and run this work; :func:`run_campaign` builds the same parameters
for the provider-neutral operator.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import re
from collections.abc import Iterable, Iterator
from typing import Any

from airflow_sms_provider.campaigns.events import not_found
from airflow_sms_provider.campaigns.lease import fence
from airflow_sms_provider.campaigns.ledger import Ledger, SequenceDigest
from airflow_sms_provider.campaigns.mobizon_upload import RecipientsMixin
from airflow_sms_provider.campaigns.reconcile import check_mobizon_audience, mobizon_numbers, verify_mobizon_campaign
from airflow_sms_provider.campaigns.run import TaskRuntime, Work, build_params, count, invalid_rows, neutral_summary
from airflow_sms_provider.exceptions import (
    SmsAmbiguousError,
    SmsFatalError,
    SmsNotFoundError,
    SmsProtocolError,
    SmsValidationError,
)
from airflow_sms_provider.hooks.base import CampaignParams
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.progress import Checkpoint
from airflow_sms_provider.protocols import mobizon as proto
from airflow_sms_provider.recipients import RejectReport, normalize_phone, placeholders, sms_parts
from airflow_sms_provider.recovery import run_tag, tagged_name
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


@dataclasses.dataclass(kw_only=True)
class MobizonCreateParams:
    """The parameters of campaign/create (``MobizonCreateCampaignOperator``'s, rendered)."""

    text: Any
    name: Any = None
    campaign_type: Any = 2
    sender: Any = None
    rate_limit: Any = None
    rate_period: Any = None
    deferred_to: Any = None
    mclass: Any = None
    validity: Any = None
    shorten_links: Any = None
    track_short_link_recipients: Any = None
    mobizon_conn_id: str = MobizonHook.default_conn_name


@dataclasses.dataclass(kw_only=True)
class MobizonCampaignParams(MobizonCreateParams):
    """The one-step campaign's parameters (``MobizonCampaignOperator``'s, without its wait)."""

    recipients: Any
    number_field: str = "recipient"
    placeholders_flag: Any = None
    on_invalid: str = "fail"
    reject_report_path: Any = None
    max_reported: int = 20
    file_upload_threshold: Any = None
    max_file_bytes: Any = proto.MAX_UPLOAD_BYTES
    task_timeout: float = 3600
    expected_count: Any = None
    on_window_passed: str = "fail"


@dataclasses.dataclass(kw_only=True)
class MobizonSmsParams:
    """One SMS (``MobizonSendSmsOperator``'s parameters)."""

    recipient: Any
    text: Any
    sender: Any = None
    name: Any = None
    deferred_to: Any = None
    validity: Any = None
    shorten_links: Any = None
    mclass: Any = None
    mobizon_conn_id: str = MobizonHook.default_conn_name


class _MobizonWork(Work):
    def hook(self) -> MobizonHook:
        return MobizonHook(self.mobizon_conn_id)


class MobizonCreateWork(_MobizonWork):
    """Create this task instance's campaign once: recorded, found again (tagged name), or created now."""

    params: MobizonCreateParams

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

    def run(self) -> int:
        """The campaign id (its link persisted)."""
        context = self.runtime.context
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
        self.runtime.persist_link(self.mobizon_conn_id, campaign_id)
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


# ------------------------------------------------------------------ shared by the steps


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


class MobizonCampaignWork(RecipientsMixin, MobizonCreateWork):
    """Create a campaign, upload its audience, send it: each step recorded, so a retry resumes.

    The wait for the campaign to finish is the operator's (it may defer to the triggerer).
    """

    params: MobizonCampaignParams

    def run(self) -> dict[str, Any]:  # type: ignore[override]
        """The summary: campaign id, upload counts and examples, send status."""
        context = self.runtime.context
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
            self.runtime.persist_link(self.mobizon_conn_id, campaign_id)
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
        return summary

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


# ------------------------------------------------------------------ one SMS


class MobizonSmsWork(_MobizonWork):
    """Send one SMS at most once: the result is durable, a lost answer is looked up (tagged name)."""

    params: MobizonSmsParams

    def run(self) -> dict[str, Any]:
        """The accepted message (Mobizon's answer), this try's or an earlier one's."""
        context = self.runtime.context
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


# ------------------------------------------------------------------ the neutral interface


# The one-step operator's wait parameters: accepted in provider_options, as the operator takes
# them, but the neutral operator waits (or not) itself.
WAIT_OPTIONS = frozenset({"target_statuses", "deferrable", "poll_interval"})


def run_campaign(hook: Any, params: CampaignParams, context: Any, log: Any) -> dict[str, Any]:
    """Create, fill and send one campaign (a template campaign when the text has ``{placeholders}``)."""
    personalised = isinstance(params.text, str) and bool(placeholders(params.text))
    args = {"mobizon_conn_id": params.conn_id, "text": params.text, "recipients": params.recipients,
            "sender": params.sender, "name": params.name, "deferred_to": params.send_at,
            "campaign_type": 3 if personalised else 2, "on_invalid": params.on_invalid,
            "reject_report_path": params.reject_report_path}
    options = {k: v for k, v in params.options.items() if k not in WAIT_OPTIONS}  # no wait here: the neutral one's
    work_params = build_params(MobizonCampaignParams, "MobizonCampaignOperator", params.task_id, {**args, **options})
    log.info("Sending through %s (connection %r)", "MobizonCampaignOperator", params.conn_id)
    details = MobizonCampaignWork(work_params, TaskRuntime(context, log, params.task_id)).run()
    return summarize(hook, params.conn_id, details)


def summarize(hook: Any, conn_id: str, details: dict[str, Any]) -> dict[str, Any]:
    campaign_id = int(details["campaign_id"])
    accepted = count(details.get("added")) + count(details.get("duplicates"))  # duplicates: an earlier try's
    rejected = invalid_rows(details) + count(details.get("rejected"))
    return neutral_summary(hook, conn_id, [campaign_id], accepted, rejected, {campaign_id: details.get("status")},
                           details)
