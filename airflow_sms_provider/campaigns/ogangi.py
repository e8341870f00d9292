"""Ogangi work: send by file at most once, create a broadcast once (no lookup exists, so a
try that may have created one stops naming it), and the neutral interface's entry
(``OgangiHook.campaign_module``).

The operators in :mod:`airflow_sms_provider.operators.ogangi` build the parameters below
from their own arguments and run this work; :func:`run_campaign` builds the same parameters
for the provider-neutral operator.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from airflow_sms_provider.campaigns.lease import fence
from airflow_sms_provider.campaigns.ledger import Digest, lines_digest
from airflow_sms_provider.campaigns.run import TaskRuntime, Work, build_params, count, invalid_rows, neutral_summary
from airflow_sms_provider.exceptions import (
    SmsAmbiguousError,
    SmsFatalError,
    SmsNotFoundError,
    SmsProtocolError,
    SmsProviderError,
    SmsValidationError,
)
from airflow_sms_provider.hooks.base import CampaignParams, masked_number
from airflow_sms_provider.hooks.ogangi import OgangiHook, build_sms_file, read_upload, unanswered
from airflow_sms_provider.progress import Checkpoint
from airflow_sms_provider.protocols import ogangi as proto
from airflow_sms_provider.recipients import (
    NO_TEXT_REASON,
    DuplicateReport,
    Recipient,
    RejectReport,
    check_template,
    fill_placeholders,
    fill_problem,
    iter_recipients,
    unused_values_reason,
)
from airflow_sms_provider.transport import origin
from airflow_sms_provider.validation import (
    as_int,
    check_choice,
    check_text,
    check_window,
    check_window_once,
    parse_when,
)

T = TypeVar("T")


@dataclasses.dataclass(kw_only=True)
class OgangiSendByFileParams:
    """``OgangiSendSmsByFileOperator``'s parameters (rendered)."""

    recipients: Any = None
    file_path: Any = None
    text: Any = None
    sender: Any = None
    carrier: Any = None
    encoding: Any = None
    timezone: Any = None
    template_params: Any = None
    number_field: str = "recipient"
    on_invalid: str = "fail"
    reject_report_path: Any = None
    max_reported: int = 100
    check_shortcode: bool = True
    ogangi_conn_id: str = OgangiHook.default_conn_name


@dataclasses.dataclass(kw_only=True)
class OgangiBroadcastParams:
    """``OgangiCreateBroadcastOperator``'s parameters (rendered)."""

    text: Any
    recipients: Any
    shortcode: Any = None
    campaign_name: Any = None
    scheduled_at: Any = None
    schedule_timezone: Any = None
    broadcast_id: Any = None
    check_shortcode: bool = True
    number_field: str = "recipient"
    on_invalid: str = "fail"
    reject_report_path: Any = None
    max_reported: int = 20
    server_side_params: bool = False
    ogangi_conn_id: str = OgangiHook.default_conn_name


class _OgangiWork(Work):
    def hook(self) -> OgangiHook:
        return OgangiHook(self.ogangi_conn_id)



class _AudienceMixin:
    """Reads ``recipients`` (a list, an iterable, an XCom, or a CSV/XLSX path) as a validated stream."""

    recipients: Any
    number_field: str
    on_invalid: str
    reject_report_path: Any
    max_reported: int
    duplicates: DuplicateReport | None = None

    def _check_audience_options(self) -> None:
        check_choice(self.on_invalid, ("fail", "skip"), "on_invalid")
        if self.recipients is None or self.recipients == [] or self.recipients == "":
            raise SmsValidationError("recipients is empty: there is no audience", field="recipients",
                                     value=self.recipients)

    def _report(self) -> RejectReport:
        return RejectReport(cap=self.max_reported, path=self.reject_report_path or None)

    def _audience(self, report: RejectReport) -> Iterator[Recipient]:
        # The audience rule: a number once, its first row wins (counted in self.duplicates).
        self.duplicates = DuplicateReport(cap=self.max_reported)
        rows = iter_recipients(self.recipients, number_field=self.number_field, on_invalid=self.on_invalid,
                               report=report, duplicates=self.duplicates)
        empty = True
        for recipient in rows:
            empty = False
            yield recipient
        self.duplicates.log_line(self.log)  # type: ignore[attr-defined]
        if empty:  # found once the whole source is read: still before any request
            raise SmsValidationError(
                f"recipients: no valid row ({report.count} rejected)" if report.count
                else "recipients is empty: there is no audience",
                field="recipients", value=report.count,
            )  # fmt: skip


