"""One small exception hierarchy shared by all providers.

Airflow decides retries by class: ``AirflowFailException`` fails the task at once,
any other ``AirflowException`` lets Airflow retry it. Every error here is one or
the other on purpose, so an operator can simply let it propagate.

Every error here is redacted once, where it is made: the constructor passes the
message, ``details`` (and a validation error's ``value``) through
:mod:`airflow_sms_provider.redaction`, and scrubs the exception being handled when
it is raised (the httpx error it wraps, with the request URL that carries Mobizon's
API key), so ``str``, ``repr``, ``args``, tracebacks and trigger events built from
it show no key or token, whoever echoed it.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_sms_provider.redaction import redact_text, redact_value, scrub_handled_exception


class SmsProviderError(AirflowException):
    """Something went wrong talking to an SMS provider; a task retry may fix it."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        code: int | str | None = None,
        details: Any = None,
    ) -> None:
        scrub_handled_exception()  # the httpx error (or echo) this one is raised from
        super().__init__(redact_text(str(message)))
        self.provider = provider
        self.code = code
        self.details = redact_value(details)


class SmsFatalError(SmsProviderError, AirflowFailException):
    """A failure that repeating the same call cannot fix: the task fails without retry."""


class SmsAuthError(SmsFatalError):
    """Wrong or blocked credentials, or a bad request signature."""


class SmsWrongDomainError(SmsAuthError):
    """The account lives on another regional API domain (Mobizon code 13)."""

    def __init__(self, message: str, *, domain: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.domain = domain


class SmsValidationError(SmsFatalError):
    """Bad input, reported by us before sending or by the provider.

    ``field`` and ``value`` name what was wrong; ``details`` holds the provider's
    per-field messages when there are any.
    """

    def __init__(self, message: str, *, field: str | None = None, value: Any = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.field = field
        self.value = redact_value(value)


class SmsNotFoundError(SmsFatalError):
    """The campaign, message or task does not exist (or is not this account's)."""


class SmsConflictError(SmsFatalError):
    """The object is in a state that forbids the operation (e.g. deleting a sent campaign)."""


class SmsRetryableError(SmsProviderError):
    """A transient condition: the same call may succeed after a pause."""


class SmsRateLimitedError(SmsRetryableError):
    """The provider asked us to slow down."""


class SmsLockedError(SmsRetryableError):
    """The object is busy (Mobizon code 10: another process is saving the campaign)."""


class SmsServerError(SmsRetryableError):
    """HTTP 5xx, a general service error, or a connection failure before the request left."""


class SmsAmbiguousError(SmsProviderError):
    """A call that costs money may or may not have been carried out (e.g. a timeout after it left).

    It is never retried blindly: the caller reconciles by looking the object up.
    """


class SmsProtocolError(SmsProviderError):
    """The provider answered with something that is not its documented format."""


class SmsCampaignFailedError(SmsFatalError):
    """The campaign reached a final state that is a failure (declined, stopped, rejected task)."""


class SmsNotSupportedError(SmsFatalError):
    """The provider's API has no call for what was asked (e.g. Ogangi's per-recipient delivery reports)."""
