"""BSG status callbacks: a campaign's ``callback_url`` hears of its messages' status changes.

Written from reference/bsg/openapi.yaml only (the independent check of the receiver):

* ``callback_url`` ("Link to get the delivery status of messages", at most 100 characters) is a
  field of ``sms/send``, ``sms/send-groups`` and ``sms/send-individual``; it takes precedence over
  the account's "Callback URL" (not emulated: the sandbox has no personal area);
* the one documented payload is ``RcsStatusCallback``, POSTed as JSON "on message status is
  changed" (``/api/messages/send`` declares it for its callback_url, and that endpoint sends SMS
  too): ``{error, errorDescription, id, msisdn, reference, time_in, time_sent, time_dr, status,
  price, currency}``; the receiver "should return" 200.

So the sandbox POSTs one such body per status change of each message: ``sent`` when it leaves,
then its final status (``delivered``, ``undelivered``, ``expired``; ``failed`` for a message a stop
kept from leaving). Types as the schema says (``id`` an integer, ``msisdn`` a string); ``reference``
only when the message has one.

What the spec does not say, and the sandbox chooses (its own, not BSG's; config keys, ``bsg_``
prefix): no signature (none is documented); a non-2xx answer or no answer within
``callback_timeout`` real seconds is retried, up to ``callback_attempts`` attempts, waiting
``callback_retry_step`` x attempt simulated seconds (the sandbox clock compresses them); no
redirect is followed. At least once, as a test can ask: ``callback_duplicate_every`` N > 0 sends
every Nth delivered callback once more; ``callback_reverse`` sends each scan's batch newest first.
Only loopback URLs are contacted. ``GET /_sandbox/bsg/callbacks`` lists the attempts (without the
URLs: they carry the receiver's token).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from airflow_sms_provider.sandbox.bsg.wire import CURRENCY, NAME

if TYPE_CHECKING:
    from airflow_sms_provider.sandbox.bsg.state import BsgState, Campaign, Message

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "bsg_callback_attempts": 5,
    "bsg_callback_retry_step": 60.0,  # simulated seconds the wait grows by per attempt
    "bsg_callback_timeout": 5.0,  # real seconds the receiver has to answer 2xx
    "bsg_callback_tick": 0.05,  # real seconds between two scans
    "bsg_callback_duplicate_every": 0,
    "bsg_callback_reverse": False,
}
KINDS = frozenset({"send", "send-groups", "send-individual"})  # the requests whose schema has callback_url
FINAL = frozenset({"delivered", "undelivered", "expired", "failed"})
LOOPBACK = frozenset({"127.0.0.1", "localhost"})
_LOG = 10_000
_PER_SCAN = 2_000


@dataclass
class Callback:
    number: int  # the sandbox's own sequence, for its log (BSG's payload has no event id)
    url: str
    body: dict[str, Any]
    attempt: int = 1
    due: datetime | None = None
    duplicated: bool = False


@dataclass
class CallbackBook:
    queue: list[Callback] = field(default_factory=list)
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_LOG))
    sent_cursor: dict[int, int] = field(default_factory=dict)  # campaign id -> next message for "sent"
    final_cursor: dict[int, int] = field(default_factory=dict)  # campaign id -> next message for its final status
    next_number: int = 1
    delivered: int = 0
    task: asyncio.Task[None] | None = None


def cfg(st: BsgState, key: str) -> Any:
    return st.sandbox.config["bsg_" + key]


def body(st: BsgState, camp: Campaign, msg: Message, status: str, sent_at: datetime | None,
         final_at: datetime | None) -> dict[str, Any]:  # fmt: skip
    """An RcsStatusCallback for ``msg`` in ``status``."""
    ok = status in ("sent", "delivered")
    doc: dict[str, Any] = {
        "error": 0 if ok else 1,  # "0 - if successful"; the spec lists no other code
        "errorDescription": "No errors" if ok else f"Message {status}",
        "id": msg.id,
        "msisdn": str(msg.phone),
        "time_in": st.ts(camp.created_at),
        "time_sent": st.ts(sent_at),
        "time_dr": st.ts(final_at),
        "status": status,
        "price": f"{msg.parts * float(st.cfg('sms_price')):.2f}",
        "currency": CURRENCY,
    }
    if msg.reference_id is not None:
        doc["reference"] = msg.reference_id
    return doc


def _queue(st: BsgState, camp: Campaign, doc: dict[str, Any], now: datetime) -> None:
    book: CallbackBook = st.callbacks
    assert camp.callback_url is not None
    book.queue.append(Callback(book.next_number, camp.callback_url, doc, due=now))
    book.next_number += 1


def scan(st: BsgState, now: datetime) -> int:
    """Queue the callbacks of status changes known at ``now``; how many campaigns still have some to come."""
    book: CallbackBook = st.callbacks
    budget = _PER_SCAN
    open_campaigns = 0
    for camp in list(st.campaigns.values()):
        if camp.callback_url is None:
            continue
        n = len(camp.messages)
        sent_i, final_i = book.sent_cursor.get(camp.id, 0), book.final_cursor.get(camp.id, 0)
        if final_i >= n:
            continue
        open_campaigns += 1
        # Both times grow with the sending order: each stage stops at its first message not there yet.
        while sent_i < n and budget > 0:
            msg = camp.messages[sent_i]
            status, sent_at, _ = st.message_state(camp, msg, now)
            if sent_at is not None:
                _queue(st, camp, body(st, camp, msg, "sent", sent_at, None), sent_at)
                budget -= 1
            elif status != "failed":  # not sent yet (a message a stop kept back never sends)
                break
            sent_i += 1
        while final_i < sent_i and budget > 0:
            msg = camp.messages[final_i]
            status, sent_at, _ = st.message_state(camp, msg, now)
            if status not in FINAL:
                break
            dr_at = sent_at + timedelta(seconds=camp.delivery_delay) if sent_at is not None else None
            _queue(st, camp, body(st, camp, msg, status, sent_at, dr_at), dr_at or now)
            budget -= 1
            final_i += 1
        book.sent_cursor[camp.id], book.final_cursor[camp.id] = sent_i, final_i
    return open_campaigns


async def _attempt(client: httpx.AsyncClient, cb: Callback, timeout: float) -> tuple[str, int | None]:
    if urlsplit(cb.url).hostname not in LOOPBACK:
        return "refused: the sandbox contacts only loopback hosts", None
    try:
        answer = await asyncio.wait_for(client.post(cb.url, content=json.dumps(cb.body).encode(),
                                                    headers={"Content-Type": "application/json"}), timeout)  # fmt: skip
    except asyncio.TimeoutError:
        return "timeout", None
    except httpx.HTTPError as exc:
        return f"error: {type(exc).__name__}", None
    return ("delivered" if 200 <= answer.status_code <= 299 else "refused"), answer.status_code


async def deliver_due(st: BsgState, client: httpx.AsyncClient) -> None:
    book: CallbackBook = st.callbacks
    now = st.sandbox.now()
    due = [c for c in book.queue if c.due is None or c.due <= now]
    if not due:
        return
    book.queue = [c for c in book.queue if not (c.due is None or c.due <= now)]
    if cfg(st, "callback_reverse"):
        due.reverse()
    attempts = int(cfg(st, "callback_attempts"))
    for cb in due:
        outcome, status = await _attempt(client, cb, float(cfg(st, "callback_timeout")))
        if st.sandbox.providers.get(NAME) is not st:
            return  # reset while we waited
        now = st.sandbox.now()
        entry = {"number": cb.number, "attempt": cb.attempt, "httpStatus": status, "outcome": outcome,
                 "sim_ts": now.isoformat(), "body": cb.body}  # fmt: skip
        again: timedelta | None = None
        if outcome == "delivered":
            book.delivered += 0 if cb.duplicated else 1
            every = int(cfg(st, "callback_duplicate_every"))
            if every > 0 and not cb.duplicated and book.delivered % every == 0:
                cb.duplicated = True
                entry["duplicate_follows"] = True
                again = timedelta(0)
        elif cb.attempt < attempts:
            again = timedelta(seconds=cb.attempt * float(cfg(st, "callback_retry_step")))
        else:
            entry["undelivered"] = True
        book.log.append(entry)
        if again is not None:
            cb.attempt += 1
            cb.due = now + again
            book.queue.append(cb)


async def run(st: BsgState) -> None:
    """Scan and deliver until this state is reset away, or nothing is left to report."""
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        while st.sandbox.providers.get(NAME) is st:
            try:
                open_campaigns = scan(st, st.sandbox.now())
                await deliver_due(st, client)
                if not open_campaigns and not st.callbacks.queue:
                    return
            except Exception:  # keep emitting: one bad scan must not end the callbacks for the run
                log.exception("sandbox BSG callback emitter")
            await asyncio.sleep(float(cfg(st, "callback_tick")))


def start(st: BsgState) -> None:
    """Start the emitter if it is not running (called on the server's loop when a campaign has a callback_url)."""
    book: CallbackBook = st.callbacks
    if book.task is None or book.task.done():
        book.task = asyncio.get_running_loop().create_task(run(st))


async def list_callbacks(request: Request) -> Response:
    """``GET /_sandbox/bsg/callbacks``: the attempts made (oldest first) and those waiting."""
    st: BsgState = request.app.state.sandbox.providers[NAME]
    book: CallbackBook = st.callbacks
    waiting = [{"number": c.number, "attempt": c.attempt, "due": c.due.isoformat() if c.due else None,
                "body": c.body} for c in book.queue]  # fmt: skip
    return JSONResponse({"deliveries": list(book.log), "waiting": waiting})


def admin_routes() -> list[Route]:
    return [Route("/_sandbox/bsg/callbacks", list_callbacks, methods=["GET"])]
