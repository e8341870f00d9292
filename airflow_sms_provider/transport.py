"""Sending a built request, once for sync hooks and async triggers.

Protocol modules build :class:`Request` values and parse answers without doing any
I/O; this module is the only place that talks to httpx. It owns the retry policy
(exponential backoff with full jitter) and the rule that decides what may be
repeated:

* the request never left (connection refused, connect timeout): always retried;
* the provider said "slow down" or "busy" (:class:`SmsRetryableError` other than a
  server error): retried, because nothing was done;
* the request left and the answer is missing or a 5xx: retried only when the call
  is idempotent; otherwise :class:`SmsAmbiguousError`, so that a call that costs
  money is reconciled by the caller instead of being sent twice.

An answer that is retried and carries ``Retry-After`` (seconds or an HTTP date) is
repeated no sooner than it says, within the policy's ``max_delay``.

**Deadline.** httpx's timeout bounds each wait (connect, each read), so a server that
trickles its answer a byte at a time would hold a call for ever. Each attempt also has
an overall deadline, from the start of the request to the last byte of the answer:
:data:`DEADLINE_FACTOR` times the client's timeout (the connection's ``timeout``
extra, 30 s by default, so 60 s). An attempt past it is a request that left without an
answer: repeated when idempotent, :class:`SmsAmbiguousError` otherwise. The async path
cancels the attempt at the deadline; the sync path gives every socket operation of the
attempt (connect, TLS handshake, each write and each read of the status line, headers and
body) only the time left before the deadline, so a server trickling even its headers is
cut at the deadline itself (:class:`_DeadlineBackend`).

**Unreadable answers.** Any exception a parser raises that is not one of ours (a
``ValueError``, ``KeyError``, ``RecursionError``...) means the answer could not be read:
:class:`SmsProtocolError` for an idempotent call, :class:`SmsAmbiguousError` for one
that costs money, because the provider answered and so acted on the request.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import random
import socket
import ssl
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from typing import Any, TypeVar

import httpcore
import httpx

from airflow_sms_provider import http11
from airflow_sms_provider.exceptions import (
    SmsAmbiguousError,
    SmsFatalError,
    SmsNotFoundError,
    SmsProtocolError,
    SmsProviderError,
    SmsRetryableError,
    SmsServerError,
)
from airflow_sms_provider.redaction import install_log_filters

log = logging.getLogger(__name__)
T = TypeVar("T")

USER_AGENT = "airflow-sms-provider"
# No answer of these APIs comes near this; a larger one is refused while it streams in,
# so a broken or hostile server cannot fill the worker's memory.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
# One attempt (connect, request, the whole answer) ends within this many times the client's
# timeout; see the module docstring.
DEADLINE_FACTOR = 2.0


@dataclass(frozen=True)
class Request:
    """One HTTP call, fully built: what a protocol module returns."""

    method: str
    path: str
    label: str
    params: Sequence[tuple[str, str]] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None
    files: Mapping[str, tuple[str, Any, str]] | None = None
    form: Mapping[str, str] | None = None
    idempotent: bool = True

    def __repr__(self) -> str:
        # Query, headers and body can carry API keys and tokens: never print them.
        return f"Request({self.method} {self.path}, {self.label!r})"


@dataclass(frozen=True)
class Response:
    """The parts of an HTTP answer a protocol parser looks at."""

    status_code: int
    content: bytes
    headers: Mapping[str, str]

    def __repr__(self) -> str:
        # A body can echo a key or a token, and tracebacks that print frame locals (Airflow 3.0's
        # task logs) would show it: the size only.
        return f"Response({self.status_code}, {len(self.content)} bytes)"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: delay ~ U(0, min(max_delay, base * 2**n))."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None when attempts are used up."""
        if attempt >= self.max_attempts:
            return None
        return random.uniform(0, min(self.max_delay, self.base_delay * (2 ** (attempt - 1))))


