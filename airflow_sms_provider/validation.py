"""Input checks operators run before the first request that creates or sends anything.

Each check raises :class:`SmsValidationError` naming the field and the offending value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable
from typing import Any

import pendulum

from airflow_sms_provider.exceptions import SmsValidationError


def parse_when(value: Any, field: str) -> dt.datetime | None:
    """A timezone-aware datetime from a datetime, a pendulum value or a (templated) string.

    Naive values are taken as UTC. ``None`` and ``""`` mean "now / not scheduled".
    """
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, str):
        try:
            parsed = pendulum.parse(value.strip(), tz="UTC")
        except Exception:
            raise SmsValidationError(
                f"{field}={value!r} is not a date and time (use ISO 8601, e.g. 2026-01-31T09:00:00+00:00)",
                field=field,
                value=value,
            ) from None
        if isinstance(parsed, dt.datetime):
            return parsed
    raise SmsValidationError(f"{field}={value!r} is not a date and time", field=field, value=value)


def check_window(
    when: dt.datetime, field: str, *, min_ahead: dt.timedelta, max_ahead: dt.timedelta, now: dt.datetime | None = None
) -> None:
    """``when`` must lie between now + min_ahead and now + max_ahead."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if when < now + min_ahead:
        what = "in the past" if when < now else f"less than {min_ahead} ahead"
        raise SmsValidationError(
            f"{field}={when.isoformat()} is {what}; "
            f"it must be at least {min_ahead} after now ({now:%Y-%m-%d %H:%M} UTC)",
            field=field,
            value=when.isoformat(),
        )
    if when > now + max_ahead:
        raise SmsValidationError(
            f"{field}={when.isoformat()} is more than {max_ahead} ahead; the provider accepts at most {max_ahead}",
            field=field,
            value=when.isoformat(),
        )


def check_choice(value: Any, choices: Collection[Any], field: str) -> None:
    if value is not None and value not in choices:
        raise SmsValidationError(
            f"{field}={value!r} is not one of {sorted(choices)}", field=field, value=value
        )


def check_range(value: Any, low: float, high: float, field: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise SmsValidationError(f"{field}={value!r} must be a number from {low} to {high}", field=field, value=value)


def check_text(text: Any, field: str = "text") -> str:
    if not isinstance(text, str) or not text.strip():
        raise SmsValidationError(f"{field} is empty: an SMS needs a text", field=field, value=text)
    return text


NAMED_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_-]+)\}")


def check_values_used(
    text: str, names: Collection[str], row: int | None, *, pattern: re.Pattern[str] = NAMED_PLACEHOLDER,
    field: str = "text",
) -> None:
    """A row brings template values but ``text`` has no placeholder: they would be dropped without a word.

    ``row``: the row number for the message (None when the caller names the row itself).
    """
    if names and not pattern.search(text):
        shown = ", ".join(sorted(str(name) for name in names)[:5])
        where = f"recipients row {row}: " if row is not None else ""
        raise SmsValidationError(
            f"{where}values for {shown} but {field}={text[:40]!r} has no placeholders to put "
            "them in; add them to the text or leave those columns out",
            field=field,
            value=text,
        )


def as_int(value: Any, field: str) -> int:
    """An id that may arrive templated as a string ("123")."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise SmsValidationError(f"{field}={value!r} is not a whole number", field=field, value=value) from None
    if number <= 0:
        raise SmsValidationError(f"{field}={value!r} must be positive", field=field, value=value)
    return number


def id_list(value: Any, field: str, *, not_an_id: str, empty: str) -> list[int]:
    """Positive whole ids from an id, ``"1,2"``, ``"[1, 2]"`` (a rendered template) or an iterable.

    ``not_an_id`` ends the message for an item that is not one ("an id", "a campaign id");
    ``empty`` names what at least one of is needed.
    """
    if isinstance(value, str):
        items: list[Any] = [part.strip("'\"") for part in re.split(r"[\s,\[\]]+", value) if part]
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        items = [value]
    ids = []
    for item in items:
        try:
            number = 0 if isinstance(item, bool) else int(str(item).strip())
        except ValueError:
            number = 0
        if number <= 0:
            raise SmsValidationError(f"{field}: {item!r} is not {not_an_id}", field=field, value=item)
        ids.append(number)
    if not ids:
        raise SmsValidationError(f"{field} is empty: give at least one {empty}", field=field, value=value)
    return ids
