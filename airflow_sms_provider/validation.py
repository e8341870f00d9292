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


# --------------------------------------------------------------------------- send windows, checked once

#: What a task does when it resumes work an earlier try started (a campaign created and filled, some
#: chunks created) and the send time that earlier try was given has passed meanwhile:
#: ``fail`` (default): stop without retry, naming what waits unsent; ``send_now``: send it now;
#: ``keep_offset``: schedule what is still to create as far after now as the send time was after
#: the first check (only where the provider takes a time per request: BSG's start_at, Ogangi's
#: broadcast; a created Mobizon campaign's deferred time cannot be moved).
WINDOW_POLICIES = ("fail", "send_now", "keep_offset")
_WINDOW_KEY = "send_window"


def check_window_policy(value: Any, choices: Collection[str] = WINDOW_POLICIES) -> str:
    """``on_window_passed`` (templated) must be one of ``choices``."""
    policy = "fail" if value in (None, "") else str(value).strip()
    check_choice(policy, choices, "on_window_passed")
    return policy


def check_window_once(
    ckpt: Any,
    when: dt.datetime | None,
    field: str,
    *,
    started: bool,
    min_ahead: dt.timedelta,
    max_ahead: dt.timedelta,
    now: dt.datetime | None = None,
    lateness: dt.timedelta = dt.timedelta(0),
) -> dt.datetime | None:
    """Check a send time before the first paid request, and only then; return the time to send.

    ``ckpt`` (a :class:`~airflow_sms_provider.progress.Checkpoint`): where the first check is
    recorded (``send_window``: the time and when it was checked). ``started``: durable state
    says an earlier try of this task instance started the work (created, filled, some chunks
    sent). Then the time is not judged again against a later clock: it was valid when the
    work began, and refusing now would strand what the earlier try made. What to do when it
    has passed is the caller's ``on_window_passed`` policy (:func:`window_passed`).

    ``lateness``: a time at most this far in the past at the first check means "now" (a
    scheduled run's ``{{ data_interval_end }}`` is minutes old when the task starts): the
    answer is None, and stays None on every later try (recorded as ``as_now``).
    """
    if when is None:
        return None
    if started:
        return None if sent_as_now(ckpt) else when
    now = now or dt.datetime.now(dt.timezone.utc)
    record = {"field": field, "value": when.isoformat(), "checked_at": now.isoformat()}
    if lateness and when <= now and now - when <= lateness:
        ckpt.save(**{_WINDOW_KEY: {**record, "as_now": True}})
        return None
    check_window(when, field, min_ahead=min_ahead, max_ahead=max_ahead, now=now)
    ckpt.save(**{_WINDOW_KEY: record})
    return when


def sent_as_now(ckpt: Any) -> bool:
    """The first check found the send time late by no more than the allowed lateness: "now"."""
    return bool((ckpt.get(_WINDOW_KEY) or {}).get("as_now"))


def window_passed(when: dt.datetime | None, now: dt.datetime | None = None) -> bool:
    """True when a send time is set and not in the future any more."""
    return when is not None and when <= (now or dt.datetime.now(dt.timezone.utc))


def rescheduled(
    ckpt: Any, when: dt.datetime, policy: str, *, min_ahead: dt.timedelta = dt.timedelta(0),
    now: dt.datetime | None = None,
) -> dt.datetime | None:
    """The send time for work still to start after ``when`` has passed: None ("now") for
    ``send_now``; for ``keep_offset`` now plus the lead ``when`` had at its first check (at
    least ``min_ahead``). ``fail`` is the caller's to raise (it knows what waits)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if policy == "send_now":
        return None
    record = ckpt.get(_WINDOW_KEY) or {}
    try:
        checked = dt.datetime.fromisoformat(record["checked_at"])
        lead = when - checked
    except (KeyError, TypeError, ValueError):
        lead = min_ahead
    return now + max(lead, min_ahead)
