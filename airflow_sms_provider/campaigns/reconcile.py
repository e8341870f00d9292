"""Looking a task's work up again at the provider, and verifying it before adopting it.

Two rules:

* **The provider's truth over the record.** Where the provider can say what a campaign
  holds (Mobizon ``message/list`` of a campaign; BSG messages of a campaign), a resume
  that cannot trust positions reads it back instead of trusting the durable record alone.
* **Verify before adopting.** A campaign found again (by a tag, by a reference_id) is
  adopted only when it is what this task would have made: same text, same sender, the
  same recipients (and reference_ids). Otherwise :class:`SmsFatalError` (no retry),
  naming both, because the alternatives are reporting success for work that did not
  happen, or sending a second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from airflow_sms_provider.exceptions import SmsFatalError
from airflow_sms_provider.hooks.base import masked_number


def _clip(value: Any, limit: int = 60) -> str:
    text = str(value)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


# ------------------------------------------------------------------ Mobizon


def mobizon_numbers(hook: Any, campaign_id: int, *, concurrency: int = 4) -> set[int]:
    """The numbers a Mobizon campaign holds (``message/list`` by campaign id), as ints.

    100 messages a page (Mobizon's largest), ``concurrency`` pages in flight; about 70
    bytes of memory a number.
    """
    return {int(item["to"]) for item in hook.iter_messages({"campaignIds": [campaign_id]}, concurrency=concurrency)}


def check_mobizon_audience(hook: Any, campaign_id: int, audience: Iterable[int | str], status: Any = None
                           ) -> set[int]:
    """Read back what an earlier try's Mobizon campaign holds and compare it with the audience read now.

    Called before anything more is uploaded or sent to a campaign this task made earlier
    (recorded, found by its tag, or filled by an upload whose answer was lost). Returns the
    numbers it holds (all of them in the audience): the caller uploads only the others.
    A campaign holding numbers the audience no longer has raises :class:`SmsFatalError`
    (no retry): sending it would message them, and no API call removes a recipient.
    """
    held = mobizon_numbers(hook, campaign_id)
    extra = held - {int(number) for number in audience}
    if extra:
        examples = ", ".join(masked_number(str(number)) for number in sorted(extra)[:3])
        raise SmsFatalError(
            f"Mobizon campaign {campaign_id} ({status or 'not sent'}), filled by an earlier try of this task, "
            f"holds {len(extra):,} number(s) (of {len(held):,}) that are not in this try's audience (e.g. "
            f"{examples}): the audience changed between tries after recipients were uploaded. Not uploading or "
            "sending anything (sending it would message numbers no longer in the audience); check the campaign "
            "(delete it to start again), then clear this task",
            provider="mobizon",
        )
    return held


def verify_mobizon_campaign(campaign: Mapping[str, Any], fields: Mapping[str, Any], default_sender: str | None
                            ) -> None:
    """Refuse to adopt a Mobizon campaign whose text, sender or type is not what this task would create."""
    wanted = {
        # Links shortened by Mobizon change the stored text: compare it only when they are not.
        "text": None if fields.get("shorten_links") else fields.get("text"),
        "from": fields.get("sender") or default_sender,
        "type": fields.get("campaign_type"),
    }
    differ = []
    for key, value in wanted.items():
        held = campaign.get(key)
        if value in (None, "") or held in (None, ""):
            continue  # not set here (the account's default) or not reported: nothing to compare
        if str(held) != str(value):
            differ.append(f"{key} {_clip(held)} (this task: {_clip(value)})")
    if differ:
        raise SmsFatalError(
            f"Mobizon campaign {campaign.get('id')} ({_clip(campaign.get('name'))}, {campaign.get('commonStatus')}) "
            f"was made by an earlier try of this task but has {'; '.join(differ)}: the task's parameters changed "
            "between tries. Not adopting it and not creating another (which could message the same numbers "
            "twice); check or delete that campaign, then clear this task",
            provider="mobizon",
        )


# ------------------------------------------------------------------ BSG


#: What this task gives a phone: (reference_id, text, sender); a text or sender of None is not compared.
Expected = tuple[str | None, str | None, str | None]


def verify_bsg_found(
    campaign_id: int, messages: Iterable[Mapping[str, Any]], expect: Callable[[int], Expected | None], *, chunk: int,
) -> list[int]:
    """Refuse to adopt BSG campaign ``campaign_id``, found again by a reference_id, unless every
    message in it is one this task would send; its phones when it is.

    ``expect(phone)``: the reference_id, text and sender this task gives ``phone`` (the
    reference_id of a phone outside the current chunk is derived from the run and the phone),
    or None when this task would not give that phone one. The campaign may hold only part of
    the chunk, and phones of other chunks (an earlier try read the audience in another order):
    what it holds is adopted and the rest is sent. A message with another reference_id, text
    or sender means another run or other parameters: adopting it could leave phones without
    the message this task was asked to send.
    """
    phones: list[int] = []
    problems: list[str] = []
    for message in messages:
        phone, ref = int(message.get("phone") or 0), message.get("reference_id")
        phones.append(phone)
        if len(problems) >= 3:
            continue
        want = expect(phone)
        if want is None or want[0] != ref:
            mine = f", this task gives it {want[0]!r}" if want is not None else ""
            problems.append(f"message {message.get('id')} to {phone} has reference_id {ref!r}{mine}")
            continue
        if want[1] is not None and message.get("text") not in (None, want[1]):
            problems.append(f"text {_clip(message.get('text'))} (this task: {_clip(want[1])})")
        if want[2] is not None and message.get("sender") not in (None, want[2]):
            problems.append(f"sender {_clip(message.get('sender'))} (this task: {_clip(want[2])})")
    if problems:
        raise SmsFatalError(
            f"chunk {chunk + 1}: BSG campaign {campaign_id} ({len(phones):,} messages) holds this task's "
            f"reference_ids but is not what this task would create: {'; '.join(dict.fromkeys(problems))}. "
            "An earlier run with other parameters, or reused reference_ids. Not adopting it (its phones would "
            "not get this task's message) and not sending them again (BSG refuses the repeated ids); check that "
            "campaign, then give these rows new reference_ids or clear the task's state",
            provider="bsg",
        )
    return phones


def outside_audience(held: Mapping[int, Iterable[int]], in_audience: Callable[[int], bool]) -> dict[int, list[int]]:
    """The phones each campaign holds that the audience read now does not, by campaign id (empty lists kept)."""
    return {campaign_id: [p for p in phones if not in_audience(p)] for campaign_id, phones in held.items()}


def audience_changed_error(
    held: Mapping[int, Sequence[int]], in_audience: Callable[[int], bool], *, provider: str = "bsg",
    label: str = "BSG campaign", why: str = "", unsure: str | None = None,
) -> SmsFatalError:
    """The stop for an audience that changed after something was sent: every campaign named.

    ``held``: each campaign that exists (id -> the phones the provider says it holds, read
    back, not recorded). Each is named with how many phones it holds, how many of them this
    try's audience no longer has, and at most three masked examples (never the list).
    ``why``: what showed the change (a digest, a campaign found again); ``unsure``: what may
    exist besides (a chunk that could not be looked up).
    """
    parts = []
    for campaign_id, extra in outside_audience(held, in_audience).items():
        total = len(held[campaign_id])
        if extra:
            examples = ", ".join(masked_number(str(p)) for p in sorted(extra)[:3])
            parts.append(f"{label} {campaign_id} holds {len(extra):,} phone(s) this try's audience no longer has "
                         f"(of {total:,}; e.g. {examples})")
        else:
            parts.append(f"{label} {campaign_id} holds {total:,} phone(s), all in this try's audience")
    exists = "; ".join(parts) or f"no {label} found"
    return SmsFatalError(
        f"the audience changed between tries{f' ({why})' if why else ''}: {exists}"
        f"{f'; {unsure}' if unsure else ''}. Resuming could message some numbers twice and skip others, so this "
        "task stops without retry: check what was sent, then run the remainder as a new task",
        provider=provider,
    )


def check_held_in_audience(
    held: Mapping[int, Sequence[int]], in_audience: Callable[[int], bool], *, provider: str = "bsg",
    label: str = "BSG campaign", why: str = "",
) -> None:
    """The audience rule for campaigns that exist: each phone they hold must be in the audience read now.

    Shared by every resume path (durable state read back by campaign id, campaigns found
    again by reference_id with or without durable state): a campaign holding a phone the
    audience no longer has raises :func:`audience_changed_error` (no retry), naming them all.
    """
    if any(outside_audience(held, in_audience).values()):
        raise audience_changed_error(held, in_audience, provider=provider, label=label, why=why)


def bsg_phones(hook: Any, campaign_id: int) -> list[int]:
    """The phones of a BSG campaign's messages (one page of up to the API's limit at a time)."""
    return [int(message.get("phone") or 0) for message in hook.iter_messages(campaign_id)]


__all__ = [
    "Expected", "audience_changed_error", "bsg_phones", "check_held_in_audience", "check_mobizon_audience",
    "mobizon_numbers", "outside_audience", "verify_bsg_found", "verify_mobizon_campaign",
]
