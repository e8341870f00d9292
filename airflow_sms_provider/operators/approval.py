"""A person approves a paid send after seeing what it will cost: Airflow's human-in-the-loop approval.

``SmsApprovalOperator`` estimates the send first (the connection's hook,
:meth:`~airflow_sms_provider.hooks.base.SmsHook.estimate`: audience size after the send's own
validation and de-duplication, SMS parts per message, the cost, a few filled texts with the numbers
masked; nothing is sent), then asks with the standard provider's ``ApprovalOperator`` (Airflow 3.1+):
"Approve" lets the downstream send run, "Reject" skips it. Put it right before the send, with the
same ``conn_id``, ``text``, ``recipients`` and ``sender``.

On Airflow before 3.1 (no human-in-the-loop operators) building one raises
``AirflowOptionalProviderFeatureException`` naming the requirement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowOptionalProviderFeatureException, BaseOperator

from airflow_sms_provider.estimate import Estimate
from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.operators.campaign import options_for
from airflow_sms_provider.providers import per_provider, provider_for
from airflow_sms_provider.templating import DataFieldsMixin

HITL_REQUIREMENT = (
    "SmsApprovalOperator needs Airflow 3.1+ and apache-airflow-providers-standard with human-in-the-loop "
    "operators (airflow.providers.standard.operators.hitl)"
)

if TYPE_CHECKING:
    from airflow.providers.standard.operators.hitl import ApprovalOperator
    HITL_MISSING: str | None = None
else:
    try:
        from airflow.providers.standard.operators.hitl import ApprovalOperator

        HITL_MISSING = None
    except Exception as exc:  # ImportError (no module) or the provider's own "needs Airflow 3.1+"
        ApprovalOperator = BaseOperator
        HITL_MISSING = f"{HITL_REQUIREMENT}: {exc}"

_BACKTICKS = re.compile(r"`+")
_SHOWN_REJECTED = 5


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def describe(estimate: Estimate, conn_id: str) -> str:
    """The approval body (Markdown): size, parts, cost, a sample of texts. Customer data only inside a
    code block, so a name cannot become a link, markup or a template; rejected rows by row and reason."""
    lines = [
        f"**Audience**: {_count(estimate.recipients, 'recipient')} "
        f"({_count(estimate.rejected, 'row')} rejected, {_count(estimate.duplicates, 'duplicate')} sent once)",
        f"**SMS parts**: {estimate.parts_line()}; {_count(estimate.total_parts, 'part')} in all "
        f"({', '.join(f'{enc}: {n:,}' for enc, n in sorted(estimate.encodings.items()))})",
        f"**Estimated cost**: {estimate.cost_line()}",
        f"**Provider**: {estimate.provider}, connection `{conn_id}`",
    ]
    if estimate.samples:
        shown = "\n".join(f"{s['to']}: {s['text']}" for s in estimate.samples)
        fence = "`" * max(3, 1 + max((len(m) for m in _BACKTICKS.findall(shown)), default=0))
        lines += ["", f"Texts as they will be sent ({len(estimate.samples)} of {estimate.recipients:,}, "
                      "numbers masked):", "", f"{fence}text", shown, fence]
    if estimate.rejected_examples:
        lines += ["", "Rejected rows (not sent):"]
        lines += [f"- row {e['row']}: {e['reason']}" for e in estimate.rejected_examples[:_SHOWN_REJECTED]]
    return "\n".join(lines)


class SmsApprovalOperator(DataFieldsMixin, ApprovalOperator):
    """Ask a person to approve a send, showing its audience size, SMS parts, cost and sample texts.

    :param conn_id: the send's connection (``mobizon``, ``bsg`` or ``ogangi``) (templated).
    :param text: the send's text; ``{name}`` placeholders are filled per row (templated).
    :param recipients: the send's audience, as ``SmsCampaignOperator`` takes it (templated; data
        nested in it is never rendered).
    :param sender: the send's sender, or a mapping by connection type (templated). BSG prices with it.
    :param number_field: the column or key holding the number (default ``recipient``; ``phone``,
        ``number`` and ``msisdn`` are found too).
    :param provider_options: the send's provider options where they change which rows are sent or
        their text (templated): as ``SmsCampaignOperator`` takes them (a key per connection type, or
        plain keys), e.g. ``{"mobizon": {"placeholders_flag": 1}}`` (a row without a value is sent with
        ``{name}`` kept; 2: removed), ``{"bsg": {"reference_field": "order"}}``, or for
        ``OgangiSendSmsByFileOperator`` ``{"ogangi": {"by_file": True, "template_params": [...]}}``.
    :param sample_size: how many filled texts the approver sees (default 3; numbers masked).
    :param max_recipients: fail, without asking, when the audience is larger (nothing is sent).
    :param auto_approve_below_cost: approve without asking when the estimated cost is known and below
        this (in the estimate's currency); an unknown cost is always asked about.
    :param subject: the request's headline (templated); default: size, parts and cost.
    :param body: your own words above the estimate (templated, Markdown).

    The standard provider's ``ApprovalOperator`` arguments apply: ``response_timeout``, ``defaults``
    (the option taken when it passes; leave it unset so that a timeout fails instead of deciding),
    ``assigned_users``, ``notifiers``, ``fail_on_reject``, ``ignore_downstream_trigger_rules``.
    "Reject" skips the downstream tasks (the send): nothing is sent. The estimate is pushed to XCom
    as ``estimate`` (counts, cost, masked samples; never the audience).
    """

    template_fields: Sequence[str] = ("subject", "body", "conn_id", "text", "recipients", "sender",
                                      "provider_options")

    def __init__(
        self,
        *,
        conn_id: str,
        text: str,
        recipients: Any,
        sender: str | Mapping[str, str] | None = None,
        number_field: str = "recipient",
        provider_options: Mapping[str, Any] | None = None,
        sample_size: int = 3,
        max_recipients: int | None = None,
        auto_approve_below_cost: float | None = None,
        subject: str | None = None,
        body: str | None = None,
        **kwargs: Any,
    ) -> None:
        if HITL_MISSING is not None:
            raise AirflowOptionalProviderFeatureException(HITL_MISSING)
        super().__init__(subject=subject or "", body=body, **kwargs)
        self.conn_id, self.text, self.recipients, self.sender = conn_id, text, recipients, sender
        self.number_field, self.sample_size = number_field, sample_size
        self.provider_options = provider_options
        self.max_recipients, self.auto_approve_below_cost = max_recipients, auto_approve_below_cost

    def estimate(self) -> tuple[Estimate, str]:
        """The estimate of the send as rendered; and the provider's connection type."""
        hook = provider_for(self.conn_id).hook(self.conn_id)
        try:
            sender = per_provider(self.sender, hook.conn_type)
            options = options_for(self.provider_options, hook.conn_type)
            return hook.estimate(self.text, self.recipients, sender, number_field=self.number_field,
                                 sample_size=self.sample_size, options=options), hook.conn_type  # fmt: skip
        finally:
            hook.close()

    def _check_thresholds(self) -> None:
        for name in ("max_recipients", "auto_approve_below_cost"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise SmsValidationError(f"{name}={value!r} must be a number >= 0 or None", field=name, value=value)

    def execute(self, context: Any) -> Any:
        self._check_thresholds()
        estimate, _ = self.estimate()
        context["ti"].xcom_push(key="estimate", value=estimate.as_dict())
        self.log.info("Estimate: %s recipients, %s parts, cost %s", estimate.recipients, estimate.total_parts,
                      estimate.cost_line())
        if estimate.recipients == 0:
            raise SmsValidationError(f"recipients: no valid row ({estimate.rejected} rejected): nothing to approve",
                                     field="recipients", value=estimate.rejected)
        if self.max_recipients is not None and estimate.recipients > self.max_recipients:
            raise SmsValidationError(
                f"{estimate.recipients} recipients is more than max_recipients={self.max_recipients}: not asked, "
                "nothing sent", field="max_recipients", value=estimate.recipients,
            )  # fmt: skip
        if (self.auto_approve_below_cost is not None and estimate.cost is not None
                and estimate.cost < self.auto_approve_below_cost):
            self.log.info("Approved without asking: %s is below auto_approve_below_cost=%s", estimate.cost_line(),
                          self.auto_approve_below_cost)
            return {"chosen_options": [self.APPROVE], "params_input": {}, "responded_by_user": None,
                    "auto_approved": True}  # fmt: skip
        cost = "unknown cost" if estimate.cost is None else estimate.cost_line().split(" (")[0]
        self.subject = self.subject or (
            f"Approve SMS send: {_count(estimate.recipients, 'recipient')}, "
            f"{_count(estimate.total_parts, 'part')}, {cost}"
        )
        own = f"{self.body}\n\n" if self.body else ""  # the author's words, rendered
        self.body = own + describe(estimate, self.conn_id)
        return super().execute(context)


__all__ = ["HITL_MISSING", "HITL_REQUIREMENT", "SmsApprovalOperator", "describe"]