Parser = Callable[[Response], T]


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delay-seconds or an HTTP date), or None."""
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))  # RFC 9110 says whole seconds; a fraction is read as meant
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))

_NEVER_LEFT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_LEFT_NO_ANSWER = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class DeadlineExceeded(httpx.TimeoutException):
    """An attempt ran past its overall deadline (see the module docstring)."""

    def __init__(self, seconds: float, request: httpx.Request | None = None) -> None:
        super().__init__(f"no complete answer within the deadline of {seconds:g} s", request=request)
        self.seconds = seconds


def deadline_of(client: httpx.Client | httpx.AsyncClient) -> float | None:
    """Seconds one attempt may take with ``client``: DEADLINE_FACTOR x its longest timeout."""
    timeout = client.timeout
    values = [v for v in (timeout.connect, timeout.read, timeout.write, timeout.pool) if v is not None]
    return max(values) * DEADLINE_FACTOR if values else None


def origin(url: str | httpx.URL) -> str:
    """``scheme://host:port`` of ``url``: never its path, query string or credentials."""
    try:
        url = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "an invalid URL"
    if not url.host:
        return "the host"
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return f"{url.scheme}://{url.host}:{port}" if port else f"{url.scheme}://{url.host}"


def not_found(what: str, object_id: Any, base_url: str, exc: SmsProviderError) -> SmsNotFoundError:
    """``campaign 123 not found at https://host:443: deleted?``, keeping the provider's words."""
    return SmsNotFoundError(
        f"{what} {object_id} not found at {origin(base_url)}: deleted? ({exc})",
        provider=exc.provider,
        code=exc.code,
        details=exc.details,
    )


def where(exc: Exception) -> str:
    """:func:`origin` of the request ``exc`` is about, or "" when it names none."""
    try:
        url = exc.request.url  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return ""
    return origin(url)


_CONNECT_WORDS = (
    (("name or service not known", "nodename nor servname", "temporary failure in name resolution",
      "no address associated", "getaddrinfo failed", "name resolution"), "the host name does not resolve"),
    (("certificate verify failed", "certificate_verify_failed"), "TLS failed: the certificate is not trusted"),
    (("ssl", "tls", "handshake"), "TLS failed"),
    (("connection refused", "errno 111", "errno 61"), "connection refused"),
    (("network is unreachable", "no route to host"), "the network is unreachable"),
)  # fmt: skip


