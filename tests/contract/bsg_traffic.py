"""pytest plugin: every BSG exchange with the sandbox during the suite, checked against BSG's OpenAPI spec.

Loaded for every run (``-p tests.contract.bsg_traffic`` in pyproject's addopts). It wraps
``httpx.Client.send`` / ``httpx.AsyncClient.send`` and the sync hooks' lean lane
(``http11.Lane.exchange``): a request to ``/api/…`` on a loopback
host (the sandbox's BSG emulation) is validated as sent, and its answer as received once
it has been read (the transport streams answers, so the body is teed, never re-read).
Violations are collected per test; the test that caused one fails, naming it.

The spec is the provider's own file with the documented patches of
:mod:`tests.contract.bsg_openapi_overlay`. A test that sends off-spec requests on
purpose (to see the sandbox refuse them) is marked ``bsg_off_spec``: its requests are
not judged, its answers still are. Without openapi-core or the spec file the plugin
does nothing; ``tests/contract/test_bsg_contract.py`` then fails (CI) or skips (elsewhere).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MARKER = "bsg_off_spec"

_lock = threading.Lock()
_violations: list[str] = []
_checked = {"requests": 0, "responses": 0}
_state: dict[str, Any] = {"api": None, "reason": None, "off_spec": False}
_slow_uniq: Any = None


@functools.lru_cache(maxsize=1)
def api() -> Any:
    """The OpenAPI object of the patched spec, or None (reason in ``_state``)."""
    try:
        from openapi_core import Config, OpenAPI

        from tests.contract import bsg_openapi_overlay as overlay

        spec = overlay.patched_spec()
    except (ImportError, FileNotFoundError) as err:
        _state["reason"] = f"{type(err).__name__}: {err}"
        return None
    # The spec is not checked for well-formedness: its PHP regexes are not ECMA ones; the
    # request/response checks are all in force.
    config = Config(extra_format_validators=overlay.FORMAT_VALIDATORS, server_base_url=overlay.SERVER,
                    spec_validator_cls=None)  # fmt: skip
    return OpenAPI.from_dict(spec, config=config)


class _Req:
    """An httpx request as openapi-core's Request protocol."""

    def __init__(self, request: httpx.Request, server: str) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        self.host_url, self.path, self.method = server, request.url.path, request.method.lower()
        self.body = bytes(request.content) or None
        self.content_type = request.headers.get("content-type", "")
        query = parse_qsl(urlsplit(str(request.url)).query, keep_blank_values=True)
        self.parameters = RequestParameters(query=ImmutableMultiDict(query), header=Headers(dict(request.headers)),
                                            cookie=ImmutableMultiDict())  # fmt: skip


class _Resp:
    def __init__(self, response: httpx.Response, content: bytes) -> None:
        from werkzeug.datastructures import Headers

        self.status_code, self.data = response.status_code, content
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(dict(response.headers))


def _is_bsg(request: httpx.Request) -> bool:
    return request.url.host in LOOPBACK and request.url.path.startswith("/api/")


def _record(kind: str, request: httpx.Request, errors: list[Any]) -> None:
    # A path the spec does not have is not BSG's: Airflow's own API server answers /api/v2/…
    # on the loopback too. (The sandbox's 404 for unknown /api/ paths has its own test.)
    errors = [e for e in errors if type(e).__name__ != "PathNotFound"]
    if not errors:
        return
    detail = "; ".join(f"{type(e).__name__}: {_cause(e)}" for e in errors[:3])
    with _lock:
        _violations.append(f"{kind} {request.method} {request.url.path}: {detail}")


def _cause(err: BaseException) -> str:
    causes = [str(err)]
    inner = getattr(err, "schema_errors", None) or ([err.__cause__] if err.__cause__ else [])
    for sub in list(inner)[:2]:
        causes.append(getattr(sub, "message", None) or str(sub)[:300])
    return " <- ".join(c for c in causes if c)[:600]


def _check_request(request: httpx.Request) -> None:
    validator = api()
    if validator is None or _state["off_spec"]:
        return
    from tests.contract.bsg_openapi_overlay import SERVER

    _checked["requests"] += 1
    _record("request", request, list(validator.iter_request_errors(_Req(request, SERVER))))


def _check_response(request: httpx.Request, response: httpx.Response, content: bytes) -> None:
    validator = api()
    if validator is None:
        return
    if "json" not in response.headers.get("content-type", ""):
        # The emulation answers JSON only; anything else is a fault a test injected
        # (sandbox/faults.py: a proxy's HTML page, a cut body), not the emulation's answer.
        return
    from tests.contract.bsg_openapi_overlay import SERVER

    _checked["responses"] += 1
    errors = list(validator.iter_response_errors(_Req(request, SERVER), _Resp(response, content)))
    if response.status_code >= 400:
        # The spec documents few error answers per operation: one it does not list cannot be
        # judged (its shape is checked by tests/integration where it matters). Any other error stays.
        errors = [e for e in errors if type(e).__name__ != "ResponseNotFound"]
    if _state["off_spec"]:  # an off-spec request may match no operation: only its answer's shape counts
        errors = [e for e in errors if type(e).__name__ != "OperationNotFound"]
    _record("response", request, errors)


