"""The webhook receiver: a small ASGI app an Airflow API server (or any ASGI server) hosts.

``POST /mobizon/{conn_id}`` (one route per module of :data:`PROVIDERS`)
    A Mobizon webhook (reference/mobizon/_webhooks-*.md). The ``sign`` is checked with the
    connection's ``webhook_secret``; the event is recorded once per ``eventId`` (retries and
    duplicates answer 200 and change nothing) and the answer goes out at once: the asset
    events are made later, by a background task, well inside Mobizon's 5-second limit.
``POST /bsg/{conn_id}/{token}``
    A BSG ``callback_url`` status callback (events/bsg.py): the path's token is checked against
    the connection's ``callback_token``; recorded once per (message id, status).

Asset events: one asset per connection (the campaign group "everything this Mobizon account
sends"), ``sms://mobizon/<conn_id>``; one asset event per campaign once its delivery reports
have been quiet for ``quiet_seconds`` (Mobizon sends a report only when a message's status is
final, so a quiet campaign is a finished one; a late report makes a follow-up event with
``update: true`` and the full counts, store.py). Its extra: ``campaign_ids``, ``counts`` per final
status, ``messages``, ``segments``, ``first_status_ts``/``last_status_ts``, ``provider``,
``source``, ``update`` (and ``new``, ``group``: EventStore.report).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from airflow_sms_provider.events import bsg, mobizon
from airflow_sms_provider.events.payload import MAX_BODY_BYTES, DeliveryReport, PayloadError, WebhookEvent
from airflow_sms_provider.events.store import EventStore
from airflow_sms_provider.redaction import MASK

log = logging.getLogger(__name__)

SecretLookup = Callable[[str, str], "str | None"]
"""(provider name, connection id) -> the webhook secret (None: none set); LookupError: unknown connection."""
AssetSink = Callable[[str, dict[str, Any]], None]
"""(asset URI, extra) -> records one asset event; raises if it could not (the batch is retried)."""


class ProviderEvents(Protocol):
    """What a per-provider module of events/ offers (events/mobizon.py, events/bsg.py)."""

    NAME: str
    PATH: str  # the route under the receiver, with {conn_id} (and {token} where the path authenticates)
    SECRET_NAME: str  # the connection extra holding the secret, for error messages

    def read(self, body: bytes, secret: str, token: str | None) -> tuple[WebhookEvent, DeliveryReport | None]: ...

    def connection_secret(self, conn_id: str) -> str | None: ...


# Registration point: one module per provider that sends webhooks.
PROVIDERS: tuple[ProviderEvents, ...] = (mobizon, bsg)

_CONN_ID = re.compile(r"[A-Za-z0-9_.-]{1,250}")


def asset_uri(provider: str, conn_id: str) -> str:
    """The asset a connection's campaigns report to, e.g. ``sms://mobizon/mobizon_default``."""
    return f"sms://{provider}/{conn_id}"


