"""Operators for Ogangi (Messangi MMC): send by file, create or edit a broadcast, and its lifecycle.

Every operator validates its (rendered) input before the first request that
creates or sends anything, and returns a small summary for XCom: ids, counts,
statuses and at most ``max_reported`` examples, never the audience.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_sms_provider.campaigns.lease import fence
from airflow_sms_provider.campaigns.ledger import Digest, lines_digest
from airflow_sms_provider.exceptions import (
    SmsAmbiguousError,
    SmsConflictError,
    SmsFatalError,
    SmsNotFoundError,
    SmsProtocolError,
    SmsProviderError,
    SmsValidationError,
)
from airflow_sms_provider.hooks.ogangi import OgangiHook, build_sms_file, read_upload
from airflow_sms_provider.links import OgangiBroadcastLink, persist_campaign_link
from airflow_sms_provider.progress import Checkpoint
from airflow_sms_provider.protocols import ogangi as proto
from airflow_sms_provider.recipients import (
    DuplicateReport,
    Recipient,
    RejectReport,
    check_template,
    fill_placeholders,
    iter_recipients,
)
from airflow_sms_provider.templating import DataFieldsMixin
from airflow_sms_provider.transport import origin
from airflow_sms_provider.validation import (
    as_int,
    check_choice,
    check_text,
    check_values_used,
    check_window,
    check_window_once,
    parse_when,
)


class _OgangiOperator(DataFieldsMixin, BaseOperator):
    """Holds the connection id and the hook; subclasses do one step."""

    def __init__(self, *, ogangi_conn_id: str = OgangiHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ogangi_conn_id = ogangi_conn_id

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


# ------------------------------------------------------------------ send by file


class OgangiSendSmsByFileOperator(_AudienceMixin, _OgangiOperator):
    """Send SMS with sendSMSByFile, from rows or from a file.

    Give exactly one source:

    :param recipients: the audience: numbers, dicts, an upstream XCom, or a CSV/XLSX
        path read row by row (``iter_recipients``). Columns/keys named ``from``,
        ``carrier``, ``text``, ``encoding`` or ``timezone`` override the defaults
        below per row; the others are template values. The operator writes the
        Ogangi recipient file from them.
    :param file_path: a recipient file already in Ogangi's format (CSV or Excel:
        number, from, carrier, text, encoding, timezone, ``{0}``…), uploaded as it is.

    :param text: message text for rows without one; ``{0}``, ``{1}``… are filled with
        the row's template values in ``template_params`` order.
    :param sender: the ``from`` short/long code for rows without one.
    :param carrier: the carrier for rows without one.
    :param encoding: the SMS encoding for rows without one (default UTF-8).
    :param timezone: the recipients' time zone (IANA name) for rows without one.
    :param template_params: which row fields fill ``{0}``, ``{1}``… (default: every
        other column, in file order).
    :param number_field: column/key of the number (default ``recipient``; ``number``,
        ``phone`` and ``msisdn`` are recognised too).
    :param on_invalid: ``fail`` (default) at the first invalid number, or ``skip`` and report.
    :param reject_report_path: where to write every rejected row as CSV.
    :param max_reported: how many (message id, status) pairs and rejected rows go to XCom.
    :param ogangi_conn_id: the ``ogangi`` connection (default ``ogangi_default``).
    :param check_shortcode: with ``recipients``, check every ``from`` (``sender`` and the rows'
        own) against getShortcodes before uploading: Ogangi answers BAD_FROM only after sending.

    The upload sends SMS, so a retry never repeats it: the result is kept in the
    task's durable state, and a try that died during the upload makes the next
    one fail with instructions instead of sending twice. Without durable state
    (Airflow < 3.3) an unanswered upload fails the task at once, without retry.
    """

    template_fields: Sequence[str] = (
        "recipients", "file_path", "text", "sender", "carrier", "encoding", "timezone", "template_params",
        "number_field", "reject_report_path", "ogangi_conn_id",
    )

    def __init__(
        self,
        *,
        recipients: Any = None,
        file_path: str | None = None,
        text: str | None = None,
        sender: str | None = None,
        carrier: str | None = None,
        encoding: str | None = None,
        timezone: str | None = None,
        template_params: Sequence[str] | None = None,
        number_field: str = "recipient",
        on_invalid: str = "fail",
        reject_report_path: str | None = None,
        max_reported: int = 100,
        check_shortcode: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.check_shortcode = check_shortcode
        self._senders: dict[str, int] = {}  # each ``from`` of the file -> the first row using it
        self.recipients, self.file_path, self.text = recipients, file_path, text
        self.sender, self.carrier, self.encoding, self.timezone = sender, carrier, encoding, timezone
        self.template_params = template_params
        self.number_field, self.on_invalid = number_field, on_invalid
        self.reject_report_path, self.max_reported = reject_report_path, max_reported

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

    def _row(self, recipient: Recipient) -> dict[str, Any]:
        """One row of the Ogangi file from a recipient; template values checked against the text."""
        params = dict(recipient.params)
        row: dict[str, Any] = {key: params.pop(key) for key in proto.SMS_FILE_COLUMNS if key in params}
        row["number"] = recipient.number
        sender = row.get("from") or self.sender
        if sender:
            self._senders.setdefault(str(sender), recipient.row)
        if self.template_params is not None:
            missing = [name for name in self.template_params if name not in params]
            if missing:
                raise SmsValidationError(
                    f"recipients row {recipient.row}: no value for template parameter(s) {missing}",
                    field="template_params",
                    value=missing,
                )
            values = [params[name] for name in self.template_params]
        else:
            values = list(params.values())
        text = row.get("text") or self.text or ""
        if not row.get("text"):  # a row's own text may leave its other columns unused
            names = self.template_params if self.template_params is not None else list(params)
            check_values_used(text, names if values else (), recipient.row, pattern=proto.FILE_PLACEHOLDER)
        needed = [int(index) for index in proto.FILE_PLACEHOLDER.findall(text)]
        if needed and max(needed) >= len(values):
            raise SmsValidationError(
                f"recipients row {recipient.row}: the text uses {{{max(needed)}}} but the row has "
                f"{len(values)} template value(s)",
                field="text",
                value=recipient.row,
            )
        if needed:
            # Filled here, so the row is right whether or not the server fills {0}… itself
            # (the document only points to a "Recipient List" page we do not have).
            row["text"] = proto.FILE_PLACEHOLDER.sub(lambda m: str(values[int(m.group(1))]), text)
        row["params"] = values
        return row

    def _file(self, report: RejectReport) -> tuple[str, bytes, int]:
        self._senders = {}
        defaults = {"from": self.sender, "carrier": self.carrier, "text": self.text,
                    "encoding": self.encoding or proto.DEFAULT_ENCODING, "timezone": self.timezone}
        rows = (self._row(recipient) for recipient in self._audience(report))
        content, count = build_sms_file(rows, defaults=defaults)
        return "recipients.csv", content, count

    def execute(self, context: Any) -> dict[str, Any]:
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
                name, content = read_upload(self.file_path)  # type: ignore[arg-type]
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
        ckpt.save(summary=summary)
        lease.release()
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


class OgangiCreateBroadcastOperator(_AudienceMixin, _OgangiOperator):
    """Create (or edit) a broadcast with createBroadcastFromJson.

    :param text: the message; ``{name}`` placeholders are filled per recipient from
        the other columns/keys of ``recipients`` **here**, before sending: each recipient's
        ``text`` is final and no ``params`` are sent. The document never says the server
        fills ``params`` into the text; a server that did not would send ``{name}`` literally.
    :param server_side_params: opt in to the other reading: send the template text with
        each recipient's ``params`` and let the instance fill them (only if your instance is
        known to do so). Default False.
    :param recipients: numbers, dicts, an upstream XCom, or a CSV/XLSX path.
    :param shortcode: the short/long code to send from; None lets the instance use its
        default (shortcodeIgnore).
    :param campaign_name: the broadcast's name; default ``{dag_id}.{task_id}.{run_id}``,
        so a person can find the broadcast of a run.
    :param scheduled_at: when to start: a datetime, an ISO 8601 string, or a timedelta
        from the moment the task runs; None starts now. Written to the minute.
    :param schedule_timezone: the time zone the instance reads dates in (IANA name;
        default: the connection's ``schedule_timezone`` extra, else UTC).
    :param broadcast_id: edit this existing (still scheduled) broadcast instead of
        creating one.
    :param check_shortcode: check ``shortcode`` against getShortcodes before creating.
    :param number_field: column/key of the number (default ``recipient``; ``number``,
        ``phone``, ``msisdn`` too).
    :param on_invalid: ``fail`` (default) at the first invalid number, or ``skip`` and report.
    :param reject_report_path: where to write every rejected row as CSV.
    :param max_reported: how many rejected rows go to XCom.
    :param ogangi_conn_id: the ``ogangi`` connection (default ``ogangi_default``).

    Returns ``{"broadcast_id", "status", "expected_messages", "recipients",
    "start_date", "shortcode", "campaign_name", "edited", "invalid"}`` and pushes the
    id alone under the XCom key ``broadcast_id`` (``create.output["broadcast_id"]``).

    A retry never creates a second broadcast: the id is kept in the task's durable
    state right after creation. The API has no way to look a broadcast up by name,
    so a try that died while creating makes the next one fail with the campaign name
    to look for instead of creating again. Without durable state (Airflow < 3.3) an
    unanswered create fails the task at once, without retry, naming the broadcast.
    """

    template_fields: Sequence[str] = (
        "text", "recipients", "shortcode", "campaign_name", "scheduled_at", "schedule_timezone", "broadcast_id",
        "number_field", "reject_report_path", "ogangi_conn_id",
    )
    operator_extra_links = (OgangiBroadcastLink(),)

    def __init__(
        self,
        *,
        text: str,
        recipients: Any,
        shortcode: str | None = None,
        campaign_name: str | None = None,
        scheduled_at: dt.datetime | dt.timedelta | str | None = None,
        schedule_timezone: str | None = None,
        broadcast_id: int | str | None = None,
        check_shortcode: bool = True,
        number_field: str = "recipient",
        on_invalid: str = "fail",
        reject_report_path: str | None = None,
        max_reported: int = 20,
        server_side_params: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.server_side_params = server_side_params
        self.text, self.recipients, self.shortcode, self.campaign_name = text, recipients, shortcode, campaign_name
        self.scheduled_at, self.schedule_timezone, self.broadcast_id = scheduled_at, schedule_timezone, broadcast_id
        self.check_shortcode = check_shortcode
        self.number_field, self.on_invalid = number_field, on_invalid
        self.reject_report_path, self.max_reported = reject_report_path, max_reported

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
        """Every recipient as a ``to`` item, placeholders checked row by row before anything is sent."""
        items = []
        for recipient in self._audience(report):
            try:
                check_template(text, recipient.params.keys(), recipient.row)
            except SmsValidationError as err:  # "row 3: ..." -> "recipients row 3: ...", the parameter named
                raise SmsValidationError(f"recipients {err}", field=err.field, value=err.value) from None
            check_values_used(text, recipient.params.keys(), recipient.row)
            if self.server_side_params:
                items.append(proto.broadcast_recipient(recipient.number, text, recipient.params))
            else:  # filled here: right whether or not the instance fills params (it is not documented)
                items.append(proto.broadcast_recipient(recipient.number, fill_placeholders(text, recipient.params)))
        return items

    def execute(self, context: Any) -> dict[str, Any]:
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
        persist_campaign_link(context, self.ogangi_conn_id, broadcast_id, self.log)
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


class OgangiBroadcastActionOperator(_OgangiOperator):
    """Suspend, resume, stop or delete a broadcast, once.

    :param action: ``suspend``, ``resume``, ``stop`` or ``delete``.
    :param broadcast_id: the broadcast (templated, e.g. ``create.output["broadcast_id"]``).
    :param missing_ok: for ``delete``: succeed when the broadcast is already gone
        (default True, so a retry after a lost answer succeeds).
    :param ogangi_conn_id: the ``ogangi`` connection (default ``ogangi_default``).

    The broadcast is read first: when it is already where the action leads
    (SUSPENDED for suspend; SCHEDULED, RUNNING or FINISHED for resume; STOPPED for
    stop) nothing is called. A FINISHED broadcast counts as suspended too: it has
    nothing left to send, so a hold that comes after its start is not an error (a
    warning says so, and ``status`` in the result is FINISHED). A state conflict
    reported by Ogangi fails the task without retry. Returns ``{"broadcast_id", "action", "changed", "status",
    "sent_messages", "expected_messages"}``.
    """

    template_fields: Sequence[str] = ("action", "broadcast_id", "ogangi_conn_id")
    operator_extra_links: tuple[OgangiBroadcastLink, ...] = (OgangiBroadcastLink(),)
    DONE: Mapping[str, frozenset[str]] = {
        # FINISHED: nothing left to send, which is what a hold is for (a late suspend must not fail a run).
        "suspend": frozenset({proto.SUSPENDED, proto.FINISHED}),
        "resume": frozenset({proto.SCHEDULED, proto.RUNNING, proto.FINISHED}),
        "stop": frozenset({proto.STOPPED}),
    }

    def __init__(self, *, action: str, broadcast_id: int | str, missing_ok: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.action, self.broadcast_id, self.missing_ok = action, broadcast_id, missing_ok

    def execute(self, context: Any) -> dict[str, Any]:
        check_choice(self.action, proto.ACTIONS, "action")
        broadcast_id = as_int(self.broadcast_id, "broadcast_id")
        if self.action != "delete":  # a deleted broadcast has no page
            persist_campaign_link(context, self.ogangi_conn_id, broadcast_id, self.log)
        hook = self.hook()
        try:
            if self.action == "delete":
                return self._delete(hook, broadcast_id)
            return self._change(hook, broadcast_id)
        finally:
            hook.close()

    def _summary(self, broadcast_id: int, changed: bool, data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "broadcast_id": broadcast_id,
            "action": self.action,
            "changed": changed,
            "status": data.get("statusName"),
            "sent_messages": data.get("sentMessages"),
            "expected_messages": data.get("expectedMessages"),
        }

    def _change(self, hook: OgangiHook, broadcast_id: int) -> dict[str, Any]:
        done = self.DONE[self.action]
        before = hook.get_broadcast(broadcast_id)
        if before.get("statusName") in done:
            self._nothing_to_do(broadcast_id, before)
            return self._summary(broadcast_id, False, before)
        try:
            hook.broadcast_action(self.action, broadcast_id)
        except SmsConflictError:
            # A retried call whose first attempt went through reports a conflict: check.
            after = hook.get_broadcast(broadcast_id)
            if after.get("statusName") not in done:
                raise
            self._nothing_to_do(broadcast_id, after)
            return self._summary(broadcast_id, False, after)
        after = hook.get_broadcast(broadcast_id)
        self.log.info("Broadcast %s: %s -> %s", broadcast_id, before.get("statusName"), after.get("statusName"))
        return self._summary(broadcast_id, True, after)

    def _nothing_to_do(self, broadcast_id: int, data: Mapping[str, Any]) -> None:
        status = data.get("statusName")
        if self.action == "suspend" and status == proto.FINISHED:
            self.log.warning("Broadcast %s already FINISHED (%s of %s messages sent): nothing left to suspend",
                             broadcast_id, data.get("sentMessages"), data.get("expectedMessages"))
        else:
            self.log.info("Broadcast %s is already %s: nothing to %s", broadcast_id, status, self.action)

    def _delete(self, hook: OgangiHook, broadcast_id: int) -> dict[str, Any]:
        try:
            hook.delete_broadcast(broadcast_id)
        except SmsNotFoundError:
            if not self.missing_ok:
                raise
            self.log.info("Broadcast %s does not exist (already deleted)", broadcast_id)
            return {"broadcast_id": broadcast_id, "action": "delete", "changed": False, "status": None}
        return {"broadcast_id": broadcast_id, "action": "delete", "changed": True, "status": proto.DELETED}


class OgangiSuspendBroadcastOperator(OgangiBroadcastActionOperator):
    """Suspend a scheduled or running broadcast (suspendBroadcast); see :class:`OgangiBroadcastActionOperator`.

    A broadcast that has already FINISHED is left as it is (nothing left to send): the task succeeds
    with ``changed`` False and ``status`` FINISHED, and logs a warning.

    :param broadcast_id: the broadcast (templated, e.g. ``create.output["broadcast_id"]``).
    :param ogangi_conn_id: the ``ogangi`` connection (default ``ogangi_default``).
    """

    template_fields: Sequence[str] = ("broadcast_id", "ogangi_conn_id")

    def __init__(self, *, broadcast_id: int | str, **kwargs: Any) -> None:
        super().__init__(action="suspend", broadcast_id=broadcast_id, **kwargs)


class OgangiResumeBroadcastOperator(OgangiBroadcastActionOperator):
    """Resume a suspended broadcast (resumeBroadcast); see :class:`OgangiBroadcastActionOperator`.

    :param broadcast_id: the broadcast (templated, e.g. ``create.output["broadcast_id"]``).
    :param ogangi_conn_id: the ``ogangi`` connection (default ``ogangi_default``).
    """

    template_fields: Sequence[str] = ("broadcast_id", "ogangi_conn_id")

    def __init__(self, *, broadcast_id: int | str, **kwargs: Any) -> None:
        super().__init__(action="resume", broadcast_id=broadcast_id, **kwargs)


class OgangiStopBroadcastOperator(OgangiBroadcastActionOperator):
    """Stop a broadcast for good (stopBroadcast); see :class:`OgangiBroadcastActionOperator`.

    :param broadcast_id: the broadcast (templated, e.g. ``create.output["broadcast_id"]``).
    :param ogangi_conn_id: the ``ogangi`` connection (default ``ogangi_default``).
    """

    template_fields: Sequence[str] = ("broadcast_id", "ogangi_conn_id")

    def __init__(self, *, broadcast_id: int | str, **kwargs: Any) -> None:
        super().__init__(action="stop", broadcast_id=broadcast_id, **kwargs)


class OgangiDeleteBroadcastOperator(OgangiBroadcastActionOperator):
    """Delete a broadcast (HTTP DELETE); see :class:`OgangiBroadcastActionOperator`.

    :param broadcast_id: the broadcast (templated, e.g. ``create.output["broadcast_id"]``).
    :param missing_ok: succeed when the broadcast is already gone (default True).
    :param ogangi_conn_id: the ``ogangi`` connection (default ``ogangi_default``).
    """

    template_fields: Sequence[str] = ("broadcast_id", "ogangi_conn_id")
    operator_extra_links = ()  # a deleted broadcast has no page

    def __init__(self, *, broadcast_id: int | str, missing_ok: bool = True, **kwargs: Any) -> None:
        super().__init__(action="delete", broadcast_id=broadcast_id, missing_ok=missing_ok, **kwargs)