class _Tee(httpx.SyncByteStream):
    def __init__(self, inner: Any, request: httpx.Request, response: httpx.Response) -> None:
        self.inner, self.request, self.response, self.chunks = inner, request, response, []  # type: list[bytes]
        self.done = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.chunks.append(chunk)
            yield chunk
        self.done = True

    def close(self) -> None:
        self.inner.close()
        if self.done:
            _check_response(self.request, self.response, b"".join(self.chunks))


class _ATee(httpx.AsyncByteStream):
    def __init__(self, inner: Any, request: httpx.Request, response: httpx.Response) -> None:
        self.inner, self.request, self.response, self.chunks = inner, request, response, []  # type: list[bytes]
        self.done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            self.chunks.append(chunk)
            yield chunk
        self.done = True

    async def aclose(self) -> None:
        await self.inner.aclose()
        if self.done:
            _check_response(self.request, self.response, b"".join(self.chunks))


def _freeze(value: Any) -> Any:
    """A hashable form equal exactly when jsonschema's ``equal`` says so (bools apart from 1/0)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, dict):
        return ("dict", frozenset((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", tuple(_freeze(v) for v in value))
    return value


def _fast_uniq(container: Any) -> bool:
    """jsonschema's ``uniq`` compares unsortable items (objects) pairwise: 10,000 phones take
    minutes. The same answer in one pass; the check itself is unchanged."""
    try:
        frozen = [_freeze(item) for item in container]
        return len(set(frozen)) == len(frozen)
    except TypeError:  # something unhashable after all: the original
        return _slow_uniq(container)


def _install() -> None:
    from jsonschema import _keywords

    global _slow_uniq
    _slow_uniq = _keywords.uniq
    _keywords.uniq = _fast_uniq

    sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send

    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        if not _is_bsg(request):
            return sync_send(self, request, **kwargs)
        _check_request(request)
        if not kwargs.get("stream"):
            response = sync_send(self, request, **kwargs)
            _check_response(request, response, response.content)
            return response
        response = sync_send(self, request, **kwargs)
        response.stream = _Tee(response.stream, request, response)
        return response

    async def asend(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        if not _is_bsg(request):
            return await async_send(self, request, **kwargs)
        _check_request(request)
        if not kwargs.get("stream"):
            response = await async_send(self, request, **kwargs)
            _check_response(request, response, response.content)
            return response
        response = await async_send(self, request, **kwargs)
        response.stream = _ATee(response.stream, request, response)
        return response

    httpx.Client.send = send  # type: ignore[method-assign]
    httpx.AsyncClient.send = asend  # type: ignore[method-assign]

    from airflow_sms_provider import http11

    lane_exchange = http11.Lane.exchange

    def exchange(self: http11.Lane, method: str, url: httpx.URL, block: bytes, body: bytes | None,
                 *args: Any, **kwargs: Any) -> http11.Answer:  # fmt: skip
        # The sync hooks' calls go through the lean lane, not httpx.Client.send: the same checks.
        fields = [tuple(line.split(b": ", 1)) for line in block.split(b"\r\n") if line]
        request = httpx.Request(method, url, headers=fields, content=body or b"")
        if not _is_bsg(request):
            return lane_exchange(self, method, url, block, body, *args, **kwargs)
        _check_request(request)
        status, content, headers = lane_exchange(self, method, url, block, body, *args, **kwargs)
        _check_response(request, httpx.Response(status, headers=headers, content=content, request=request), content)
        return status, content, headers

    http11.Lane.exchange = exchange  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: sends off-spec BSG requests on purpose (answers still checked)")
    if os.environ.get("BSG_CONTRACT", "1") != "0":
        _install()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    with _lock:
        _violations.clear()
    _state["off_spec"] = item.get_closest_marker(MARKER) is not None
    try:
        result = yield
    finally:
        _state["off_spec"] = False
    with _lock:
        found = list(_violations)
        _violations.clear()
    if found:
        shown = "\n  ".join(found[:5]) + (f"\n  … and {len(found) - 5} more" if len(found) > 5 else "")
        raise AssertionError(f"BSG traffic that does not match BSG's OpenAPI spec:\n  {shown}")
    return result


def stats() -> dict[str, Any]:
    """What was checked so far (for the contract test's report)."""
    return {**_checked, "reason": _state["reason"]}


__all__ = ["api", "stats"]
