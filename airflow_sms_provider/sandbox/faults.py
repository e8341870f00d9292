"""Fault injection: rules set over the admin API make chosen requests fail on purpose.

A rule (JSON, ``POST /_sandbox/faults``)::

    {"provider": "mobizon" | "bsg" | "ogangi" | null,   # null: any provider
     "path": "campaign/send",       # regex searched in the path, case-insensitive; null: any
     "method": "POST",              # optional
     "times": 1,                    # how many matching requests it hits; null: unlimited
     "skip": 0,                     # let the first K matching requests through first
     "action": "http_status" | "reset" | "timeout_after" | "delay" | "mobizon_code",
     ...action arguments}

Actions:

* ``http_status``: answer ``status`` (default 503) with ``body`` (text, or JSON for a
  dict/list) without running the handler.
* ``reset``: close the connection without an answer and without running the handler.
* ``timeout_after``: run the handler (its effect happens), then hold the answer for
  ``seconds`` (default 5): a client with a shorter read timeout gives up after the
  server acted.
* ``delay``: wait ``seconds`` (default 1), then run the handler normally.
* ``mobizon_code``: answer HTTP 200 ``{"code": code, "data": data, "message": message}``
  without running the handler (e.g. 30 rate limited, 10 campaign locked).
* ``trickle``: run the handler (its effect happens), send the status and headers (the
  real ``Content-Length`` included), then the body one byte every ``seconds`` (default
  0.5): a client whose timeout bounds each read, not the whole answer, never ends.
* ``answer_instead``: run the handler (its effect happens), then answer ``status`` and
  ``body`` as ``http_status`` does instead of its answer: a call carried out whose answer
  cannot be read (give ``"status": 200`` for an OK status with a garbled body).

Rules are checked in the order they were added; the first one that applies wins.
Admin paths (``/_sandbox/``) are never faulted. Seconds are real seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from airflow_sms_provider.sandbox.state import SandboxState

ACTION_ARGS = {
    "http_status": ("status", "body"),
    "reset": (),
    "timeout_after": ("seconds",),
    "delay": ("seconds",),
    "mobizon_code": ("code", "data", "message"),
    "trickle": ("seconds",),
    "answer_instead": ("status", "body"),
}
ADMIN_PREFIX = "/_sandbox/"
_DEFAULT_SECONDS = {"timeout_after": 5.0, "delay": 1.0, "trickle": 0.5}


class FaultRuleError(ValueError):
    """A rule sent to the admin API is malformed."""


@dataclass
class FaultRule:
    """One rule and its counters."""

    id: int
    action: str
    provider: str | None = None
    path: str | None = None
    method: str | None = None
    times: int | None = 1
    skip: int = 0
    status: int = 503
    body: Any = None
    seconds: float = 0.0
    code: int = 0
    data: Any = None
    message: str = ""
    seen: int = 0  # matching requests so far, skipped ones included
    hits: int = 0  # requests the rule acted on
    _regex: re.Pattern[str] | None = field(default=None, repr=False)

    def matches(self, provider: str | None, method: str, path: str) -> bool:
        """Whether this request is one the rule is about (ignoring counters)."""
        if self.provider is not None and self.provider != provider:
            return False
        if self.method is not None and self.method != method.upper():
            return False
        return self._regex is None or self._regex.search(path) is not None

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def as_dict(self) -> dict[str, Any]:
        """The rule as the admin API shows it (its action's arguments only), with its counters."""
        keys = ("id", "action", "provider", "path", "method", "times", "skip", *ACTION_ARGS[self.action])
        out = {key: getattr(self, key) for key in keys}
        out.update(seen=self.seen, hits=self.hits, exhausted=self.exhausted)
        return out


def _number(spec: dict[str, Any], key: str, default: float, *, minimum: float = 0) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise FaultRuleError(f"{key!r} must be a number >= {minimum}")
    return float(value)


def _optional_int(spec: dict[str, Any], key: str, default: int | None) -> int | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FaultRuleError(f"{key!r} must be a non-negative integer or null")
    return value


def parse_rule(spec: Any, rule_id: int, providers: set[str]) -> FaultRule:
    """Validate one rule from JSON."""
    if not isinstance(spec, dict):
        raise FaultRuleError("a rule must be a JSON object")
    unknown = set(spec) - {
        "provider", "path", "method", "times", "skip", "action",
        "status", "body", "seconds", "code", "data", "message",
    }  # fmt: skip
    if unknown:
        raise FaultRuleError(f"unknown rule keys: {sorted(unknown)}")
    action = spec.get("action")
    if action not in ACTION_ARGS:
        raise FaultRuleError(f"'action' must be one of {sorted(ACTION_ARGS)}")
    provider = spec.get("provider")
    if provider is not None and provider not in providers:
        raise FaultRuleError(f"unknown provider {provider!r}; known: {sorted(providers)}")
    path = spec.get("path")
    try:
        regex = re.compile(path, re.IGNORECASE) if path else None
    except (re.error, TypeError) as exc:
        raise FaultRuleError(f"'path' is not a valid regex: {exc}") from None
    status = int(_number(spec, "status", 503, minimum=100))
    if status > 599:
        raise FaultRuleError("'status' must be an HTTP status code")
    skip = _optional_int(spec, "skip", 0)
    return FaultRule(
        id=rule_id,
        action=action,
        provider=provider,
        path=path,
        method=str(spec["method"]).upper() if spec.get("method") else None,
        times=_optional_int(spec, "times", 1),
        skip=skip or 0,
        status=status,
        body=spec.get("body"),
        seconds=_number(spec, "seconds", _DEFAULT_SECONDS.get(action, 0.0)),
        code=int(_number(spec, "code", 0)),
        data=spec.get("data"),
        message=str(spec.get("message") or ""),
        _regex=regex,
    )


class FaultBook:
    """The active rules; thread-safe because tests may also use it directly."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)

    def add(self, specs: list[Any], providers: set[str]) -> list[FaultRule]:
        """Validate all ``specs`` first, then append them (all or nothing)."""
        with self._lock:
            rules = [parse_rule(spec, next(self._ids), providers) for spec in specs]
            self._rules.extend(rules)
            return rules

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, provider: str | None, method: str, path: str) -> FaultRule | None:
        """The rule that acts on this request, counting it; None when the request passes."""
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or not rule.matches(provider, method, path):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip:
                    continue
                rule.hits += 1
                return rule
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.as_dict() for rule in self._rules]


# ---------------------------------------------------------------- ASGI middleware


async def _send_body(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop_connection(receive: Receive) -> None:
    """Close the client's connection without a byte of answer.

    ASGI has no "abort" message, so reach the server's transport through the bound
    ``receive`` of uvicorn's request cycle. Other servers: raise, which at least
    makes them answer 500 instead of running the handler.
    """
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("sandbox fault 'reset' needs uvicorn")
    transport.close()
    # Let connection_lost run first, so the server does not try to answer a closed connection.
    for _ in range(3):
        await asyncio.sleep(0)


async def _send_rule_body(send: Send, rule: FaultRule) -> None:
    """Answer ``rule.status`` with ``rule.body`` (JSON for a dict or list, else text)."""
    if isinstance(rule.body, (dict, list)):
        await _send_body(send, rule.status, json.dumps(rule.body).encode(), "application/json")
    else:
        text = rule.body if rule.body is not None else f"sandbox fault: HTTP {rule.status}"
        await _send_body(send, rule.status, str(text).encode(), "text/plain; charset=utf-8")


async def _trickle(app: ASGIApp, seconds: float, scope: Scope, receive: Receive, send: Send) -> None:
    """Run the handler, then send its answer's body a byte every ``seconds``."""
    held: list[Message] = []

    async def hold(message: Message) -> None:
        held.append(message)

    await app(scope, receive, hold)
    body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
    start = next(m for m in held if m["type"] == "http.response.start")
    transport = getattr(getattr(receive, "__self__", None), "transport", None)  # uvicorn's, as in _drop_connection
    try:
        await send(start)
        for i in range(len(body)):
            if transport is not None and transport.is_closing():
                return  # the client gave up
            await send({"type": "http.response.body", "body": body[i : i + 1], "more_body": i + 1 < len(body)})
            await asyncio.sleep(seconds)
    except OSError:  # the client gave up: what it is meant to do
        return


class FaultMiddleware:
    """Applies the state's fault rules to provider requests."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        rule = self.state.faults.take(self.state.provider_for(path), scope["method"], path)
        if rule is None:
            await self.app(scope, receive, send)
            return
        scope["sandbox.fault"] = rule.id
        await self._apply(rule, scope, receive, send)

    async def _apply(self, rule: FaultRule, scope: Scope, receive: Receive, send: Send) -> None:
        if rule.action == "reset":
            scope["sandbox.outcome"] = "reset"
            await _drop_connection(receive)
        elif rule.action == "delay":
            await asyncio.sleep(rule.seconds)
            await self.app(scope, receive, send)
        elif rule.action == "timeout_after":
            held: list[Message] = []

            async def hold(message: Message) -> None:
                held.append(message)

            await self.app(scope, receive, hold)
            await asyncio.sleep(rule.seconds)
            for message in held:  # the server ignores these if the client has gone
                await send(message)
        elif rule.action == "mobizon_code":
            scope["sandbox.code"] = rule.code
            doc = {"code": rule.code, "data": rule.data, "message": rule.message}
            await _send_body(send, 200, json.dumps(doc).encode(), "application/json")
        elif rule.action == "trickle":
            await _trickle(self.app, rule.seconds, scope, receive, send)
        elif rule.action == "answer_instead":

            async def drop(message: Message) -> None:
                pass

            await self.app(scope, receive, drop)
            await _send_rule_body(send, rule)
        else:  # http_status
            if isinstance(rule.body, (dict, list)):
                await _send_body(send, rule.status, json.dumps(rule.body).encode(), "application/json")
            else:
                text = rule.body if rule.body is not None else f"sandbox fault: HTTP {rule.status}"
                await _send_body(send, rule.status, str(text).encode(), "text/plain; charset=utf-8")
