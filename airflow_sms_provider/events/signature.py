"""Mobizon's webhook signature (reference/mobizon/_webhooks-06-signature.md).

``sign = sha1("eventId|attempt|eventCreateTs|secretKey")`` as lowercase hex. The values are
joined as PHP's ``.`` operator would join the decoded JSON values: integers in decimal,
strings as they are.
"""

from __future__ import annotations

import hashlib
import hmac


def mobizon_sign(event_id: int | str, attempt: int | str, event_create_ts: str, secret: str) -> str:
    """The ``sign`` Mobizon computes for one delivery attempt of one event."""
    text = f"{event_id}|{attempt}|{event_create_ts}|{secret}"
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def mobizon_sign_ok(event_id: int | str, attempt: int | str, event_create_ts: str, secret: str, sign: str) -> bool:
    """Whether ``sign`` is the signature of these values (constant-time, as ``hash_equals``)."""
    expected = mobizon_sign(event_id, attempt, event_create_ts, secret)
    return hmac.compare_digest(expected, sign.lower())
