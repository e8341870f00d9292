"""BSG campaign work: the neutral interface's entry (``BsgHook.campaign_module``), and finding
again what earlier requests created (:func:`settle`), by reference_ids derived from the run and
the phone (``protocols.bsg.auto_reference_id``), so the order the audience is read in does not matter."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from airflow_sms_provider.campaigns.reconcile import Expected, verify_bsg_found
from airflow_sms_provider.campaigns.run import count, invalid_rows, neutral_summary, run_operator
from airflow_sms_provider.exceptions import SmsFatalError, SmsValidationError
from airflow_sms_provider.hooks.base import CampaignParams
from airflow_sms_provider.recipients import placeholders


def run_campaign(hook: Any, params: CampaignParams, context: Any, log: Any) -> dict[str, Any]:
    """A bulk campaign, or an individual one when the text has ``{placeholders}`` (split in chunks)."""
    from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator, BsgIndividualCampaignOperator

    if params.name:
        log.info("BSG campaigns have no name: name=%r is not sent", params.name)
    personalised = isinstance(params.text, str) and bool(placeholders(params.text))
    cls = BsgIndividualCampaignOperator if personalised else BsgBulkCampaignOperator
    args = {"bsg_conn_id": params.conn_id, "text": params.text, "recipients": params.recipients,
            "sender": params.sender, "start_at": params.send_at}
    details = run_operator(cls, args, params, context, log)
    return summarize(hook, params.conn_id, details)


def summarize(hook: Any, conn_id: str, details: dict[str, Any]) -> dict[str, Any]:
    ids = [int(i) for i in details["campaign_ids"]]
    words = {int(c["id"]): c.get("status") for c in details.get("campaigns") or []}
    return neutral_summary(hook, conn_id, ids, count(details.get("phones")), invalid_rows(details), words, details)


# ------------------------------------------------------------------ found again by reference_id


class Found:
    """Campaigns of this run found at BSG by reference_id during one try, and the phones they hold.

    Shared by the threads creating chunks: a phone held by a campaign found for one chunk
    is neither looked up nor sent again for another (an earlier try that read the audience
    in another order put phones of several of this try's chunks in one campaign). About 70
    bytes a phone held, paid only when something was found.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.campaigns: dict[int, dict[str, Any]] = {}
        self.phones_of: dict[int, frozenset[int]] = {}
        self.phones: set[int] = set()

    def holds(self, phone: int) -> bool:
        return phone in self.phones

    def add(self, campaign: Mapping[str, Any], phones: Iterable[int]) -> None:
        held = frozenset(phones)
        campaign_id = int(campaign["id"])
        record = {"id": campaign_id, "phones": len(held), "status": campaign.get("status"),
                  "calculated_price": campaign.get("calculated_price"), "currency": campaign.get("currency"),
                  "found": True}  # fmt: skip
        with self._lock:
            self.campaigns[campaign_id] = record
            self.phones_of[campaign_id] = held
            self.phones |= held

    def owner(self, phones: Sequence[int]) -> dict[str, Any] | None:
        """The found campaign holding exactly ``phones`` (a chunk created whole by an earlier request), or None."""
        wanted = frozenset(phones)
        for campaign_id, held in list(self.phones_of.items()):
            if held == wanted:
                return self.campaigns[campaign_id]
        return None

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.campaigns.values()]


