"""Operators for Ogangi (Messangi MMC): send by file, create or edit a broadcast, and its lifecycle.

Every operator validates its (rendered) input before the first request that
creates or sends anything, and returns a small summary for XCom: ids, counts,
statuses and at most ``max_reported`` examples, never the audience. The send-once and
create-once work is :mod:`airflow_sms_provider.campaigns.ogangi`'s: these operators hand it
their parameters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_sms_provider.campaigns.ogangi import (  # noqa: F401 - summarize_messages: kept importable here
    OgangiBroadcastParams,
    OgangiBroadcastWork,
    OgangiSendByFileParams,
    OgangiSendByFileWork,
    summarize_messages,
)
from airflow_sms_provider.campaigns.run import TaskRuntime, params_of
from airflow_sms_provider.exceptions import (
    SmsConflictError,
    SmsNotFoundError,
)
from airflow_sms_provider.hooks.ogangi import OgangiHook
from airflow_sms_provider.links import OgangiBroadcastLink, persist_campaign_link
from airflow_sms_provider.protocols import ogangi as proto
from airflow_sms_provider.templating import DataFieldsMixin
from airflow_sms_provider.validation import (
    as_int,
    check_choice,
)


class _OgangiOperator(DataFieldsMixin, BaseOperator):
    """Holds the connection id and the hook; subclasses do one step."""

    def __init__(self, *, ogangi_conn_id: str = OgangiHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ogangi_conn_id = ogangi_conn_id

    def hook(self) -> OgangiHook:
        return OgangiHook(self.ogangi_conn_id)


    def runtime(self, context: Any) -> TaskRuntime:
        """What the work needs from this task: its context, log and ids."""
        return TaskRuntime(context, self.log, self.task_id, self.dag_id)


# ------------------------------------------------------------------ send by file


class OgangiSendSmsByFileOperator(_OgangiOperator):
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

    def execute(self, context: Any) -> dict[str, Any]:
        return OgangiSendByFileWork(params_of(OgangiSendByFileParams, self), self.runtime(context)).run()


# ------------------------------------------------------------------ broadcasts


class OgangiCreateBroadcastOperator(_OgangiOperator):
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

    def execute(self, context: Any) -> dict[str, Any]:
        return OgangiBroadcastWork(params_of(OgangiBroadcastParams, self), self.runtime(context)).run()


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
