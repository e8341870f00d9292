"""Reading an Airflow Connection into the few settings every hook needs."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.redaction import register_secret

DEFAULT_TIMEOUT = 30.0
# No provider document names the zone scheduled times are read in; UTC unless the
# connection's ``timezone`` extra says the account reads them in another (docs/connections.md).
DEFAULT_TIMEZONE = "UTC"

log = logging.getLogger(__name__)

# An extra whose name holds one of these is a secret (``report_salt_secret``, ``webhook_secret``...): Airflow's
# own rule for extras (``secret``, ``token``, ``password``...) plus ``salt``, which it does not know.
SECRET_EXTRA_WORDS = ("secret", "salt", "password", "passwd", "passphrase", "token", "private_key", "api_key",
                      "apikey", "authorization", "credential")


def is_secret_extra(name: str) -> bool:
    """Whether the connection extra ``name`` holds a secret (masked everywhere once the connection is read)."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_EXTRA_WORDS)


def register_connection_secrets(conn: Any) -> None:
    """Mask, in every form, the Password field and every secret extra of ``conn`` from now on.

    Called wherever the package reads a connection (every hook's and trigger's settings, the webhook
    receiver), so a secret the task does not use itself (a report's salt read by a campaign task, the
    webhook secret read by a hook) is masked too: in the exceptions this package raises and, through
    Airflow's masker, in every log line of the task or the triggerer.
    """
    password = getattr(conn, "password", None)
    if isinstance(password, str):
        register_secret(password)
        register_secret(password.strip())
    try:
        extra = conn.extra_dejson or {}
    except Exception:  # an unreadable extra: the settings that need it say so themselves
        return
    if not isinstance(extra, dict):
        return
    for name, value in extra.items():
        if isinstance(value, str) and is_secret_extra(str(name)):
            register_secret(value)
            register_secret(value.strip())


def base_url(host: str | None, port: int | None = None, *, default: str | None = None, field: str = "host") -> str:
    """Build the API base URL from the connection's Host (and Port).

    ``api.mobizon.kz`` becomes ``https://api.mobizon.kz``; a full URL with scheme,
    port and path is kept as written, so the sandbox (``http://127.0.0.1:8765``) and
    proxies work. Plain http is used only when the URL says so.
    """
    raw = (host or "").strip() or (default or "")
    if not raw:
        raise SmsValidationError(f"connection {field} is empty: set the API domain", field=field, value=host)
    if "://" not in raw:
        raw = f"https://{raw}"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SmsValidationError(
            f"connection {field} {host!r} is not a domain or an http(s) URL", field=field, value=host
        )
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def is_loopback(hostname: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1): where plain http stays on the machine."""
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def as_bool(value: Any, default: bool) -> bool:
    """Read a boolean extra the way the UI and env-var URIs write it ("true", "0", True...)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in ("0", "false", "no", "off")


def as_float(value: Any, default: float, field: str) -> float:
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SmsValidationError(
            f"connection extra {field}={value!r} is not a number", field=field, value=value
        ) from None
    if number <= 0:
        raise SmsValidationError(f"connection extra {field}={value!r} must be positive", field=field, value=value)
    return number


def as_zone(value: Any, field: str = "timezone") -> ZoneInfo:
    """The ``timezone`` extra as a zone (IANA name, e.g. Asia/Almaty); empty: UTC."""
    name = DEFAULT_TIMEZONE if value is None or str(value).strip() == "" else str(value).strip()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SmsValidationError(
            f"connection extra {field}={value!r} is not an IANA time zone (e.g. Asia/Almaty, UTC)",
            field=field, value=value,
        ) from None


@dataclass(frozen=True)
class HttpSettings:
    """What every provider's client needs from the connection besides credentials."""

    base_url: str
    timeout: float = DEFAULT_TIMEOUT
    verify: bool = True

    @classmethod
    def from_connection(cls, conn: Any, default_host: str | None = None) -> HttpSettings:
        extra = conn.extra_dejson or {}
        settings = cls(
            base_url=base_url(conn.host, conn.port, default=default_host),
            timeout=as_float(extra.get("timeout"), DEFAULT_TIMEOUT, "timeout"),
            verify=as_bool(extra.get("verify_ssl"), True),
        )
        # Both are allowed (the sandbox, a proxy on a private network, a test endpoint), but the
        # credentials can then be read on the way: say so once per connection read, in the task log.
        parts = urlsplit(settings.base_url)
        conn_id = getattr(conn, "conn_id", None)
        if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            log.warning("connection %r uses plain http to %s: its API key or token crosses the network "
                        "unencrypted; use https unless this is a trusted proxy", conn_id, parts.hostname)
        elif parts.scheme == "https" and not settings.verify:
            log.warning("connection %r: verify_ssl is off, so anyone on the path can read its API key", conn_id)
        return settings