class Receiver:
    """Verifies, records and batches webhook events; :meth:`app` is its ASGI face."""

    def __init__(
        self,
        store: EventStore,
        sink: AssetSink,
        *,
        secret_for: SecretLookup | None = None,
        quiet_seconds: float = 60.0,
        secret_ttl: float = 30.0,
        providers: tuple[ProviderEvents, ...] = PROVIDERS,
    ) -> None:
        """``secret_for`` None: each provider module reads its Airflow connection (the plugin's case)."""
        self.store = store
        self.sink = sink
        self.secret_for = secret_for
        self.quiet_seconds = quiet_seconds
        self.secret_ttl = secret_ttl
        self.providers = providers
        self._secrets: dict[tuple[str, str], tuple[float, str | None]] = {}
        self._flusher: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ HTTP

    def app(self) -> Starlette:
        return Starlette(routes=[Route(p.PATH, self._endpoint(p), methods=["POST"]) for p in self.providers])

    def _endpoint(self, provider: ProviderEvents) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self.receive(provider, request)

        return endpoint

    async def receive(self, provider: ProviderEvents, request: Request) -> Response:
        """Check, record once, answer; the asset events come later (:meth:`flush`)."""
        token = request.path_params.get("token")
        if token:
            _mask_path(request.scope, token)
        conn_id = request.path_params["conn_id"]
        if not _CONN_ID.fullmatch(conn_id):
            return _refuse(404, "connection id", "not a connection id")
        try:
            body = await _read_capped(request)
            secret = await self._secret(provider, conn_id)
        except PayloadError as exc:
            return _refuse(exc.status, exc.field, str(exc))
        except LookupError:
            return _refuse(404, "connection id", f"no {provider.NAME} connection {conn_id!r}")
        if not secret:
            # Mobizon allows webhooks without a secret (then no sign), BSG documents none at all; we
            # refuse both: anyone could post.
            problem = f"connection {conn_id!r} has no usable {provider.SECRET_NAME}; unauthenticated events are refused"
            return _refuse(403, provider.SECRET_NAME, problem)
        try:
            # The path's token (BSG) is never logged: it is the credential.
            event, report = provider.read(body, secret, token)
        except PayloadError as exc:
            if exc.status == 403:
                log.warning("%s webhook for %s refused: %s", provider.NAME, conn_id, exc)
            return _refuse(exc.status, exc.field, str(exc))
        new = await asyncio.to_thread(self.store.add, f"{provider.NAME}/{conn_id}", event, report)
        self._wake()  # also after a restart: events recorded before it are counted on the next request
        log.info(
            "%s webhook %s for %s: event %s attempt %s%s", provider.NAME, event.event_type, conn_id,
            event.event_id, event.attempt, "" if new else " (already recorded)",
        )  # fmt: skip
        return JSONResponse({"status": "recorded" if new else "duplicate", "eventId": event.event_id})

    async def _secret(self, provider: ProviderEvents, conn_id: str) -> str | None:
        key = (provider.NAME, conn_id)
        cached = self._secrets.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        if self.secret_for is None:  # a DB or secrets-backend lookup: off the loop
            secret = await asyncio.to_thread(provider.connection_secret, conn_id)
        else:
            secret = await asyncio.to_thread(self.secret_for, provider.NAME, conn_id)
        self._secrets[key] = (time.monotonic() + self.secret_ttl, secret)
        return secret

    # ------------------------------------------------------------ asset events

    def flush(self, quiet_seconds: float | None = None) -> list[dict[str, Any]]:
        """Turn every campaign quiet for ``quiet_seconds`` into an asset event; the extras made."""
        made = []
        for source, group in self.store.due(self.quiet_seconds if quiet_seconds is None else quiet_seconds):
            provider, _, conn_id = source.partition("/")
            uri = asset_uri(provider, conn_id)
            try:
                extra = self.store.report(source, group, functools.partial(self.sink, uri))
            except Exception:
                log.exception("asset event for %s campaign %s failed; retried on the next flush", uri, group)
                continue
            if extra is not None:
                log.info("asset event %s: campaign %s %s%s", uri, group, extra["counts"],
                         " (update: a late report)" if extra["update"] else "")
                made.append(extra)
        return made

    def _wake(self) -> None:
        # Lazily, on the serving loop: a mounted sub-app gets no lifespan events, and the task ends
        # with the loop (the server), so nothing outlives it.
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        tick = min(1.0, max(0.05, self.quiet_seconds / 4))
        while True:
            await asyncio.sleep(tick)
            try:
                await asyncio.to_thread(self.flush)
                if await asyncio.to_thread(self.store.pending) == 0:
                    return
            except Exception:  # the store itself failed: keep trying, the events are on disk
                log.exception("flushing SMS events failed")


async def _read_capped(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadError("body", f"larger than {MAX_BODY_BYTES} bytes", status=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadError("body", f"larger than {MAX_BODY_BYTES} bytes", status=413)
    return bytes(body)


def _mask_path(scope: Scope, token: str) -> None:
    """Replace the token in the request's path, in place, before anything logs the request.

    The server's access log prints the path once the answer is sent: Airflow's API server
    (``http.access`` "request finished", 3.1+) and uvicorn's own access log read ``scope["path"]``
    of this same scope dict (Starlette mounts update it in place). The token is URL-safe, so the
    raw path holds it unencoded.
    """
    scope["path"] = scope["path"].replace(token, MASK)
    raw = scope.get("raw_path")
    if isinstance(raw, bytes):
        scope["raw_path"] = raw.replace(token.encode(), MASK.encode())


def _refuse(status: int, field: str, message: str) -> Response:
    return JSONResponse({"error": message, "field": field}, status_code=status)


def create_app(
    store: EventStore, sink: AssetSink, *, secret_for: SecretLookup | None = None, quiet_seconds: float = 60.0
) -> Starlette:
    """A standalone receiver app (``uvicorn 'module:app'``); see docs/events.md."""
    receiver = Receiver(store, sink, secret_for=secret_for, quiet_seconds=quiet_seconds)
    app = receiver.app()
    app.state.receiver = receiver
    return app
