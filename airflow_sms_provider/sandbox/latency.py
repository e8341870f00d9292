"""Simulated network latency, so local runs (and benchmarks) see a wire like the real one.

Framework config (``create_app(latency_ms=5)``, ``POST /_sandbox/config``, ``airflow-sms-sandbox --latency-ms``):

* ``latency_ms``: every provider request waits this long before it is handled: one
  round trip of a keep-alive connection.
* ``connect_latency_ms``: the first request of each new connection waits this much
  more: the TCP (and TLS) handshake round trips a real client pays per connection.
  Loopback connections are almost free, so without it a client that opens a new
  connection per request would look as fast as one that keeps it alive.

Waits are ``asyncio.sleep``: concurrent requests overlap as they would on a network,
and the server's own CPU is not used. Admin requests (``/_sandbox/``) never wait.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send

from airflow_sms_provider.sandbox.faults import ADMIN_PREFIX

if TYPE_CHECKING:
    from airflow_sms_provider.sandbox.state import SandboxState

_PEERS_KEPT = 4096  # client addresses remembered when the server's transport is not reachable


class LatencyMiddleware:
    """Delays provider requests by the configured latency."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state
        self._transports: weakref.WeakSet[Any] = weakref.WeakSet()
        self._peers: OrderedDict[Any, None] = OrderedDict()

    def _first_on_connection(self, scope: Scope, receive: Receive) -> bool:
        # uvicorn binds receive to its per-request cycle, which holds the connection's transport.
        transport = getattr(getattr(receive, "__self__", None), "transport", None)
        if transport is not None:
            if transport in self._transports:
                return False
            self._transports.add(transport)
            return True
        # Other servers: the client's (host, port) is unique while its connection lives.
        peer = tuple(scope.get("client") or ())
        if peer in self._peers:
            self._peers.move_to_end(peer)
            return False
        self._peers[peer] = None
        if len(self._peers) > _PEERS_KEPT:
            self._peers.popitem(last=False)
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        config = self.state.config
        delay = float(config.get("latency_ms") or 0.0)
        connect = float(config.get("connect_latency_ms") or 0.0)
        if connect and self._first_on_connection(scope, receive):
            delay += connect
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        await self.app(scope, receive, send)