def _connect_cause(exc: Exception) -> str:
    """Why a connection could not be made: refused, a name that does not resolve, TLS, ..."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, socket.gaierror):
            return "the host name does not resolve"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "TLS failed: the certificate is not trusted"
        if isinstance(cause, ssl.SSLError):
            return "TLS failed"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    # httpcore re-raises with the OS error's text only; read the kind from it (never quoted: it may hold a URL).
    text = str(exc).lower()
    for words, why in _CONNECT_WORDS:
        if any(word in text for word in words):
            return why
    if isinstance(exc, httpx.ConnectTimeout):
        return "the connection timed out"
    if isinstance(exc, httpx.PoolTimeout):
        return "no free connection in the pool in time"
    return "connection failed"


def _failure(request: Request, exc: Exception) -> SmsProviderError:
    """Turn a transport exception into the error that says whether repeating is safe."""
    name = type(exc).__name__
    host = where(exc)
    at = host or "the host"
    if isinstance(exc, _NEVER_LEFT):
        return SmsServerError(f"{request.label}: could not connect to {at}: {_connect_cause(exc)} ({name})")
    why = f"{exc}" if isinstance(exc, DeadlineExceeded) else f"no answer ({name})"
    if request.idempotent:
        return SmsServerError(f"{request.label}: {why} from {at}")
    return SmsAmbiguousError(
        f"{request.label}: {why} from {at} after the request was sent; it may have been carried out"
    )


def is_refusal(err: BaseException) -> bool:
    """True when ``err`` says a create/send was NOT carried out: only then may a caller forget it started.

    A refusal is the provider saying no (bad input, credentials, conflict, "slow down" after every
    retry: our fatal and retryable errors) or a request that never left (a connection that could not
    be made: :class:`SmsServerError` from :func:`send`, which turns a 5xx of a call that costs money
    into :class:`SmsAmbiguousError`). Everything else after the request left (no answer, an
    unreadable one, a parser's ``ValueError``, a ``RecursionError``, a deadline) is ambiguous.
    """
    return isinstance(err, (SmsFatalError, SmsRetryableError)) and not isinstance(err, SmsAmbiguousError)


def _declared_ok(resp: httpx.Response) -> bool:
    """True when the answer declares a length within the limit (the HTTP layer holds it to that)."""
    declared = resp.headers.get("content-length")
    if declared is None or not declared.isdigit() or resp.headers.get("content-encoding"):
        return False  # unknown, or compressed: count what is decoded
    if int(declared) > MAX_ANSWER_BYTES:
        raise _TooLarge
    return True


def _grow(body: bytearray, chunk: bytes) -> None:
    body += chunk
    if len(body) > MAX_ANSWER_BYTES:
        raise _TooLarge


# The end of this thread's sync attempt, read by every socket wait (httpcore's and the lane's).
_ATTEMPT = http11.ATTEMPT
_left = http11.left
_TooLarge = http11.TooLarge


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every wait ends by the attempt's deadline (see the module docstring)."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend with :class:`_DeadlineStream` streams and connects cut to the deadline."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:  # fmt: skip
        left = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_tcp(host, port, left, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:  # fmt: skip
        left = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, left, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


_BOUNDED: weakref.WeakSet[httpx.Client] = weakref.WeakSet()


def _bound(client: httpx.Client) -> None:
    """Give every connection pool of ``client`` (its transport, proxy mounts) the deadline backend, once.

    httpx has no public hook for it: the pools' ``_network_backend`` is wrapped where it exists
    (httpcore 1.x). ``tests/integration/test_every_call_deadline.py`` fails if an upgrade moves it.
    """
    if client in _BOUNDED:
        return
    for transport in [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None and not isinstance(backend, _DeadlineBackend):
            pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
    _BOUNDED.add(client)


def _receive(
    client: httpx.Client, request: Request, deadline: float | None = None, on_sent: Callable[[], None] | None = None
) -> Response:
    route = _lane(client, request)
    if route is None:
        attempt = functools.partial(_receive_all, client, request, on_sent)
    else:
        attempt = functools.partial(_receive_lane, client, *route, request, on_sent)
    if deadline is None:
        return attempt()
    if route is None:
        _bound(client)
    _ATTEMPT.end = time.monotonic() + deadline
    try:
        return attempt()
    except httpx.TimeoutException as exc:
        if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)) or time.monotonic() < _ATTEMPT.end:
            raise
        try:
            built: httpx.Request | None = exc.request
        except RuntimeError:
            built = None
        raise DeadlineExceeded(deadline, built) from None  # a request that left: named as such
    finally:
        _ATTEMPT.end = None


class SyncClient(httpx.Client):
    """An ``httpx.Client`` whose plain requests :func:`send` makes on its :class:`http11.Lane`.

    The lane is ~3x leaner per request than httpcore (see :mod:`http11`); what it does not do
    (multipart bodies, a proxy from the environment for the URL) goes through httpx itself.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        verify = kwargs.get("verify")
        self.lane = http11.Lane(verify if isinstance(verify, ssl.SSLContext) else None)
        self._direct: dict[tuple[str, str, int | None], bool] = {}

    def direct(self, url: httpx.URL) -> bool:
        """True when httpx itself would send ``url`` straight to its host (no proxy mounted for it)."""
        key = (url.scheme, url.host, url.port)
        known = self._direct.get(key)
        if known is None:
            try:
                chosen = self._transport_for_url(url)
            except Exception:  # an httpx without this (private) method: keep to httpx
                chosen = None
            known = self._direct[key] = (
                url.scheme in ("http", "https") and chosen is self._transport
                and type(chosen) is httpx.HTTPTransport
            )  # fmt: skip
        return known

    def close(self) -> None:
        self.lane.close()
        super().close()


# httpx's own sending, as imported: a library that wraps it (OpenTelemetry's instrumentation, respx and
# other mocks) must see every call, so while either is replaced, or was wrapped before this module was
# imported (``__wrapped__``, as functools.wraps and wrapt leave it), the lane stands aside.
_HTTPX_SENDS = (httpx.HTTPTransport.handle_request, httpcore.ConnectionPool.handle_request)
_HTTPX_LOG = logging.getLogger("httpx")


def _httpx_untouched() -> bool:
    sends = (httpx.HTTPTransport.handle_request, httpcore.ConnectionPool.handle_request)
    return sends == _HTTPX_SENDS and not any(hasattr(send, "__wrapped__") for send in sends)


def _lane(client: httpx.Client, request: Request) -> tuple[http11.Lane, httpx.URL] | None:
    """The lean lane for ``request`` and its URL, when ``client`` has one and the request needs nothing else."""
    lane = getattr(client, "lane", None)
    if lane is None or request.files is not None or client.is_closed or not _httpx_untouched():
        return None
    url = _url(client, request)
    if not isinstance(url, httpx.URL) or not client.direct(url):  # type: ignore[attr-defined]
        return None
    return lane, url


def _receive_lane(
    client: httpx.Client,
    lane: http11.Lane,
    url: httpx.URL,
    request: Request,
    on_sent: Callable[[], None] | None = None,
) -> Response:
    block = lane.headers(client.headers, request.headers)
    status, content, headers = lane.exchange(
        request.method, url, block, request.content, client.timeout, MAX_ANSWER_BYTES, on_sent
    )
    if _HTTPX_LOG.isEnabledFor(logging.INFO):  # the line httpx logs for each call, redacted by the same filters
        reason = httpx.codes.get_reason_phrase(status)
        _HTTPX_LOG.info('HTTP Request: %s %s "HTTP/1.1 %d %s"', request.method, url, status, reason)
    return Response(status, content, headers)


def _receive_all(client: httpx.Client, request: Request, on_sent: Callable[[], None] | None = None) -> Response:
    kwargs = _kwargs(client, request)
    if on_sent is not None and "content" in kwargs:
        kwargs["content"] = _then(request.content, on_sent)  # type: ignore[arg-type]
        # The length a bytes body gets, given up front: the same header, in the same place (httpx adds it
        # after the merged headers either way), and no chunked encoding for the generator body.
        kwargs["headers"] = {**(request.headers or {}), "Content-Length": str(len(request.content))}  # type: ignore[arg-type]
    resp = client.send(client.build_request(request.method, **kwargs), stream=True)
    try:
        content = resp.read() if _declared_ok(resp) else _counted(resp)
    finally:
        resp.close()
    return Response(resp.status_code, content, resp.headers)


def _counted(resp: httpx.Response) -> bytes:
    body = bytearray()
    for chunk in resp.iter_bytes():
        _grow(body, chunk)
    return bytes(body)


async def _areceive_all(client: httpx.AsyncClient, built: httpx.Request) -> Response:
    resp = await client.send(built, stream=True)
    try:
        if _declared_ok(resp):
            content = await resp.aread()
        else:
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                _grow(body, chunk)
            content = bytes(body)
    finally:
        await resp.aclose()
    return Response(resp.status_code, content, resp.headers)


_TIMEOUT: Any = getattr(asyncio, "timeout", None)


async def _areceive(client: httpx.AsyncClient, request: Request, deadline: float | None = None) -> Response:
    built = client.build_request(request.method, **_kwargs(client, request))
    if deadline is None:
        return await _areceive_all(client, built)
    try:
        # Connect, request and the whole answer. asyncio.timeout (3.11) costs no task per call.
        if _TIMEOUT is not None:
            async with _TIMEOUT(deadline):
                return await _areceive_all(client, built)
        return await asyncio.wait_for(_areceive_all(client, built), deadline)
    except (TimeoutError, asyncio.TimeoutError):
        raise DeadlineExceeded(deadline, built) from None


def _too_large(request: Request) -> SmsProviderError:
    message = f"{request.label}: the answer is larger than the {MAX_ANSWER_BYTES} bytes accepted; not read"
    if request.idempotent:
        return SmsProtocolError(message)
    # The provider answered, so it acted on the request: what it did is unknown, not undone.
    return SmsAmbiguousError(message + "; the call may have been carried out")


class _Retry:
    """The retry decisions of one call, shared by :func:`send` and :func:`asend`."""

    def __init__(self, request: Request, parse: Parser[T], policy: RetryPolicy) -> None:
        self.request, self.parse, self.policy = request, parse, policy
        self.attempt = 0

    def after(self, resp: Response | None = None, exc: Exception | None = None) -> tuple[bool, Any]:
        """Return ``(True, parsed)`` when done, ``(False, pause)`` to try again; raise when final."""
        self.attempt += 1
        if resp is not None:
            try:
                return True, self.parse(resp)
            except SmsRetryableError as err:
                error: SmsProviderError = err
                if isinstance(err, SmsServerError) and not self.request.idempotent:
                    raise SmsAmbiguousError(
                        f"{self.request.label}: the provider failed after receiving the request ({err}); "
                        "it may have been carried out",
                        provider=err.provider,
                        code=err.code,
                    ) from err
            except SmsProviderError:
                raise
            except RecursionError as err:
                raise self._unreadable(resp, err) from None  # not a traceback thousands of frames deep
            except Exception as err:  # a parser's bug or an answer it did not expect: not a refusal
                raise self._unreadable(resp, err) from err
        else:
            assert exc is not None
            error = _failure(self.request, exc)
            if isinstance(error, SmsAmbiguousError):
                raise error from exc
        pause = self.policy.delay(self.attempt)
        if pause is None:
            raise error
        asked = retry_after(resp.headers) if resp is not None else None
        if asked is not None:
            # The provider said when it takes requests again: sooner only earns another refusal.
            pause = max(pause, min(asked, self.policy.max_delay))
        log.warning(
            "%s; retrying in %.1fs (attempt %d of %d)", error, pause, self.attempt, self.policy.max_attempts
        )
        return False, pause

    def _unreadable(self, resp: Response, err: Exception) -> SmsProviderError:
        """The error for an answer the parser failed on with something other than our own errors."""
        message = f"{self.request.label}: HTTP {resp.status_code} answer that could not be read ({type(err).__name__})"
        if self.request.idempotent:
            return SmsProtocolError(message)
        # The provider answered, so it received the request: what it did is unknown, not undone.
        return SmsAmbiguousError(message + "; the call may have been carried out")


# Absolute request URLs, query string included, per client: httpx would otherwise merge the
# base URL and re-encode the same query on every call (~0.3 ms of Python per request, about
# half of what httpx itself spends on a small request).
_URLS: weakref.WeakKeyDictionary[Any, dict[tuple[str, tuple[tuple[str, str], ...]], httpx.URL]] = (
    weakref.WeakKeyDictionary()
)
_URLS_PER_CLIENT = 256  # ids in paths vary; past this many the cache starts over


def _url(client: httpx.Client | httpx.AsyncClient, request: Request) -> httpx.URL | str:
    """The URL httpx would build from ``request.path`` and ``request.params``, built once per client."""
    try:
        key = (request.path, tuple(request.params))
        urls = _URLS.setdefault(client, {})
        url = urls.get(key)
    except TypeError:  # unhashable params (a list value): let httpx build it every time
        return request.path
    if url is None:
        if len(urls) >= _URLS_PER_CLIENT:
            urls.clear()
        # build_request applies base_url and params exactly as request() would.
        url = urls[key] = client.build_request(request.method, request.path, params=list(request.params)).url
    return url


def _kwargs(client: httpx.Client | httpx.AsyncClient, request: Request) -> dict[str, Any]:
    url = _url(client, request)
    kwargs: dict[str, Any] = {"url": url, "headers": request.headers or None}
    if isinstance(url, str):
        kwargs["params"] = list(request.params)
    if request.files is not None:
        kwargs["files"] = dict(request.files)
        kwargs["data"] = dict(request.form or {})
    elif request.content is not None:
        kwargs["content"] = request.content
    return kwargs


def _then(body: bytes, on_sent: Callable[[], None]) -> Iterator[bytes]:
    """``body`` as a one-chunk stream that calls ``on_sent`` once httpcore has written the chunk."""
    yield body
    on_sent()


def send(
    client: httpx.Client,
    request: Request,
    parse: Parser[T],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    on_sent: Callable[[], None] | None = None,
) -> T:
    """Send ``request`` with ``client`` and return ``parse(answer)``, retrying as the policy allows.

    ``on_sent``: called once, in this thread, as soon as a body (``request.content``) has been
    written to the socket and before the answer is awaited: the moment to wake worker threads
    without making them compete for the GIL with this request's own sending (httpcore's
    check of a kept-alive connection releases the GIL just before the write).
    """
    retry = _Retry(request, parse, policy)
    deadline = deadline_of(client)
    fired: list[bool] = []

    def once() -> None:  # a retried attempt writes the body again: call on_sent for the first only
        if not fired:
            fired.append(True)
            on_sent()  # type: ignore[misc]

    while True:
        try:
            done, value = retry.after(resp=_receive(client, request, deadline, once if on_sent and not fired else None))
        except httpx.HTTPError as exc:
            done, value = retry.after(exc=exc)
        except _TooLarge:
            raise _too_large(request) from None
        if done:
            return value
        sleep(value)


async def asend(client: httpx.AsyncClient, request: Request, parse: Parser[T], policy: RetryPolicy) -> T:
    """The async twin of :func:`send`, for triggers: same decisions, same parser."""
    retry = _Retry(request, parse, policy)
    deadline = deadline_of(client)
    while True:
        try:
            done, value = retry.after(resp=await _areceive(client, request, deadline))
        except httpx.HTTPError as exc:
            done, value = retry.after(exc=exc)
        except _TooLarge:
            raise _too_large(request) from None
        if done:
            return value
        await asyncio.sleep(value)


@functools.lru_cache(maxsize=4)
def _tls_context(verify: bool) -> ssl.SSLContext:
    # Built as httpx builds it for ``verify=...`` (CA bundle, SSL_CERT_* variables), once per process.
    return httpx.create_ssl_context(verify=verify)


def sync_client(base_url: str, timeout: float, verify: bool) -> SyncClient:
    """A keep-alive client for a hook, sharing the process's TLS context (see :func:`async_client`)."""
    return SyncClient(**{**client_options(base_url, timeout, verify), "verify": _tls_context(verify)})


def async_client(base_url: str, timeout: float, verify: bool) -> httpx.AsyncClient:
    """An AsyncClient for one trigger, sharing the process's TLS context.

    A triggerer runs hundreds of triggers in one event loop. Each keeps its own client
    (a pool per trigger: httpcore scans a pool's connections on every request, so one
    pool for all would cost O(triggers) per poll), but loading the CA bundle into a new
    TLS context for each would cost ~0.8 MB and ~40 ms of CPU per trigger (or per hook).
    """
    return httpx.AsyncClient(**{**client_options(base_url, timeout, verify), "verify": _tls_context(verify)})


class _NoCookies(CookieJar):
    """A jar that keeps nothing: the three APIs authenticate by key, token or signature, never by cookie.

    httpx reads every answer's ``Set-Cookie`` into the client's jar (a tenth of the client's CPU per
    addRecipients portion, cookies or not), and would send them back on the next call.
    """

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


def client_options(base_url: str, timeout: float, verify: bool) -> dict[str, Any]:
    """Keyword arguments shared by the sync and async httpx clients of every hook."""
    install_log_filters()
    return {
        "base_url": base_url,
        "timeout": httpx.Timeout(timeout),
        "verify": verify,
        "headers": {"User-Agent": USER_AGENT},
        "cookies": _NoCookies(),
    }
