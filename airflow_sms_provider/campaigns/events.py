"""One shape for a trigger's error event, and one reading of it by the task that resumes.

Every trigger of this package ends a failed wait with ``error_event(exc, ...)``::

    {"status": "error", "message": <redacted>, "fatal": bool, "error": <exception class name>, ...}

and every sensor's and deferrable operator's ``execute_complete`` calls
:func:`raise_for_error`: a ``fatal`` event (bad credentials, a campaign deleted at the
provider, bad input) fails the task without retry, any other one lets Airflow retry it.
An event without ``fatal`` (serialized by an older release) counts as not fatal.

It lives in ``campaigns/`` because the shared watch loop (:mod:`.watch`) builds these events
too, and ``campaigns/`` imports nothing above it; ``triggers/events.py`` re-exports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_sms_provider.exceptions import (
    SmsAuthError,
    SmsCampaignFailedError,
    SmsConflictError,
    SmsFatalError,
    SmsNotFoundError,
    SmsProviderError,
    SmsValidationError,
)
from airflow_sms_provider.redaction import redact_text
from airflow_sms_provider.transport import not_found

# Classes an event may name and execute_complete raises again (their constructors take a message only).
_KINDS: Mapping[str, type[SmsProviderError]] = {
    cls.__name__: cls
    for cls in (SmsAuthError, SmsNotFoundError, SmsValidationError, SmsConflictError, SmsCampaignFailedError)
}


def error_event(exc: BaseException, **data: Any) -> dict[str, Any]:
    """The payload of a trigger's event for a wait that ``exc`` ended."""
    return {
        "status": "error",
        "message": redact_text(str(exc)),
        "fatal": isinstance(exc, SmsFatalError),
        "error": type(exc).__name__,
        **data,
    }


def raise_for_error(event: Mapping[str, Any], what: str, provider: str) -> None:
    """Raise what an error event says (nothing for another event): fatal ones without retry."""
    if event.get("status") != "error":
        return
    message = f"{provider}: {what} failed: {event.get('message') or 'no message'}"
    fatal = bool(event.get("fatal"))
    kind = _KINDS.get(str(event.get("error") or ""))
    if kind is None or not fatal:
        kind = SmsFatalError if fatal else SmsProviderError
    raise kind(message, provider=provider)


__all__ = ["error_event", "not_found", "raise_for_error"]
