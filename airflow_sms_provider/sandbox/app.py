"""Assemble the sandbox ASGI app: admin API, provider emulations, fault and log middleware.

A provider emulation is a module exposing::

    NAME: str                           # "mobizon"
    PATH_PREFIXES: tuple[str, ...]      # the API paths it owns, e.g. ("/service/",)
    DEFAULTS: dict[str, Any]            # config keys it reads, with defaults
    new_state(state) -> Any             # its fresh state (start and every reset)
    routes(state) -> list[Route]        # its API
    admin_routes(state) -> list[Route]  # its /_sandbox/{NAME}/... routes
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_sms_provider.sandbox import admin, bsg, mobizon, ogangi
from airflow_sms_provider.sandbox.faults import ADMIN_PREFIX, FaultMiddleware
from airflow_sms_provider.sandbox.latency import LatencyMiddleware
from airflow_sms_provider.sandbox.state import SandboxState, mask_query, utc_now

# Registration point: one entry per provider emulation module (see the module docstring).
PROVIDER_MODULES: tuple[ModuleType, ...] = (
    mobizon,
    bsg,
    ogangi,
)


class RequestLogMiddleware:
    """Records every provider request (admin requests excluded) in the state's log."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        started, sim_ts, real_ts = time.perf_counter(), self.state.now(), utc_now()
        epoch = self.state.arrived()
        status: list[int] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except Exception:
            status.append(500)
            raise
        finally:
            entry = self._entry(scope, status, started, real_ts.isoformat(), sim_ts.isoformat())
            self.state.record(entry, epoch=epoch)

    def _entry(self, scope: Scope, status: list[int], started: float, real_ts: str, sim_ts: str) -> dict[str, Any]:
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        return {
            "ts": real_ts,
            "sim_ts": sim_ts,
            "method": scope["method"],
            "path": scope["path"],
            "provider": self.state.provider_for(scope["path"]),
            "query": mask_query(query),
            "form_keys": scope.get("sandbox.form_keys", []),
            "status": status[0] if status else None,
            "code": scope.get("sandbox.code"),
            "fault": scope.get("sandbox.fault"),
            "outcome": scope.get("sandbox.outcome", "answered" if status else "no answer"),
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        }


def create_app(state: SandboxState | None = None, **config: Any) -> Starlette:
    """The sandbox app; ``config`` keys are the framework's and the provider modules' DEFAULTS.

    Framework: ``clock_speed`` (1.0), ``log_limit`` (10000), ``latency_ms`` and
    ``connect_latency_ms`` (0: see :mod:`airflow_sms_provider.sandbox.latency`). Mobizon: see
    ``airflow_sms_provider.sandbox.mobizon.DEFAULTS`` (in ``mobizon/rules.py``; e.g. ``taskqueue_min_interval``).
    The values given here are also what ``POST /_sandbox/reset`` returns to.
    """
    state = state if state is not None else SandboxState()
    for module in PROVIDER_MODULES:
        state.register(module.NAME, module.PATH_PREFIXES, module.new_state, module.DEFAULTS)
    try:
        state.set_defaults(config)
    except KeyError as exc:
        raise TypeError(exc.args[0]) from None
    routes = admin.routes(state)
    for module in PROVIDER_MODULES:
        routes += module.admin_routes(state) + module.routes(state)
    app = Starlette(
        routes=routes,
        # Listed outermost first: the log also sees what the fault middleware did; the simulated
        # network latency comes before both faults and handlers, as the wire would.
        middleware=[
            Middleware(RequestLogMiddleware, state=state),
            Middleware(LatencyMiddleware, state=state),
            Middleware(FaultMiddleware, state=state),
        ],
    )
    app.state.sandbox = state
    return app