def _skip_or_raise(on_invalid: str, report: RejectReport, recipient: Recipient, reason: str, *, field: str,
                   value: Any) -> None:
    """A row whose values cannot fill the text: ``fail`` raises naming the row, ``skip`` reports it."""
    if on_invalid != "skip":
        raise SmsValidationError(f"recipients row {recipient.row}: {reason}", field=field, value=value)
    report.add(recipient.row, recipient.raw, reason)


def _nonempty(rows: Iterable[T], report: RejectReport) -> Iterator[T]:
    """``rows``, raising "no valid row" once they are read if the fill rule skipped every one (before any request)."""
    empty = True
    for row in rows:
        empty = False
        yield row
    if empty:
        raise SmsValidationError(f"recipients: no valid row ({report.count} rejected)", field="recipients",
                                 value=report.count)


def _answer_gaps(messages: Sequence[Mapping[str, Any]], numbers: Sequence[str] | None) -> dict[str, Any]:
    """What an OK sendSMSByFile answer leaves unaccounted for (empty when it names one message per row of
    ``numbers``): counts and a few masked examples. ``None``: a file uploaded as it is, not read here."""
    if numbers is None:
        return {}
    missing, extra = unanswered(messages, numbers)
    if not missing and not extra:
        return {}
    return {"rows_without_message": len(missing), "messages_for_other_numbers": len(extra),
            "examples": [masked_number(n) for n in missing[:5]] + [
                masked_number(str(m.get("to") or "?")) for m in extra[:5]]}  # fmt: skip


def _gaps_message(rows: int | None, messages: Sequence[Mapping[str, Any]], gaps: Mapping[str, Any]) -> str:
    return (
        f"sendSMSByFile accepted the file of {rows} row(s) (status OK) but its answer names {len(messages)} "
        f"message(s): {gaps['rows_without_message']} number(s) sent to have no message in it and "
        f"{gaps['messages_for_other_numbers']} message(s) are beyond one per row (for a number not in the file "
        f"or a second one for a number; e.g. "
        f"{', '.join(gaps['examples'])}). Whether those were sent is unknown: not sending again. Check the "
        "messages in Ogangi; the answer's messages are in this task's state and the log"
    )


def summarize_messages(messages: Sequence[Mapping[str, Any]], cap: int) -> dict[str, Any]:
    """Counts by status and the first ``cap`` (id, status) pairs: no numbers, no texts."""
    counts: dict[str, int] = {}
    for message in messages:
        status = str(message.get("status"))
        counts[status] = counts.get(status, 0) + 1
    return {
        "total": len(messages),
        "status_counts": counts,
        "failed": sum(n for status, n in counts.items() if status in proto.MESSAGE_FAILED_STATUSES),
        "messages": [{"id": m.get("id"), "status": m.get("status")} for m in messages[:cap]],
    }




@dataclasses.dataclass(frozen=True)
class FileFill:
    """One file row's fate: ``problem`` (and the error's field and value) when refused, else the
    filled text (None: the file's default text, unchanged, goes out) and the row's ``{N}`` values."""

    problem: str | None = None
    field: str = "text"
    value: Any = None
    filled: str | None = None
    values: list[Any] = dataclasses.field(default_factory=list)


