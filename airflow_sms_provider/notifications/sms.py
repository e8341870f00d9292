"""SmsNotifier: an SMS from a DAG or task callback, through any of the three providers.

::

    from airflow_sms_provider.notifications.sms import SmsNotifier

    alert = SmsNotifier(conn_id="bsg_default", recipients=["+380501234567"], sender="MyShop")
    with DAG(..., on_failure_callback=alert):
        BashOperator(task_id="load", bash_command="...", on_failure_callback=alert)

When sending fails the notifier logs one ERROR line (the reason, with secrets masked) and
returns: an alert that cannot be sent must not hide the original failure, and a traceback
could carry more than the reason. Airflow would not fail the task over it anyway
(Airflow 3.0 swallows notifier errors, 3.3 logs them).
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Generator, Iterable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from airflow.providers.common.compat.connection import get_async_connection
from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseNotifier, redact

from airflow_sms_provider.connections import register_connection_secrets
from airflow_sms_provider.hooks.base import masked_number
from airflow_sms_provider.providers import per_provider, provider_for, provider_named
from airflow_sms_provider.recipients import InvalidPhone, normalize_phone
from airflow_sms_provider.redaction import redact_text
from airflow_sms_provider.templating import DataFieldsMixin

# Renders e.g. "Airflow: etl.load FAILED: ValueError: bad row 7 (run manual__2026-03-01T09:00:00+00:00)".
# Task callbacks name the task; DAG callbacks (they carry a ``reason``) name the DAG.
DEFAULT_MESSAGE = (
    "Airflow: {{ dag.dag_id }}{% if ti and reason is none %}.{{ ti.task_id }}{% endif %} "
    "{{ outcome }} (run {{ run_id }})"
)
DEFAULT_MAX_LENGTH = 300  # fits BSG's UCS-2 limit (335) and two GSM-7 segments
MIN_DIGITS = 9  # the lowest of the providers' limits (BSG); each provider still checks its own

_SPACES = re.compile(r"\s+")

# A module logger, like the hooks': Airflow routes it into the task log on every version.
log = logging.getLogger(__name__)

def _masked(number: str) -> str:
    """A number as logs show it: enough to recognise, not enough to dial."""
    return masked_number(number)


def _numbers(recipients: Any) -> tuple[list[str], list[str]]:
    """(normalised unique numbers, problems) from a list or a comma/space separated string."""
    # Not split on spaces: "+7 701 111 2201" is one number.
    items: Iterable[Any] = re.split(r"[,;\n]", recipients) if isinstance(recipients, str) else recipients or ()
    numbers: list[str] = []
    problems = []
    for item in items:
        item = item.strip() if isinstance(item, str) else item
        if item is None or item == "":
            continue
        try:
            number = normalize_phone(item, min_digits=MIN_DIGITS)
        except InvalidPhone as exc:
            problems.append(f"{str(item)[:20]!r}: {exc.reason}")
            continue
        if number not in numbers:
            numbers.append(number)
    return numbers, problems


def failure_text(context: Mapping[str, Any]) -> str | None:
    """What went wrong: the task's exception, or a failed DAG run's reason (and the task behind it)."""
    exception = context.get("exception")
    if exception is not None:
        if isinstance(exception, BaseException):
            detail = str(exception)
            return f"{type(exception).__name__}: {detail}" if detail else type(exception).__name__
        return str(exception)
    reason = context.get("reason")
    if reason and reason != "success":
        # A DAG callback's ti is the task that decided the run's state.
        task_id = getattr(context.get("ti"), "task_id", None)
        return f"{reason} in {task_id}" if task_id else str(reason)
    return None


def outcome_text(context: Mapping[str, Any], failure: str | None) -> str:
    """How it ended, in words: ``FAILED: <failure>``, ``FAILED, will retry: …``, ``succeeded``, ``skipped``
    (``MISSED ITS DEADLINE`` for a deadline alert).

    A task callback's ``ti.state`` says how the task ended even when the context carries no
    exception (Airflow before 3.3 leaves it out of ``dag.test()`` runs).
    """
    if context.get("deadline") is not None:  # a deadline alert (Airflow 3.1+): the run is late, not ended
        return "MISSED ITS DEADLINE"
    state = str(getattr(context.get("ti"), "state", None) or "") if context.get("reason") is None else ""
    state = state.rsplit(".", 1)[-1].lower()  # an enum's str() may be "TaskInstanceState.FAILED"
    if state == "up_for_retry":
        return f"FAILED, will retry: {failure}" if failure else "FAILED, will retry"
    if failure or state in ("failed", "upstream_failed"):
        return f"FAILED: {failure}" if failure else "FAILED"
    if state == "skipped":
        return "skipped"
    return "succeeded"


def clean_text(text: Any, max_length: int) -> str:
    """The rendered message as it is sent: secrets masked, one line, at most ``max_length`` characters."""
    text = redact_text(str(redact(str(text))))
    text = _SPACES.sub(" ", text).strip()
    if len(text) > max_length:
        text = text[: max(max_length - 3, 1)].rstrip() + "..."  # ASCII dots keep a GSM-7 text GSM-7
    return text


class SmsNotifier(DataFieldsMixin, BaseNotifier):
    """Send an SMS from ``on_failure_callback`` / ``on_success_callback`` (DAGs and tasks), or any callback.

    :param conn_id: a ``mobizon``, ``bsg`` or ``ogangi`` connection; its type picks the provider
        (templated).
    :param recipients: phone numbers in international format: a list, or a string with numbers
        separated by commas, semicolons or new lines (templated). Invalid ones are logged and
        skipped; a number listed twice gets one SMS.
    :param message: the text, a Jinja template rendered with the callback's context (templated).
        Besides Airflow's variables (``dag``, ``ti``, ``run_id``, ``exception``, ``reason``...)
        it can use ``failure`` (``"ValueError: bad row 7"`` for a failed task, ``"task_failure in
        load"`` for a failed DAG run, else empty) and ``outcome`` (``"FAILED: <failure>"``,
        ``"FAILED, will retry: …"``, ``"succeeded"``, ``"skipped"``). The default names the DAG,
        the task, the outcome and the run.
    :param sender: the sender: Mobizon's and BSG's alpha name, Ogangi's short code; or a mapping
        by connection type (``{"bsg": "MyShop", "ogangi": "24365"}``) (templated). ``None``: the
        Mobizon connection's ``default_sender``, the Ogangi instance's default; BSG requires one.
    :param max_length: the text is cut to this many characters (default 300), since an exception
        can be long and every SMS segment costs.

    Sending is the hook's ``send_text``: Mobizon one ``message/sendSmsMessage`` per number, BSG
    one ``sms/send`` campaign, Ogangi one ``sendSMSByFile``. The rendered text goes through Airflow's secrets masker
    before it is sent. Failures are logged (ERROR, secrets masked), never raised.
    """

    template_fields: Sequence[str] = ("conn_id", "recipients", "message", "sender")

    def __init__(
        self,
        *,
        conn_id: str,
        recipients: Sequence[str] | str,
        message: str = DEFAULT_MESSAGE,
        sender: str | Mapping[str, str] | None = None,
        max_length: int = DEFAULT_MAX_LENGTH,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        # Airflow 3.1+ async callbacks (deadline alerts) build the notifier with the context,
        # then await it (see __await__); Airflow 3.0's BaseNotifier takes no context.
        self.context = dict(context or {})  # type: ignore[assignment]  # a plain mapping is all it reads
        if not recipients:
            raise ValueError("SmsNotifier needs at least one phone number in recipients")
        if not isinstance(max_length, int) or max_length < 10:
            raise ValueError(f"max_length={max_length!r}: give a whole number of characters, at least 10")
        self.conn_id, self.recipients, self.message, self.sender = conn_id, recipients, message, sender
        self.max_length = max_length

    def __call__(self, *args: Any) -> None:
        # BaseNotifier renders template fields in place, for good; one notifier object often
        # serves several callbacks (a DAG's and its tasks'), so every call renders a copy.
        BaseNotifier.__call__(copy.copy(self), *args)

    def __await__(self) -> Generator[Any, None, None]:
        # Ours, not BaseNotifier's (3.1+ only, and it renders in place): a rendered copy sends.
        notifier = copy.copy(self)
        context = dict(self.context)
        notifier.render_template_fields(context)
        return notifier.async_notify(context).__await__()

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        # Defaults, so the message can test ``failure``/``reason``/``ti`` in every kind of callback
        # (DAG templates use StrictUndefined); a new dict keeps the caller's context unchanged.
        values = {"dag": None, "ti": None, "run_id": None, "exception": None, "reason": None, **context}
        dag_run = values.get("dag_run")
        if values.get("deadline") is not None and isinstance(dag_run, Mapping):
            # A deadline alert's context (Airflow 3.1+) is only {"dag_run": <the run as JSON>,
            # "deadline": {...}}: the default message still names the DAG and the run.
            dag_stand_in = SimpleNamespace(dag_id=dag_run.get("dag_id"), render_template_as_native_obj=False)
            values["dag"] = values["dag"] or dag_stand_in
            values["run_id"] = values["run_id"] or dag_run.get("run_id")
        values["failure"] = failure_text(values)
        values["outcome"] = outcome_text(values, values["failure"])
        dag = values["dag"]
        if jinja_env is None and dag is not None and not hasattr(dag, "get_template_env"):
            # Airflow 3.3's dag.test() gives DAG callbacks the serialized DAG, which has no
            # template environment: render with a plain sandboxed one instead of failing.
            jinja_env = self.get_template_env()
        # The values templates see, not a task Context: BaseNotifier only reads keys from it.
        # DataFieldsMixin sees to it that recipients nested in a list are numbers, never templates.
        super().render_template_fields(values, jinja_env)  # type: ignore[arg-type]

    def notify(self, context: Any) -> None:
        """Send the rendered message; log (never raise) what could not be sent."""
        try:
            sent, failed = self._send()
        except Exception as exc:
            log.error("SMS notification through connection %r was not sent: %s", self.conn_id, _reason(exc))
            return
        self._log_result(sent, failed)

    async def async_notify(self, context: Any) -> None:
        """:meth:`notify` for async callbacks (the triggerer's deadline alerts, Airflow 3.1+).

        Same checks, text and logs; the connection is read with Airflow's async helper and the
        requests go over the provider's ``httpx.AsyncClient``, so the event loop never blocks.
        """
        try:
            sent, failed = await self._asend()
        except Exception as exc:
            log.error("SMS notification through connection %r was not sent: %s", self.conn_id, _reason(exc))
            return
        self._log_result(sent, failed)

    def _log_result(self, sent: int, failed: list[str]) -> None:
        if failed:
            log.error("SMS notification through connection %r: %d number(s) not reached: %s",
                      self.conn_id, len(failed), "; ".join(_reason(f) for f in failed))
        if sent:
            log.info("SMS notification sent through connection %r to %d number(s)", self.conn_id, sent)

    def _numbers(self) -> tuple[list[str], list[str]]:
        """(numbers, problems), or the reason nothing can be sent (checked before the connection is read)."""
        numbers, problems = _numbers(self.recipients)
        if not numbers:
            raise ValueError(f"no valid phone number in recipients ({'; '.join(problems) or 'empty'})")
        return numbers, problems

    def _text(self) -> str:
        """The text as sent. Called once the connection was read, so every form of its secrets is masked
        (a failure text may quote the key as another client encoded it)."""
        text = clean_text(self.message, self.max_length)
        if not text:
            raise ValueError("the message rendered to an empty text")
        return text

    async def _asend(self) -> tuple[int, list[str]]:
        numbers, problems = self._numbers()
        if not isinstance(self.conn_id, str) or not self.conn_id.strip():
            provider_for(self.conn_id)  # raises its validation error; never reads a connection
        try:
            conn = await get_async_connection(self.conn_id)
        except AirflowNotFoundException:
            raise ValueError(f"connection {self.conn_id!r} is not defined") from None
        register_connection_secrets(conn)  # as provider_for does on the sync path
        text = self._text()
        provider = provider_named(conn.conn_type, self.conn_id)
        client, send_text = provider.hook_class().async_text_sender(conn)
        async with client:
            failed = await send_text(client, numbers, text, per_provider(self.sender, provider.conn_type))
        return len(numbers) - len(failed), [f"invalid {p}" for p in problems] + failed

    def _send(self) -> tuple[int, list[str]]:
        numbers, problems = self._numbers()
        provider = provider_for(self.conn_id)  # reads the connection: its secrets are known from here on
        text = self._text()
        hook = provider.hook(self.conn_id)
        try:
            failed = hook.send_text(numbers, text, per_provider(self.sender, provider.conn_type))
        finally:
            hook.close()
        return len(numbers) - len(failed), [f"invalid {p}" for p in problems] + failed


def _reason(error: Any) -> str:
    return redact_text(str(redact(str(error))))


# The name Airflow's own providers give the functional form (send_slack_notification...).
send_sms_notification = SmsNotifier

__all__ = ["DEFAULT_MESSAGE", "SmsNotifier", "send_sms_notification"]
