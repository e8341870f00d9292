"""BSG request validation: what the spec allows in a campaign request, field by field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from typing import Any, TypeGuard

from airflow_sms_provider.sandbox.bsg.state import BsgState
from airflow_sms_provider.sandbox.bsg.wire import (
    _DIGITS,
    _FIELD_PLACEHOLDER,
    _PRINTABLE,
    _REFERENCE,
    MAX_AHEAD,
    MAX_ITEMS,
    PAST_TOLERANCE,
    PHONE_DIGITS,
    SENDER_ALPHA_MAX,
    SENDER_MIN,
    SENDER_NUMERIC_MAX,
    TARIFF,
    TARIFF_NOT_FOUND,
    TEXT_LIMITS,
    VALIDITY,
    Errors,
    Reject,
    _is_int,
    _parse_ts,
    encoding_of,
)


def _check_sender(value: Any, key: str, errors: Errors) -> None:
    if not isinstance(value, str) or not value.strip():
        errors.add(key, "This value should not be blank.")
    elif _DIGITS.fullmatch(value):
        if not SENDER_MIN <= len(value) <= SENDER_NUMERIC_MAX:
            errors.add(key, "A numeric sender name should have 3 to 15 digits.")
    elif not _PRINTABLE.fullmatch(value) or not SENDER_MIN <= len(value) <= SENDER_ALPHA_MAX:
        errors.add(key, "An alphanumeric sender name should have 3 to 11 Latin letters, digits, symbols or spaces.")


def _check_text(value: Any, key: str, errors: Errors) -> None:
    if not isinstance(value, str) or not value.strip():
        errors.add(key, "This value should not be blank.")
        return
    encoding, length = encoding_of(value)
    if length > TEXT_LIMITS[encoding]:
        errors.add(key, f"This value is too long. It should have {TEXT_LIMITS[encoding]} characters or less.")


def _check_phone(value: Any, key: str, errors: Errors) -> None:
    if not _is_int(value):
        errors.add(key, "This value should be of type integer.")
        return
    digits = len(str(value)) if value > 0 else 0
    if digits < PHONE_DIGITS[0]:
        errors.add(key, f"This value is too short. It should have {PHONE_DIGITS[0]} characters or more.")
    elif digits > PHONE_DIGITS[1]:
        errors.add(key, f"This value is too long. It should have {PHONE_DIGITS[1]} characters or less.")


def _check_reference(value: Any, key: str, seen: set[str], errors: Errors) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not _REFERENCE.fullmatch(value):
        errors.add(key, "This value is not valid.")
    elif value in seen:
        errors.add(key, "This value is already used in the request.")
    else:
        seen.add(value)


def _check_range(value: Any, key: str, bounds: tuple[int, int], errors: Errors) -> None:
    if value is None:
        return
    if not _is_int(value):
        errors.add(key, "This value should be of type integer.")
    elif not bounds[0] <= value <= bounds[1]:
        errors.add(key, f"This value should be between {bounds[0]} and {bounds[1]}.")


def _check_count(items: Any, key: str, errors: Errors) -> TypeGuard[list[Any]]:
    if not isinstance(items, list):
        errors.add(key, "This value should be of type array.")
        return False
    if not items:
        errors.add(key, "This collection should contain 1 element or more.")
        return False
    if len(items) > MAX_ITEMS:
        errors.add(key, f"This collection should contain {MAX_ITEMS} elements or less.")
        return False
    return True


def _options(body: Mapping[str, Any], now: datetime, errors: Errors, zone: tzinfo) -> dict[str, Any]:
    """validity, tariff_code, start_at and callback_url of any campaign request; a start_at
    without an offset is the account's wall time (``zone``)."""
    _check_range(body.get("validity"), "validity", VALIDITY, errors)
    _check_range(body.get("tariff_code"), "tariff_code", TARIFF, errors)
    callback = body.get("callback_url")
    if callback is not None and (not isinstance(callback, str) or len(callback) > 100):
        errors.add("callback_url", "This value is too long. It should have 100 characters or less.")
    start_at = None
    raw = body.get("start_at")
    if raw is not None:
        start_at = _parse_ts(raw, zone)
        if start_at is None:
            errors.add("start_at", "This value is not a valid datetime.")
        elif start_at < now - PAST_TOLERANCE:
            errors.add("start_at", "The date of sending cannot be in the past.")
        elif start_at > now + MAX_AHEAD:
            errors.add("start_at", "Maximum date for scheduling is 30 days.")
    return {"validity": body.get("validity"), "tariff_code": body.get("tariff_code"), "start_at": start_at,
            "callback_url": callback}


def _check_tariffs(st: BsgState, codes: Iterable[Any]) -> None:
    connected = set(st.cfg("tariffs"))
    if any(code is not None and code not in connected for code in codes):
        raise Reject(422, {"message": TARIFF_NOT_FOUND, "errors": []})


def _fill(text: str, contact: Mapping[str, Any]) -> str:
    """send-groups: ``{field_id}`` (a numeric custom-field id, the only form the documents give)
    takes the contact's value of that field; anything else, ``{name}`` too, stays as written."""
    fields = contact.get("fields") or {}
    return _FIELD_PLACEHOLDER.sub(lambda m: str(fields.get(m.group(1), m.group(0))), text)