def file_fill(text: Any, params: Mapping[str, Any], template_params: Sequence[str] | None) -> FileFill:
    """The file send's per-row rule, shared with the estimate (``OgangiHook.estimate_rule``, ``by_file``).

    A row's values (its columns but :data:`~airflow_sms_provider.protocols.ogangi.SMS_FILE_COLUMNS`),
    in ``template_params`` order or the row's own, fill ``{0}``, ``{1}``… of its ``text`` column
    or else ``text``. Refused, with the estimate's words: a template parameter without a value,
    values for a text without ``{N}`` (they would be dropped), a ``{N}`` past the values, an
    empty filled text.
    """
    values_of = {key: value for key, value in params.items() if key not in proto.SMS_FILE_COLUMNS}
    if template_params is not None:
        missing = [name for name in template_params if name not in values_of]
        if missing:
            return FileFill(f"no value for template parameter(s) {missing}", "template_params", missing)
        values = [values_of[name] for name in template_params]
    else:
        values = list(values_of.values())
    own = params.get("text")
    template = str(own or text or "")
    needed = [int(index) for index in proto.FILE_PLACEHOLDER.findall(template)]
    if not own and values and not needed:  # a row's own text may leave its other columns unused
        names = template_params if template_params is not None else list(values_of)
        return FileFill(unused_values_reason(names), "text", text)
    if needed and max(needed) >= len(values):
        return FileFill(f"the text uses {{{max(needed)}}} but the row has {len(values)} template value(s)", "text")
    if not needed:
        return FileFill(filled=None, values=values)
    filled = proto.FILE_PLACEHOLDER.sub(lambda m: str(values[int(m.group(1))]), template)
    if not filled.strip():  # else the file's default text, "{0}" unfilled, would go out
        return FileFill(NO_TEXT_REASON, "text")
    return FileFill(filled=filled, values=values)


