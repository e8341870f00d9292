"""The sandbox's own admin API under ``/_sandbox/`` (never faulted, never logged).

=========================  =====================================================
``GET /_sandbox/health``   ``{"status": "ok", "providers": [...], "now": ...}``
``POST /_sandbox/reset``   forget all provider state, faults and the request log;
                           config and clock back to the server's defaults
``GET /_sandbox/requests`` the request log, oldest first (``?provider=mobizon``)
``POST /_sandbox/faults``  append fault rules (a JSON list, or one object)
``GET /_sandbox/faults``   the rules with their ``seen``/``hits`` counters
``DELETE /_sandbox/faults`` remove all rules
``POST /_sandbox/clock``   ``{"advance": seconds}`` or ``{"to": "<ISO instant>"}``, and/or ``{"speed": x}``
``GET /_sandbox/clock``    ``{"now", "speed", "offset"}``
``GET /_sandbox/config``   the configuration in force
``POST /_sandbox/config``  change known configuration keys until the next reset
=========================  =====================================================

``GET /_sandbox/{provider}/campaigns/{id}`` shows one campaign (Ogangi: broadcast) of a
provider's state without its audience, read-only: the page the extra links of campaign
operators and sensors open when their connection points at the sandbox.

Provider modules add their own routes under ``/_sandbox/{provider}/`` (``admin_routes``).

Config keys of the framework: ``clock_speed``, ``log_limit``, and ``latency_ms`` /
``connect_latency_ms`` (a simulated network: a wait before every provider request, and
an extra one on each new connection; see :mod:`airflow_sms_provider.sandbox.latency`).
"""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from airflow_sms_provider.sandbox.faults import FaultRuleError
from airflow_sms_provider.sandbox.state import SandboxState


def _state(request: Request) -> SandboxState:
    return request.app.state.sandbox


def _error(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=400)


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise FaultRuleError("the body must be JSON") from None


async def health(request: Request) -> Response:
    state = _state(request)
    return JSONResponse({"status": "ok", "providers": sorted(state.provider_names), "now": state.now().isoformat()})


async def reset(request: Request) -> Response:
    _state(request).reset()
    return JSONResponse({"status": "reset"})


async def requests_log(request: Request) -> Response:
    state = _state(request)
    items = state.requests(request.query_params.get("provider"))
    return JSONResponse({"items": items, "count": len(items), "in_flight": state.in_flight})


async def add_faults(request: Request) -> Response:
    state = _state(request)
    try:
        body = await _json(request)
        specs = body if isinstance(body, list) else [body]
        rules = state.faults.add(specs, state.provider_names)
    except FaultRuleError as exc:
        return _error(str(exc))
    return JSONResponse({"added": [rule.as_dict() for rule in rules], "faults": state.faults.snapshot()})


async def list_faults(request: Request) -> Response:
    return JSONResponse({"faults": _state(request).faults.snapshot()})


async def clear_faults(request: Request) -> Response:
    _state(request).faults.clear()
    return JSONResponse({"faults": []})


def _non_negative(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{key!r} must be a number >= 0")
    return float(value)


async def set_clock(request: Request) -> Response:
    state = _state(request)
    try:
        body = await _json(request)
        if not isinstance(body, dict):
            raise ValueError('send a JSON object like {"advance": 60}')
        advance, speed = _non_negative(body, "advance"), _non_negative(body, "speed")
        to = body.get("to")
        if to is not None:
            if advance is not None:
                raise ValueError('give "advance" or "to", not both')
            if not isinstance(to, str):
                raise ValueError(f'"to" must be an ISO 8601 instant, got {to!r}')
            state.clock.advance_to(datetime.fromisoformat(to))
    except (ValueError, FaultRuleError) as exc:
        return _error(str(exc))
    if speed is not None:
        state.clock.set_speed(speed)
    if advance:
        state.clock.advance(advance)
    return JSONResponse(state.clock.snapshot())


async def get_clock(request: Request) -> Response:
    return JSONResponse(_state(request).clock.snapshot())


def _config(state: SandboxState) -> dict[str, Any]:
    # The clock's speed is the one in force: POST /_sandbox/clock changes it without a config write.
    return {**state.config, "clock_speed": state.clock.speed}


async def get_config(request: Request) -> Response:
    return JSONResponse(_config(_state(request)))


async def set_config(request: Request) -> Response:
    state = _state(request)
    try:
        body = await _json(request)
        if not isinstance(body, dict):
            raise ValueError("send a JSON object of config keys")
        state.configure(body)
    except (KeyError, ValueError, FaultRuleError) as exc:
        return _error(str(exc))
    return JSONResponse(_config(state))


async def campaign_view(request: Request) -> Response:
    """One campaign as ``GET /_sandbox/{provider}/state`` shows it, its recipients and messages left out.

    Read-only; what the campaign operators' extra links open when a connection points at the
    sandbox (:mod:`airflow_sms_provider.links`).
    """
    state = _state(request)
    name, campaign_id = request.path_params["provider"], request.path_params["id"]
    provider = state.providers.get(name)
    if provider is None:
        return JSONResponse({"error": f"no provider {name!r}"}, status_code=404)
    # Each provider's snapshot takes what it supports: Mobizon one campaign, Mobizon and BSG no messages.
    accepted = inspect.signature(provider.snapshot).parameters
    options = {k: v for k, v in (("campaign_id", campaign_id), ("with_messages", False)) if k in accepted}
    snapshot = provider.snapshot(state.now(), **options)
    items = snapshot.get("campaigns") or snapshot.get("broadcasts") or []
    found = next((item for item in items if item.get("id") == campaign_id), None)
    if found is None:
        return JSONResponse({"error": f"{name}: no campaign {campaign_id}"}, status_code=404)
    campaign = {k: v for k, v in found.items() if k not in ("recipients", "messages")}
    return JSONResponse({"provider": name, "campaign": campaign})


def routes(state: SandboxState) -> list[Route]:
    """The framework's admin routes (provider modules add theirs)."""
    return [
        Route("/_sandbox/health", health, methods=["GET"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/requests", requests_log, methods=["GET"]),
        Route("/_sandbox/faults", add_faults, methods=["POST"]),
        Route("/_sandbox/faults", list_faults, methods=["GET"]),
        Route("/_sandbox/faults", clear_faults, methods=["DELETE"]),
        Route("/_sandbox/clock", set_clock, methods=["POST"]),
        Route("/_sandbox/clock", get_clock, methods=["GET"]),
        Route("/_sandbox/config", get_config, methods=["GET"]),
        Route("/_sandbox/config", set_config, methods=["POST"]),
        Route("/_sandbox/{provider}/campaigns/{id:int}", campaign_view, methods=["GET"]),
    ]