def settle(
    hook: Any,
    items: Sequence[dict[str, Any]],
    found: Found,
    *,
    phone_of: Callable[[Mapping[str, Any]], int],
    expect: Callable[[int, Mapping[str, Any] | None], Expected | None],
    index: int,
    full: bool,
    log: Any,
    in_audience: Callable[[int], bool] = lambda phone: True,
) -> tuple[list[dict[str, Any]], bool]:
    """The items of a chunk that no campaign at BSG holds, after looking their reference_ids up.

    Returns them and whether a lookup found a campaign. Each item not held by a campaign
    found already is looked up by its reference_id (``filter[reference_id]``, one GET);
    a hit's campaign is read whole (every phone it holds, of any chunk), verified
    (:func:`verify_bsg_found`: every message this run's, same text and sender) and added
    to ``found``. ``full=False`` (the request may have left, e.g. no answer): stop at the
    first item not found when nothing was found before it (a request is created whole or
    not at all). ``full=True`` (BSG refused a repeated reference_id, without saying which):
    look up every item. ``expect(phone, item)``: what this task gives ``phone`` (``item``:
    the chunk's row for it, None for a phone outside this chunk). A campaign found by ids
    the user gave (not derived from this run) is adopted only when it holds exactly this
    chunk: nothing else says it is this run's. A found campaign holding a
    phone ``in_audience`` says the audience no longer has (a file rewritten between tries)
    stops the task without retry, naming it: the audience changed after something was sent.
    """
    by_phone = {phone_of(item): item for item in items}
    hit = False
    for phone, item in by_phone.items():
        if found.holds(phone):
            hit = True
            continue
        ref = item.get("reference_id")
        if ref is None:
            continue  # nothing to look it up by (the caller refuses chunks that have no reference_ids)
        message = hook.find_message(ref)
        if message is None:
            if not full and not hit:
                break
            continue
        if int(message.get("phone") or 0) != phone:
            raise SmsValidationError(
                f"reference_id {ref!r} already belongs to message {message.get('id')} of campaign "
                f"{message.get('campaign_id')} for another phone: reference_ids must be unique in the account",
                field="reference_id", value=ref,
            )
        campaign_id = int(message["campaign_id"])
        hit = True
        if campaign_id in found.phones_of:
            continue  # read already (the phone was held there: another thread added it meanwhile)
        messages = list(hook.iter_messages(campaign_id))
        phones = verify_bsg_found(campaign_id, messages, lambda p: expect(p, by_phone.get(p)), chunk=index)
        _check_whole_unless_derived(campaign_id, messages, by_phone, expect, index)
        strangers = [p for p in phones if p not in by_phone and not in_audience(p)]
        if strangers:
            raise SmsFatalError(
                f"the audience changed between tries: BSG campaign {campaign_id} (found by reference_id {ref!r}, "
                f"created by an earlier try of this run) holds {len(strangers):,} phone(s) this try's audience no "
                f"longer has, e.g. {strangers[:3]}. Resuming could message some numbers twice and skip others, so "
                "this task stops without retry: check what was sent, then run the remainder as a new task",
                provider="bsg",
            )
        found.add(hook.get_campaign(campaign_id), phones)
        log.info("Chunk %d: reference_id %r is in BSG campaign %s of an earlier request (%d phone(s), verified): "
                 "not sending those phones again", index + 1, ref, campaign_id, len(phones))  # fmt: skip
    return [item for phone, item in by_phone.items() if not found.holds(phone)], hit


def _check_whole_unless_derived(
    campaign_id: int, messages: Sequence[Mapping[str, Any]], by_phone: Mapping[int, Mapping[str, Any]],
    expect: Callable[[int, Mapping[str, Any] | None], Expected | None], index: int,
) -> None:
    """A campaign holding reference_ids the user gave must hold exactly this chunk.

    Ids derived from the run and the phone prove a message is this run's, so a campaign of
    those may hold part of a chunk (an earlier try read the audience in another order). An
    id the user gave (an order id) proves nothing: a later task reusing it would otherwise
    adopt an earlier task's campaign for phones that never got this task's message.
    """
    derived = all((expect(int(m.get("phone") or 0), None) or (None,))[0] == m.get("reference_id") for m in messages)
    held = {int(m.get("phone") or 0) for m in messages}
    if derived or held == set(by_phone):
        return
    missing, extra = len(set(by_phone) - held), len(held - set(by_phone))
    raise SmsFatalError(
        f"chunk {index + 1} ({len(by_phone)} phones): BSG campaign {campaign_id} holds reference_ids of this chunk "
        f"that were given, not derived from this run, but {missing} of the chunk's {len(by_phone)} reference_ids "
        f"are not in it{f' and {extra} of its messages are not of this chunk' if extra else ''}: an earlier run or "
        "another task reusing them. Not adopting it (the phones missing from it would get nothing) and not sending "
        "again (BSG refuses the repeated ids); check that campaign, then give these rows new reference_ids",
        provider="bsg",
    )