class OgangiSendByFileWork(_AudienceMixin, _OgangiWork):
    """sendSMSByFile at most once: the result is durable, an unanswered upload stops the retry."""

    params: OgangiSendByFileParams

    def __init__(self, params: OgangiSendByFileParams, runtime: TaskRuntime) -> None:
        super().__init__(params, runtime)
        self._senders: dict[str, int] = {}  # each ``from`` of the file -> the first row using it

    def _validate(self) -> str:
        given = [name for name in ("recipients", "file_path") if getattr(self, name) not in (None, "", [])]
        if len(given) != 1:
            raise SmsValidationError(
                f"give exactly one of recipients, file_path (got {given or 'none'})", field="recipients", value=given
            )
        if given[0] == "recipients":
            self._check_audience_options()
        if self.text is not None:
            check_text(self.text)
        if self.timezone:
            proto.zone(self.timezone, "timezone")
        if self.template_params is not None and (
            isinstance(self.template_params, str) or not all(isinstance(p, str) for p in self.template_params)
        ):
            raise SmsValidationError(
                f"template_params={self.template_params!r} must be a list of field names",
                field="template_params",
                value=self.template_params,
            )
        return given[0]

    def _row(self, recipient: Recipient, report: RejectReport) -> dict[str, Any] | None:
        """One row of the Ogangi file from a recipient; template values checked against the text.

        A row whose values cannot fill the text (:func:`file_fill`: values without a ``{N}``, a
        template parameter without a value, a ``{N}`` past its values, an empty filled text)
        follows ``on_invalid``: None when skipped.
        """
        params = dict(recipient.params)
        row: dict[str, Any] = {key: params.pop(key) for key in proto.SMS_FILE_COLUMNS if key in params}
        row["number"] = recipient.number
        sender = row.get("from") or self.sender
        if sender:
            self._senders.setdefault(str(sender), recipient.row)
        fill = file_fill(self.text, recipient.params, self.template_params)
        if fill.problem is not None:
            _skip_or_raise(self.on_invalid, report, recipient, fill.problem, field=fill.field,
                           value=fill.value if fill.value is not None else recipient.row)
            return None
        if fill.filled is not None:
            # Filled here, so the row is right whether or not the server fills {0}… itself
            # (the document only points to a "Recipient List" page we do not have).
            row["text"] = fill.filled
        row["params"] = fill.values
        self._numbers.append(recipient.number)
        return row

    def _file(self, report: RejectReport) -> tuple[str, bytes, int]:
        self._senders = {}
        self._numbers: list[str] = []  # the file's numbers, one per row: what the answer must account for
        defaults = {"from": self.sender, "carrier": self.carrier, "text": self.text,
                    "encoding": self.encoding or proto.DEFAULT_ENCODING, "timezone": self.timezone}
        made = (self._row(recipient, report) for recipient in self._audience(report))
        rows = _nonempty((row for row in made if row is not None), report)
        content, count = build_sms_file(rows, defaults=defaults)
        return "recipients.csv", content, count

    def run(self) -> dict[str, Any]:
        """The summary of the messages sent (this try's or an earlier one's)."""
        context = self.runtime.context
        source = self._validate()
        ckpt = Checkpoint(context, "ogangi_send_by_file")
        if ckpt.get("summary") and not ckpt.get("content"):  # recorded before content tracking
            self.log.info("These SMS were already sent by an earlier try; not sending again")
            return ckpt.get("summary")
        if ckpt.get("upload_started") and not ckpt.get("summary"):
            raise SmsFatalError(
                "an earlier try of this task started sendSMSByFile and got no answer: the SMS may have been "
                "sent. Check the messages in Ogangi before clearing this task's state to send again",
                provider=proto.PROVIDER,
            )
        report = self._report()
        try:
            if source == "recipients":
                name, content, rows = self._file(report)
            else:
                name, content = read_upload(self.file_path)
                rows = None
        finally:
            report.close()
        content_digest = lines_digest(content)
        if ckpt.get("summary"):
            earlier = ckpt.get("summary")
            if ckpt.get("content") != content_digest:
                raise SmsFatalError(
                    f"an earlier try of this task already sent {earlier.get('total')} SMS by file "
                    f"({earlier.get('status_counts')}), and this try's file holds other rows: the audience or the "
                    "text changed between tries. Not sending again; send the difference as a new task",
                    provider=proto.PROVIDER,
                )
            self.log.info("These SMS were already sent by an earlier try; not sending again")
            return earlier
        earlier = _earlier_try(context)
        if earlier is not None and not ckpt.durable:
            raise SmsFatalError(
                f"try {earlier + 1} of this task runs without durable task state (Airflow < 3.3): it cannot know "
                f"whether try {earlier} sent these SMS by file (its worker may have died with the upload in "
                "flight) and Ogangi has no lookup, so the SMS may have been sent. Not sending again: check the "
                "messages in Ogangi, then clear this task to send (the first try after a clear sends)",
                provider=proto.PROVIDER,
            )
        hook = self.hook()
        if self.check_shortcode and self._senders:
            try:
                self._check_senders(hook)
            except Exception:
                hook.close()
                raise
        try:  # fence overlapping tries: Ogangi cannot look the SMS up, so a live other try is fatal
            lease, waited = fence(context, "ogangi_send_by_file", hook, self.log, provider=proto.PROVIDER,
                                  lookup=False)
        except Exception:
            hook.close()
            raise
        if waited:
            ckpt = Checkpoint(context, "ogangi_send_by_file")
            if ckpt.get("summary") or ckpt.get("upload_started"):
                lease.release()
                hook.close()
                return self._after_other_try(ckpt)
        ckpt.save(upload_started=True, content=content_digest)
        answered = False
        try:
            messages = hook.send_sms_by_file((name, content))
            answered = True
        except Exception as err:
            if proto.refused(err):
                ckpt.save(upload_started=False)  # an explicit refusal: nothing was sent
                raise
            # No answer, or one that cannot be read (any error, a parser's ValueError included): it
            # may have been sent. Only an explicit refusal lets a retry send again.
            if ckpt.durable:
                raise _ambiguous(err) from err  # the retry reads upload_started and stops with instructions
            # Without durable state a retry could not know it and would send every SMS again.
            raise SmsFatalError(
                f"{_describe(err)}; the SMS may have been sent. Check the messages in Ogangi before running "
                "this task again",
                provider=proto.PROVIDER,
            ) from err
        finally:
            hook.close()
            if not answered:
                lease.release()  # what happened is recorded (upload_started): a waiting try reads it
        summary = {"source": source, "rows": rows, **summarize_messages(messages, self.max_reported),
                   "invalid": report.summary()}
        if self.duplicates is not None:
            summary["audience_duplicates"] = self.duplicates.summary()
        gaps = _answer_gaps(messages, self._numbers if rows is not None else None)
        if gaps:
            summary["unaccounted"] = gaps
        ckpt.save(summary=summary)
        lease.release()
        if gaps:
            self.log.error("sendSMSByFile answered for %d of %d row(s): %s; messages: %s", summary["total"], rows,
                           summary["status_counts"], summary["messages"])  # fmt: skip
            raise SmsFatalError(_gaps_message(rows, messages, gaps), provider=proto.PROVIDER)
        self.log.info("Sent %d SMS by file: %s", summary["total"], summary["status_counts"])
        return summary

    def _after_other_try(self, ckpt: Checkpoint) -> dict[str, Any]:
        """Another try's sendSMSByFile was waited for: its summary, or stop naming it (no lookup exists)."""
        if ckpt.get("summary"):
            self.log.info("These SMS were sent by another try of this task; not sending again")
            return dict(ckpt.get("summary"))
        raise SmsFatalError(
            "another try of this task sent sendSMSByFile and recorded no answer: the SMS may have been sent. "
            "Check the messages in Ogangi before clearing this task's state to send again",
            provider=proto.PROVIDER,
        )

    def _check_senders(self, hook: OgangiHook) -> None:
        """Every ``from`` of the file must be one of the instance's codes (a read before the upload)."""
        codes = hook.get_shortcodes()
        for sender, row in self._senders.items():
            if sender not in codes:
                raise SmsValidationError(
                    f"sender={sender!r} (recipients row {row}) is not one of this instance's codes {codes}",
                    field="sender",
                    value=sender,
                )



