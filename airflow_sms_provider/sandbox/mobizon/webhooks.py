"""Mobizon webhooks: delivery reports pushed to a handler URL (reference/mobizon/_webhooks-*.md).

Written from the documents only (it is the independent check of ``airflow_sms_provider.events``):

* a webhook is created with an event type, a data format, a handler URL (<= 1000 characters), an
  optional secret key (<= 255 characters) and an "active" flag ("Create Webhook");
  here: ``POST /_sandbox/mobizon/webhooks``;
* "SMS statuses": one ``sms-delivery-report`` per whole message, sent only once its status is final
  (UNDELIV, REJECTD, DELIVRD, EXPIRED, DELETED; a PDLIVRD message when it turns final), for every
  SMS of the account, to every active webhook of that type;
* POST, JSON ``{eventId, eventType, eventCreateTs, webhookId, attempt, data: {campaignId, messageId,
  segNum, statusUpdateTs, status, to}, sign}``; ``sign = sha1(eventId|attempt|eventCreateTs|secret)``,
  absent when no secret is set ("the request signature is not generated");
* delivered when the handler answers 200-299 within 5 seconds; at most one 301/302 redirect is
  followed; otherwise retried, up to 10 attempts, "the interval between attempts increases by 1
  minute with each new attempt" (1, 2, ... 9 simulated minutes: the sandbox clock compresses them);
  ``eventId`` stays the same on every attempt.

Not emulated (the documents give no payload for them here): form events, the ``raw`` and ``xml``
formats. The sandbox contacts only loopback hosts.

What the documents allow and a test can ask for (config keys): ``webhook_duplicate_every`` N > 0
sends every Nth delivered event once more as the next attempt, as when a 200 was lost on the way
("the same webhook may be sent multiple times"); ``webhook_reverse`` sends each scan's batch
newest first (out of order: retries already interleave with fresh events).

The emitter is an asyncio task on the server's loop, started when the first webhook is created and
ended by a reset, by deleting the last webhook, or with the server; requests are never held by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from airflow_sms_provider.sandbox.mobizon.rules import NAME, SANDBOX_MOBIZON_API_KEY
from airflow_sms_provider.sandbox.mobizon.wire import _ts

if TYPE_CHECKING:
    from airflow_sms_provider.sandbox.mobizon.state import Campaign, Message, MobizonState
    from airflow_sms_provider.sandbox.state import SandboxState

log = logging.getLogger(__name__)

FINAL = frozenset({"UNDELIV", "REJECTD", "DELIVRD", "EXPIRED", "DELETED"})  # _other-smsStatus.md
EVENT_TYPE = "sms-delivery-report"
MAX_URL = 1000
MAX_SECRET = 255
LOOPBACK = frozenset({"127.0.0.1", "localhost"})
_DELIVERY_LOG = 10_000
_PER_SCAN = 2_000  # events created per scan: a million-message campaign never blocks the loop for long


@dataclass
class Webhook:
    id: int
    owner: str  # the account's API key: "each webhook receives events for all SMS ... of your account"
    url: str
    secret: str
    active: bool
    created: datetime


@dataclass
class Delivery:
    event_id: int
    webhook: Webhook
    created: str  # eventCreateTs
    data: dict[str, Any]
    attempt: int = 1
    due: datetime | None = None  # simulated time of the next attempt
    duplicated: bool = False  # already sent once more after a 2xx (webhook_duplicate_every)

    def body(self) -> bytes:
        doc: dict[str, Any] = {
            "eventId": self.event_id,
            "eventType": EVENT_TYPE,
            "eventCreateTs": self.created,
            "webhookId": self.webhook.id,
            "attempt": self.attempt,
            "data": self.data,
        }
        if self.webhook.secret:
            text = f"{self.event_id}|{self.attempt}|{self.created}|{self.webhook.secret}"
            doc["sign"] = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
        return json.dumps(doc).encode()


@dataclass
class WebhookBook:
    """The account webhooks, the events waiting for an attempt and what each attempt got."""

    hooks: dict[int, Webhook] = field(default_factory=dict)
    queue: list[Delivery] = field(default_factory=list)
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_DELIVERY_LOG))
    cursors: dict[int, int] = field(default_factory=dict)  # campaign id -> next message (sending order)
    held: dict[int, tuple[Campaign, Message]] = field(default_factory=dict)  # PDLIVRD: not final yet
    order: dict[int, list[Message]] = field(default_factory=dict)  # a sent campaign's messages, in order
    next_hook: int = 1
    next_event: int = 1
    delivered: int = 0
    task: asyncio.Task[None] | None = None


def book(mobizon: MobizonState) -> WebhookBook:
    return mobizon.webhooks


# ---------------------------------------------------------------- events


def scan(mobizon: MobizonState, now: datetime) -> None:
    """Create the events of messages whose final status is known at ``now``."""
    wb = book(mobizon)
    owners = {h.owner for h in wb.hooks.values() if h.active}
    budget = _PER_SCAN
    for key, (camp, msg) in list(wb.held.items()):
        status, _, updated = mobizon.message_state(camp, msg, now)
        if status in FINAL:
            del wb.held[key]
            budget -= _emit(mobizon, camp, msg, status, updated, now)
    for camp in list(mobizon.campaigns.values()):
        if budget <= 0:
            break
        if camp.owner not in owners or camp.sent_at is None or camp.declined or camp.deleted:
            continue
        if wb.cursors.get(camp.id, -1) >= len(camp.messages):
            continue  # every message reported: a tick costs nothing per finished campaign
        line = mobizon.timeline(camp)
        if line is None or now < line.start:
            continue
        messages = wb.order.get(camp.id)
        if messages is None or len(messages) != len(camp.messages):
            messages = wb.order[camp.id] = list(camp.messages.values())  # no recipient joins a sent campaign
        index = wb.cursors.get(camp.id, 0)
        while index < len(messages) and budget > 0:
            msg = messages[index]
            status, _, updated = mobizon.message_state(camp, msg, now, line)
            if status == "PDLIVRD":
                wb.held[msg.id] = (camp, msg)
            elif status in FINAL:
                budget -= _emit(mobizon, camp, msg, status, updated, now)
            else:
                break  # final times grow with the sending order: the rest are not final either
            index += 1
        wb.cursors[camp.id] = index
        if index >= len(messages):
            wb.order.pop(camp.id, None)  # done: keep only the cursor


def _emit(mobizon: MobizonState, camp: Campaign, msg: Message, status: str, updated: datetime | None,
          now: datetime) -> int:  # fmt: skip
    wb = book(mobizon)
    made = 0
    for hook in wb.hooks.values():
        # A webhook hears of statuses that turn final after it was created, for its own account.
        if not hook.active or hook.owner != camp.owner or (updated and updated < hook.created):
            continue
        data = {"campaignId": camp.id, "messageId": msg.id, "segNum": msg.seg_num,
                "statusUpdateTs": _ts(updated), "status": status, "to": msg.number}  # fmt: skip
        wb.queue.append(Delivery(wb.next_event, hook, _ts(now) or "", data, due=now))
        wb.next_event += 1
        made += 1
    return made


async def _attempt(client: httpx.AsyncClient, delivery: Delivery, timeout: float) -> tuple[str, int | None]:
    """One POST (and at most one redirect): ("delivered" | a failure, HTTP status)."""
    url = delivery.webhook.url
    body = delivery.body()
    for hop in range(2):
        if urlsplit(url).hostname not in LOOPBACK:
            return "refused: the sandbox contacts only loopback hosts", None
        try:
            answer = await asyncio.wait_for(
                client.post(url, content=body, headers={"Content-Type": "application/json"}), timeout
            )
        except asyncio.TimeoutError:
            return "timeout", None
        except httpx.HTTPError as exc:
            return f"error: {type(exc).__name__}", None
        if answer.status_code in (301, 302) and hop == 0 and "location" in answer.headers:
            url = urljoin(url, answer.headers["location"])
            continue
        if 200 <= answer.status_code <= 299:
            return "delivered", answer.status_code
        return ("too many redirects" if answer.status_code in (301, 302) else "refused"), answer.status_code
    return "too many redirects", None  # pragma: no cover - the loop returns


async def deliver_due(mobizon: MobizonState, client: httpx.AsyncClient) -> None:
    """Make every attempt that is due now, in queue order (newest first with ``webhook_reverse``)."""
    cfg = mobizon.sandbox.config
    wb = book(mobizon)
    now = mobizon.sandbox.now()
    due = [d for d in wb.queue if d.due is None or d.due <= now]
    if not due:
        return
    wb.queue = [d for d in wb.queue if not (d.due is None or d.due <= now)]
    if cfg["webhook_reverse"]:
        due.reverse()
    for delivery in due:
        outcome, status = await _attempt(client, delivery, float(cfg["webhook_timeout"]))
        if mobizon.sandbox.providers.get(NAME) is not mobizon:
            return  # reset while we waited: the old events belong to the forgotten past
        now = mobizon.sandbox.now()
        entry = {
            "eventId": delivery.event_id, "webhookId": delivery.webhook.id, "attempt": delivery.attempt,
            "httpStatus": status, "outcome": outcome, "sim_ts": now.isoformat(), "data": delivery.data,
        }  # fmt: skip
        again: timedelta | None = None
        if outcome == "delivered":
            wb.delivered += 0 if delivery.duplicated else 1
            every = int(cfg["webhook_duplicate_every"])
            if every > 0 and not delivery.duplicated and wb.delivered % every == 0:
                delivery.duplicated = True
                entry["duplicate_follows"] = True
                again = timedelta(0)
        elif delivery.attempt < int(cfg["webhook_attempts"]):
            again = timedelta(seconds=delivery.attempt * float(cfg["webhook_retry_step"]))
        else:
            entry["undelivered"] = True
        wb.log.append(entry)
        if again is not None and delivery.attempt < int(cfg["webhook_attempts"]):
            delivery.attempt += 1
            delivery.due = now + again
            wb.queue.append(delivery)


async def run(sandbox: SandboxState, mobizon: MobizonState) -> None:
    """The emitter: scan and deliver until this state is reset away or has no webhook left."""
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        while sandbox.providers.get(NAME) is mobizon and book(mobizon).hooks:
            try:
                scan(mobizon, sandbox.now())
                await deliver_due(mobizon, client)
            except Exception:  # keep emitting: one bad scan must not end the webhooks for the run
                log.exception("sandbox webhook emitter")
            await asyncio.sleep(float(sandbox.config["webhook_tick"]))


# ---------------------------------------------------------------- admin


def _view(hook: Webhook) -> dict[str, Any]:
    return {"id": hook.id, "eventType": "sms", "format": "json", "url": hook.url, "active": hook.active,
            "secret": "***" if hook.secret else "", "account": "***" + hook.owner[-4:],
            "createTs": _ts(hook.created)}  # fmt: skip


async def create_webhook(request: Request) -> Response:
    """``{"url", "secret"?, "eventType": "sms", "format": "json", "active": true, "api_key"?}`` -> the webhook."""
    sandbox: SandboxState = request.app.state.sandbox
    mobizon: MobizonState = sandbox.providers[NAME]
    try:
        spec = await request.json()
        if not isinstance(spec, dict):
            raise ValueError("send a JSON object")
        url, secret = spec.get("url"), spec.get("secret") or ""
        if not isinstance(url, str) or not url or len(url) > MAX_URL:
            raise ValueError(f"url: required, at most {MAX_URL} characters")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK:
            raise ValueError("url: an http(s) URL on 127.0.0.1 (the sandbox contacts nothing else)")
        if not isinstance(secret, str) or len(secret) > MAX_SECRET:
            raise ValueError(f"secret: a string of at most {MAX_SECRET} characters")
        if spec.get("eventType", "sms") != "sms":
            raise ValueError('eventType: only "sms" (SMS statuses) is emulated; form events are not')
        if spec.get("format", "json") != "json":
            raise ValueError('format: only "json" is emulated (the documents show no raw or xml payload)')
        owner = spec.get("api_key", SANDBOX_MOBIZON_API_KEY)
        if owner not in mobizon.accounts:
            raise ValueError("api_key: no such sandbox account")
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    wb = book(mobizon)
    hook = Webhook(wb.next_hook, owner, url, secret, bool(spec.get("active", True)), sandbox.now())
    wb.next_hook += 1
    wb.hooks[hook.id] = hook
    if wb.task is None or wb.task.done():
        wb.task = asyncio.get_running_loop().create_task(run(sandbox, mobizon))
    return JSONResponse(_view(hook))


async def list_webhooks(request: Request) -> Response:
    """The webhooks (secrets masked), the attempts made (oldest first) and the attempts waiting."""
    mobizon: MobizonState = request.app.state.sandbox.providers[NAME]
    wb = book(mobizon)
    waiting = [{"eventId": d.event_id, "webhookId": d.webhook.id, "attempt": d.attempt,
                "due": d.due.isoformat() if d.due else None} for d in wb.queue]  # fmt: skip
    return JSONResponse({"webhooks": [_view(h) for h in wb.hooks.values()], "deliveries": list(wb.log),
                         "waiting": waiting})  # fmt: skip


async def delete_webhook(request: Request) -> Response:
    mobizon: MobizonState = request.app.state.sandbox.providers[NAME]
    wb = book(mobizon)
    hook = wb.hooks.pop(int(request.path_params["id"]), None)
    if hook is None:
        return JSONResponse({"error": "no such webhook"}, status_code=404)
    wb.queue = [d for d in wb.queue if d.webhook is not hook]
    if not wb.hooks and wb.task is not None:
        with contextlib.suppress(Exception):
            wb.task.cancel()
    return JSONResponse(_view(hook))


def admin_routes() -> list[Route]:
    return [
        Route("/_sandbox/mobizon/webhooks", create_webhook, methods=["POST"]),
        Route("/_sandbox/mobizon/webhooks", list_webhooks, methods=["GET"]),
        Route("/_sandbox/mobizon/webhooks/{id:int}", delete_webhook, methods=["DELETE"]),
    ]
