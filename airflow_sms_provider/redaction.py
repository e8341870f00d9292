"""Keep API keys, private keys and tokens out of log lines, exceptions and reprs.

Two layers: every secret a hook reads is registered with Airflow's secrets masker
(task logs), and anything this package formats itself (URLs in errors, httpx's own
"HTTP Request: ..." INFO line) goes through :func:`redact_text` first, which also
covers code running outside a task where Airflow's masker is not installed.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

MASK = "***"

# Query parameters that carry credentials on the wire, whatever their value.
_SECRET_PARAMS = re.compile(r"(?i)([?&](?:apikey|api_key|key|token|access_token|password)=)[^&#\s\"']*")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-_.=+/]+")

_lock = threading.Lock()
_known: set[str] = set()
# Shorter values would mask ordinary words; real keys are far longer.
_MIN_SECRET_LEN = 6


def register_secret(value: str | None) -> None:
    """Remember ``value`` so it is masked everywhere from now on (and tell Airflow's masker)."""
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    with _lock:
        _known.add(value)
    try:
        from airflow.providers.common.compat.sdk import mask_secret

        mask_secret(value)
    except Exception:  # pragma: no cover - outside Airflow the local masking still applies
        pass


def redact_text(text: str, extra: Iterable[str] = ()) -> str:
    """Return ``text`` with credential query values, bearer tokens and known secrets masked."""
    text = _SECRET_PARAMS.sub(rf"\1{MASK}", text)
    text = _BEARER.sub(rf"\1{MASK}", text)
    with _lock:
        secrets = sorted({*_known, *(s for s in extra if s and len(s) >= _MIN_SECRET_LEN)}, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with :func:`redact_text` before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_installed = False


def install_log_filters() -> None:
    """Attach the filter to the loggers that print request URLs (httpx, httpcore)."""
    global _installed
    if _installed:
        return
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).addFilter(RedactingFilter())
    _installed = True