# ------------------------------------------------------------------ broadcasts


class OgangiBroadcastWork(_AudienceMixin, _OgangiWork):
    """Create (or edit) a broadcast; created at most once per task instance."""

    params: OgangiBroadcastParams

    def _when(self, ckpt: Checkpoint | None = None) -> dt.datetime | None:
        """The schedule, checked before the broadcast is created only (not when an earlier try created it)."""
        now = dt.datetime.now(dt.timezone.utc)
        if isinstance(self.scheduled_at, dt.timedelta):
            when: dt.datetime | None = now + self.scheduled_at
        else:
            when = parse_when(self.scheduled_at, "scheduled_at")
        started = ckpt is not None and (ckpt.get("broadcast_id") is not None or bool(ckpt.get("create_started")))
        if when is not None and ckpt is not None:
            check_window_once(ckpt, when, "scheduled_at", started=started, min_ahead=dt.timedelta(0),
                              max_ahead=proto.SCHEDULE_MAX_AHEAD, now=now)
        elif when is not None:
            check_window(when, "scheduled_at", min_ahead=dt.timedelta(0), max_ahead=proto.SCHEDULE_MAX_AHEAD,
                         now=now)
        return when

    def _name(self, context: Any) -> str:
        if self.campaign_name not in (None, ""):
            return str(self.campaign_name)
        ti = context.get("ti") if context is not None else None
        run_id = (context.get("run_id") if context is not None else None) or getattr(ti, "run_id", None)
        parts = [getattr(ti, "dag_id", None) or getattr(self, "dag_id", None) or "airflow", self.task_id, run_id]
        map_index = getattr(ti, "map_index", -1)
        if isinstance(map_index, int) and map_index >= 0:
            parts.append(str(map_index))
        return ".".join(str(part) for part in parts if part)

    def _items(self, text: str, report: RejectReport) -> list[dict[str, Any]]:
        """Every recipient as a ``to`` item, placeholders checked row by row before anything is sent.

        A row whose values cannot fill ``text`` (a placeholder without a value, an empty filled
        text) follows ``on_invalid`` like a bad number: the task fails naming it, or it is skipped
        and reported (the estimate's rule and words, :func:`fill_problem`).
        """
        items = []
        for recipient in self._audience(report):
            problem = fill_problem(text, recipient.params)  # the estimate's rule: no value, or an empty text
            if problem is not None:
                if self.on_invalid != "skip":
                    try:
                        check_template(text, recipient.params.keys(), recipient.row)
                    except SmsValidationError as err:  # "row 3: ..." -> "recipients row 3: ...", the parameter named
                        raise SmsValidationError(f"recipients {err}", field=err.field, value=err.value) from None
                _skip_or_raise(self.on_invalid, report, recipient, problem, field="text", value=recipient.row)
                continue
            if self.server_side_params:
                items.append(proto.broadcast_recipient(recipient.number, text, recipient.params))
            else:  # filled here: right whether or not the instance fills params (it is not documented)
                items.append(proto.broadcast_recipient(recipient.number, fill_placeholders(text, recipient.params)))
        return list(_nonempty(items, report))

    def run(self) -> dict[str, Any]:
        """The broadcast's summary; its id is pushed to XCom under ``broadcast_id`` too."""
        context = self.runtime.context
        text = check_text(self.text)
        self._check_audience_options()
        ckpt = Checkpoint(context, "ogangi_broadcast")
        edit = self.broadcast_id not in (None, "")
        when = self._when(None if edit else ckpt)
        if self.schedule_timezone:
            proto.zone(self.schedule_timezone)
        edit_id = as_int(self.broadcast_id, "broadcast_id") if self.broadcast_id not in (None, "") else None
        name = self._name(context)
        report = self._report()
        try:
            items = self._items(text, report)
        finally:
            report.close()
        hook = self.hook()
        lease = None
        try:
            if self.check_shortcode and self.shortcode:
                self._check_shortcode(hook)
            if edit_id is None:
                # Fence overlapping tries; Ogangi cannot look a broadcast up, so a live other try is fatal.
                lease, waited = fence(context, "ogangi_broadcast", hook, self.log, provider=proto.PROVIDER,
                                      lookup=False)
                if waited:
                    ckpt = Checkpoint(context, "ogangi_broadcast")
                data, resumed = self._create_once(hook, ckpt, items, name, when)
            else:
                data, resumed = self._create(hook, items, name, when, edit_id), False
        finally:
            if lease is not None:
                lease.release()
            hook.close()
        broadcast_id = int(data["id"])
        self.runtime.persist_link(self.ogangi_conn_id, broadcast_id)
        self.log.info("Ogangi broadcast %s %s: %s", broadcast_id,
                      "edited" if edit_id else ("found from an earlier try" if resumed else "created"),
                      data.get("statusName"))
        ti = context.get("ti") if context is not None else None
        if ti is not None:
            ti.xcom_push(key="broadcast_id", value=broadcast_id)
        return {
            "broadcast_id": broadcast_id,
            "status": data.get("statusName"),
            "expected_messages": data.get("expectedMessages"),
            "recipients": len(items),
            "start_date": data.get("startDate"),
            "shortcode": data.get("shortcode"),
            "campaign_name": name,
            "edited": edit_id is not None,
            "invalid": report.summary(),
            "audience_duplicates": self.duplicates.summary() if self.duplicates is not None else None,
        }

    def _check_shortcode(self, hook: OgangiHook) -> None:
        codes = hook.get_shortcodes()
        if str(self.shortcode) not in codes:
            raise SmsValidationError(
                f"shortcode={self.shortcode!r} is not one of this instance's codes {codes}",
                field="shortcode",
                value=self.shortcode,
            )

    def _create(
        self, hook: OgangiHook, items: list[dict[str, Any]], name: str, when: dt.datetime | None,
        broadcast_id: int | None,
    ) -> dict[str, Any]:
        return hook.create_broadcast(
            items,
            broadcast_id=broadcast_id,
            shortcode=self.shortcode or None,
            campaign_name=name,
            scheduled_at=when,
            schedule_timezone=self.schedule_timezone or None,
            server_side_params=self.server_side_params,
        )

    def _create_once(
        self, hook: OgangiHook, ckpt: Checkpoint, items: list[dict[str, Any]], name: str, when: dt.datetime | None
    ) -> tuple[dict[str, Any], bool]:
        """Create unless an earlier try did; returns (broadcast, found_from_earlier_try)."""
        content = Digest.of(item["to"] for item in items).dump()
        known = ckpt.get("broadcast_id")
        if known is not None:
            try:
                data = hook.get_broadcast(int(known))
            except SmsNotFoundError as err:
                where = origin(hook.settings.http.base_url)
                raise SmsNotFoundError(
                    f"broadcast {known} (created by an earlier try of this task) not found at {where}: deleted? "
                    f"({err}). Clear this task's state to create a new one",
                    provider=proto.PROVIDER, code=err.code,
                ) from err
            self._verify(data, ckpt, content, items)
            return data, True
        if ckpt.get("create_started"):
            raise SmsFatalError(
                f"an earlier try started creating broadcast {ckpt.get('campaign_name')!r} and got no answer: it "
                "may exist. Look for it in Ogangi and set broadcast_id to edit it, or clear this task's state "
                "to create a new one",
                provider=proto.PROVIDER,
            )
        earlier = _earlier_try(self.runtime.context)
        if earlier is not None and not ckpt.durable:
            raise SmsFatalError(
                f"try {earlier + 1} of this task runs without durable task state (Airflow < 3.3): it cannot know "
                f"whether try {earlier} created broadcast {name!r} (its worker may have died with the create in "
                "flight) and Ogangi has no lookup by name, so it may exist. Not creating another: look for it in "
                "Ogangi (set broadcast_id to edit it), or clear this task to create it (the first try after a "
                "clear creates)",
                provider=proto.PROVIDER,
            )
        ckpt.save(create_started=True, campaign_name=name, content=content)
        try:
            data = self._create(hook, items, name, when, None)
            broadcast_id = _created_id(data)
        except Exception as err:
            if proto.refused(err):
                ckpt.save(create_started=False)  # an explicit refusal: nothing was created
                raise
            # No answer, or one that cannot be read (any error, a parser's ValueError or RecursionError
            # included): the broadcast may exist. Only an explicit refusal lets a retry create.
            if ckpt.durable:
                raise _ambiguous(err) from err  # the retry reads create_started and stops naming the broadcast
            # Without durable state a retry could not know it and would create a second broadcast.
            raise SmsFatalError(
                f"{_describe(err)}; broadcast {name!r} may exist. Look for it in Ogangi and set broadcast_id to "
                "edit it, or run this task again to create a new one",
                provider=proto.PROVIDER,
            ) from err
        ckpt.save(broadcast_id=broadcast_id)
        return data, False

    def _verify(self, data: Mapping[str, Any], ckpt: Checkpoint, content: dict[str, Any],
                items: list[dict[str, Any]]) -> None:
        """Adopt an earlier try's broadcast only if it is the one this try would create (recipients, text)."""
        recorded, now = Digest.load(ckpt.get("content")), Digest.load(content) or Digest()
        differ = []
        if recorded is not None and recorded != now:
            differ.append(f"recipients: it was made for {recorded.describe()}, this try has {now.describe()}")
        text = items[0].get("text") if items else None
        if data.get("text") not in (None, "") and text is not None and data.get("text") != text:
            differ.append(f"text {str(data.get('text'))[:60]!r} (this try: {str(text)[:60]!r})")
        if differ:
            raise SmsFatalError(
                f"broadcast {data.get('id')} ({ckpt.get('campaign_name')!r}, {data.get('statusName')}) was created by "
                f"an earlier try of this task, but {'; '.join(differ)}: the parameters changed between tries. Not "
                "adopting it and not creating another; check it in Ogangi (set broadcast_id to edit it), then "
                "clear this task's state",
                provider=proto.PROVIDER,
            )  # fmt: skip



