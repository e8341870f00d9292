"""A provider-neutral campaign operator: one text to an audience, through any provider.

The connection's type picks the provider's hook (:mod:`airflow_sms_provider.providers`);
the work is that provider's ``run_campaign`` in :mod:`airflow_sms_provider.campaigns`
(the hook's ``campaign_module``), run inside this task: its validation, streaming,
splitting, durable progress and crash safety apply unchanged, and a retry resumes where
it left off. The wait is :mod:`airflow_sms_provider.campaigns.watch`'s.

=========  =================================================================
provider   does what
=========  =================================================================
mobizon    what ``MobizonCampaignOperator`` does (create, upload, send; a
           template campaign when the text has ``{placeholders}``)
bsg        what ``BsgBulkCampaignOperator`` does, or
           ``BsgIndividualCampaignOperator`` when the text has ``{placeholders}``
ogangi     what ``OgangiCreateBroadcastOperator`` does (placeholders filled by Ogangi)
=========  =================================================================
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_sms_provider import status_map
from airflow_sms_provider.campaigns import watch
from airflow_sms_provider.exceptions import SmsCampaignFailedError, SmsValidationError
from airflow_sms_provider.hooks.base import CampaignParams
from airflow_sms_provider.links import SmsCampaignLink, persist_campaign_link
from airflow_sms_provider.providers import PROVIDERS, per_provider, provider_for
from airflow_sms_provider.sensors.campaign import raise_for_event
from airflow_sms_provider.templating import DataFieldsMixin
from airflow_sms_provider.validation import parse_when

# Set by this operator; a provider option cannot change them.
_RESERVED = frozenset({"task_id", "wait_for_completion", "deferrable"})
# BaseOperator's own arguments (pool, retries, ...): accepted in provider_options as the provider
# operators take them, but they mean nothing to the campaign work, which runs in this task.
_TASK_ARGUMENTS = frozenset(inspect.signature(BaseOperator.__init__).parameters) - {"self", "kwargs"}


def options_for(provider_options: Mapping[str, Any] | None, conn_type: str) -> dict[str, Any]:
    """The options for one provider: keys that are not connection types, plus ``options[conn_type]``."""
    options = dict(provider_options or {})
    own = options.get(conn_type) or {}
    if not isinstance(own, Mapping):
        raise SmsValidationError(f"provider_options[{conn_type!r}] must be a mapping of options",
                                 field="provider_options", value=own)
    merged = {k: v for k, v in options.items() if k not in PROVIDERS}
    merged.update(own)
    reserved = sorted(_RESERVED.intersection(merged))
    if reserved:
        raise SmsValidationError(f"provider_options may not set {reserved}: they are this operator's own",
                                 field="provider_options", value=reserved)
    return merged


def when(value: Any, now: dt.datetime | None = None) -> dt.datetime | None:
    """``send_at`` as an aware datetime: a datetime, an ISO string, or a timedelta from now."""
    if isinstance(value, dt.timedelta):
        return (now or dt.datetime.now(dt.timezone.utc)) + value
    return parse_when(value, "send_at")


class SmsCampaignOperator(DataFieldsMixin, BaseOperator):
    """Send one text to an audience through a ``mobizon``, ``bsg`` or ``ogangi`` connection.

    :param conn_id: the connection; its type picks the provider (templated). Switching
        providers is switching this id.
    :param text: the message; ``{name}`` placeholders are filled from each recipient's
        columns on every provider (templated).
    :param recipients: numbers or rows (a list, any iterable, an upstream XCom, or a CSV/XLSX
        path), streamed as each provider's operator does (templated).
    :param sender: the sender: Mobizon's and BSG's alpha name, Ogangi's short code. A mapping by
        connection type gives each provider its own, e.g. ``{"mobizon": "MyShop", "bsg": "MyShop",
        "ogangi": "24365"}`` (templated). ``None``: Mobizon's connection ``default_sender``,
        Ogangi's instance default; BSG requires one.
    :param send_at: when to send: a datetime, an ISO 8601 string or a ``timedelta`` from now
        (templated); ``None`` sends now. Each provider's window applies (Mobizon 1 hour to 14
        days ahead, BSG up to 30 days, Ogangi up to 366 days).
    :param name: the campaign's name (Mobizon, Ogangi; BSG campaigns have none) (templated).
    :param on_invalid: ``fail`` (default) at the first invalid row, or ``skip`` it and report it.
    :param reject_report_path: CSV of every rejected row (local or object storage path) (templated).
    :param wait_for_completion: wait until every campaign is ``done`` (default False).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param poll_interval: seconds between status checks while waiting.
    :param provider_options: further parameters of the provider's operator (see the table in the
        module docstring), e.g. ``{"validity": 24}``; keys named after a connection type apply to
        that provider only: ``{"bsg": {"validity": 24}, "mobizon": {"validity": 1440}}``
        (templated). A separate mapping, not ``**kwargs``, so they cannot be confused with
        BaseOperator's own arguments.

    Returns ``{"provider", "conn_id", "campaign_ids", "accepted", "rejected", "status",
    "campaigns": {id: {"status", "provider_status"}}, "details"}``: ``accepted`` recipients the
    provider took, ``rejected`` rows not sent (invalid here or refused by the provider),
    ``status`` one of pending, running, done, failed, and ``details`` the provider operator's
    own summary.
    """

    template_fields: Sequence[str] = (
        "conn_id", "text", "recipients", "sender", "send_at", "name", "reject_report_path", "provider_options",
    )  # fmt: skip
    operator_extra_links = (SmsCampaignLink(),)

    def __init__(
        self,
        *,
        conn_id: str,
        text: str,
        recipients: Any,
        sender: str | Mapping[str, str] | None = None,
        send_at: dt.datetime | dt.timedelta | str | None = None,
        name: str | None = None,
        on_invalid: str = "fail",
        reject_report_path: str | None = None,
        wait_for_completion: bool = False,
        deferrable: bool | None = None,
        poll_interval: float = 30.0,
        provider_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id, self.text, self.recipients, self.sender = conn_id, text, recipients, sender
        self.send_at, self.name = send_at, name
        self.on_invalid, self.reject_report_path = on_invalid, reject_report_path
        self.wait_for_completion, self.poll_interval = wait_for_completion, poll_interval
        self.deferrable = (
            conf.getboolean("operators", "default_deferrable", fallback=False) if deferrable is None else deferrable
        )
        self.provider_options = provider_options

    def campaign_params(self, conn_type: str) -> CampaignParams:
        """The rendered arguments for one provider (nothing is sent yet)."""
        return CampaignParams(
            task_id=self.task_id, conn_id=self.conn_id, text=self.text, recipients=self.recipients,
            sender=per_provider(self.sender, conn_type), send_at=when(self.send_at), name=self.name,
            on_invalid=self.on_invalid, reject_report_path=self.reject_report_path,
            options={k: v for k, v in options_for(self.provider_options, conn_type).items()
                     if k not in _TASK_ARGUMENTS},
        )

    def execute(self, context: Any) -> dict[str, Any]:
        hook = provider_for(self.conn_id).hook(self.conn_id)
        conn_type = hook.conn_type
        try:
            params = self.campaign_params(conn_type)
            run_campaign = importlib.import_module(hook.campaign_module).run_campaign
            summary = run_campaign(hook, params, context, self.log)
        finally:
            hook.close()
        # Its own link, whatever the provider's work did (run in this task, it fills the same key).
        persist_campaign_link(context, self.conn_id, summary["campaign_ids"], self.log)
        self.log.info("%s: %d accepted, %d rejected, campaigns %s (%s)", conn_type, summary["accepted"],
                      summary["rejected"], summary["campaign_ids"], summary["status"])
        if not self.wait_for_completion or summary["status"] == status_map.DONE:
            return summary
        if summary["status"] == status_map.FAILED:
            raise SmsCampaignFailedError(f"{conn_type}: campaign(s) failed right after sending: {summary['campaigns']}",
                                         provider=conn_type, details=summary)
        if self.deferrable:
            from airflow_sms_provider.triggers.campaign import SmsCampaignTrigger

            self.defer(
                trigger=SmsCampaignTrigger(self.conn_id, conn_type, summary["campaign_ids"], self.poll_interval),
                method_name="execute_complete",
                kwargs={"summary": summary},
            )
        return self._wait_in_process(summary)

    def _wait_in_process(self, summary: dict[str, Any]) -> dict[str, Any]:
        hook = provider_for(self.conn_id).hook(self.conn_id)
        try:
            campaigns = watch.wait(hook, summary["campaign_ids"], self.poll_interval, self.log)
        finally:
            hook.close()
        return {**summary, "status": status_map.DONE, "campaigns": campaigns}

    def execute_complete(self, context: Any, event: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: fail with the provider's reason, or return the summary."""
        raise_for_event(event, summary["provider"], summary.get("campaign_ids"))
        self.log.info("%s: %s", summary["provider"], event.get("message"))
        return {**summary, "status": status_map.DONE, "campaigns": event.get("campaigns") or {}}


__all__ = ["SmsCampaignOperator", "options_for"]
