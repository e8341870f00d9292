"""Ogangi wire format: URL shape, methods, signatures, XML answers, the shared tables."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from starlette.requests import Request

NAME = "ogangi"
BASE_PATH = "/mmc"
API_PATH = f"{BASE_PATH}/rest/api/"
PATH_PREFIXES = (API_PATH,)

SANDBOX_OGANGI_INSTANCE_ID = 8
SANDBOX_OGANGI_USER = "sandbox"
SANDBOX_OGANGI_PUBLIC_KEY = "sandbox-public-key-0001"
SANDBOX_OGANGI_PRIVATE_KEY = "SBX0-OGNG-4310-909C-C4BBC26F886F"
SANDBOX_OGANGI_SHORTCODES = ("24365", "0000000")
SANDBOX_CLIENT_ID = "SandboxClient01"

# Methods: path parameters (in order) and the HTTP verbs accepted.
METHODS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "tools/sendSMSByFile": (("instanceId",), ("POST",)),
    "getShortcodes": (("instanceId", "userName"), ("GET", "POST")),
    "createBroadcastFromJson": (
        ("instanceId", "broadcastId", "shortcode", "userName", "shortcodeIgnore", "campaignName", "date"),
        ("POST",),
    ),
    "getBroadcast": (("instanceId", "broadcastId"), ("GET", "POST")),
    "suspendBroadcast": (("instanceId", "broadcastId"), ("GET", "POST")),
    "resumeBroadcast": (("instanceId", "broadcastId"), ("GET", "POST")),
    "stopBroadcast": (("instanceId", "broadcastId"), ("GET", "POST")),
    "broadcast": (("instanceId", "broadcastId"), ("DELETE",)),
}
INPUT_NAMES = {"tools/sendSMSByFile": "sendSMS", "broadcast": "deleteBroadcast"}

OK, BAD_SIGNATURE, ERROR = "OK", "BAD_SIGNATURE", "ERROR"
BAD_SIGNATURE_TEXT = "Invalid signature, access denied"
ABSENT = "null"
DATE_FORMAT = "%d-%m-%Y %H:%M"
SCHEDULED, RUNNING, FINISHED, SUSPENDED, STOPPED, DELETED = (
    "SCHEDULED",
    "RUNNING",
    "FINISHED",
    "SUSPENDED",
    "STOPPED",
    "DELETED",
)
BROADCAST_STATUSES = {0: SCHEDULED, 1: RUNNING, 2: FINISHED, 3: SUSPENDED, 4: STOPPED, 5: DELETED}
STATUS_CODES = {name: code for code, name in BROADCAST_STATUSES.items()}
SMS_FILE_COLUMNS = ("number", "from", "carrier", "text", "encoding", "timezone")
ENCODINGS = frozenset({"UTF-8", "ISO-8859-1", "US-ASCII", "GSM", "UCS-2", "UTF-16"})
MESSAGE_DESCRIPTIONS = {
    "SENT_TO_CARRIER": "Sent to Carrier",
    "BAD_TO": "Invalid recipient number",
    "BAD_FROM": "Invalid sender",
    "BAD_ENCODING": "Unsupported encoding",
    "NOT_SENT": "Message not sent: empty text",
}
DEFAULT_CARRIER = "sandbox-carrier"
MAX_KEPT_MESSAGES = 10_000

_NUMBER = re.compile(r"[1-9][0-9]{9,14}")
_POSITIONAL = re.compile(r"\{([0-9]+)\}")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a legacy .xls workbook


class Failure(Exception):
    """An ERROR answer (``status`` may also be BAD_SIGNATURE)."""

    def __init__(self, description: str, status: str = ERROR) -> None:
        super().__init__(description)
        self.description = description
        self.status = status


# ---------------------------------------------------------------- helpers


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def signature(private_key: str, params: list[str]) -> str:
    return hmac.new(private_key.encode(), "/".join(params).encode(), hashlib.sha256).hexdigest()


def _xml_value(tag: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        inner = "".join(_xml_value(k, v) for k, v in value.items())
    elif isinstance(value, list):
        inner = "".join(_xml_value(item_tag, item) for item_tag, item in value)
    else:
        inner = escape(str(value))
    return f"<{tag}>{inner}</{tag}>"


def xml_answer(root: str, method: str, status: str, description: str, result: Any = None) -> bytes:
    """An answer as the docs show it: input, status, description and the optional result."""
    body = (
        f"<input>{escape(method)}</input><status>{status}</status>"
        f"<description>{escape(description)}</description>"
        + (_xml_value("result", result) if result is not None else "")
    )
    if root:
        body = f'<?xml version="1.0" encoding="UTF-8"?><{root}>{body}</{root}>'
    return body.encode("utf-8")


def _render(text: str, pattern: re.Pattern[str], values: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if isinstance(values, dict):
            return str(values[key]) if key in values else match.group(0)
        index = int(key)
        return str(values[index]) if index < len(values) else match.group(0)

    return pattern.sub(replace, text)


def _split_path(request: Request) -> list[str] | None:
    """The segments after ``/mmc/rest/api/``, split before percent-decoding."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    raw_text = raw.decode("latin-1").split("?", 1)[0]
    if not raw_text.startswith(API_PATH):
        return None
    return [unquote(part, encoding="utf-8", errors="replace") for part in raw_text[len(API_PATH) :].split("/")]


def _method_of(segments: list[str]) -> tuple[str, list[str]] | None:
    for length in (2, 1):
        name = "/".join(segments[:length])
        if name in METHODS:
            return name, segments[length:]
    return None