def _earlier_try(context: Any) -> int | None:
    """The number of this run's previous try when this try is a retry, else None.

    The first try after a clear is not a retry (someone decided to run it again): Airflow
    raises ``max_tries`` to the last try number plus the task's retries on a clear, so a
    cycle's first try is ``max_tries - retries + 1`` (as the task runner computes it).
    Without ``max_tries`` (an older runtime, a test's task instance) the first try is 1.
    """
    ti = context.get("ti") if isinstance(context, Mapping) else None
    number = getattr(ti, "try_number", None)
    if isinstance(number, bool) or not isinstance(number, int) or number <= 1:
        return None
    max_tries, retries = getattr(ti, "max_tries", None), getattr(getattr(ti, "task", None), "retries", None)
    first = 1
    if isinstance(max_tries, int) and isinstance(retries, int) and 0 <= retries <= max_tries:
        first = max_tries - retries + 1
    return number - 1 if number > first else None


def _describe(err: BaseException) -> str:
    """An error for a message: ours as they are, anything else with its class (``ValueError: ...``)."""
    return str(err) if isinstance(err, SmsProviderError) else f"{type(err).__name__}: {str(err)[:200]}"


def _ambiguous(err: BaseException) -> SmsProviderError:
    """``err`` as an error that says the call may have been carried out (ours are kept as they are)."""
    if isinstance(err, SmsProviderError):
        return err
    return SmsAmbiguousError(f"ogangi: the answer could not be read ({_describe(err)}); the call may have been "
                             "carried out", provider=proto.PROVIDER)  # fmt: skip


def _created_id(data: Any) -> int:
    """The id of the broadcast an OK answer says was created; an answer without one is unreadable."""
    raw = data.get("id") if isinstance(data, Mapping) else None
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise SmsProtocolError(f"ogangi createBroadcastFromJson: OK answer without a broadcast id ({raw!r})",
                               provider=proto.PROVIDER)  # fmt: skip
    return raw



# ------------------------------------------------------------------ the neutral interface


def run_campaign(hook: Any, params: CampaignParams, context: Any, log: Any) -> dict[str, Any]:
    """One broadcast (placeholders filled by Ogangi); ``sender`` is the short code."""
    args = {"ogangi_conn_id": params.conn_id, "text": params.text, "recipients": params.recipients,
            "shortcode": params.sender, "campaign_name": params.name, "scheduled_at": params.send_at,
            "on_invalid": params.on_invalid, "reject_report_path": params.reject_report_path}
    work_params = build_params(OgangiBroadcastParams, "OgangiCreateBroadcastOperator", params.task_id,
                               {**args, **params.options})
    log.info("Sending through %s (connection %r)", "OgangiCreateBroadcastOperator", params.conn_id)
    details = OgangiBroadcastWork(work_params, TaskRuntime(context, log, params.task_id)).run()
    return summarize(hook, params.conn_id, details)


def summarize(hook: Any, conn_id: str, details: dict[str, Any]) -> dict[str, Any]:
    broadcast_id = int(details["broadcast_id"])
    return neutral_summary(hook, conn_id, [broadcast_id], count(details.get("recipients")), invalid_rows(details),
                           {broadcast_id: details.get("status")}, details)
