"""A lean HTTP/1.1 keep-alive client for the sync hooks' calls (what :func:`transport.send` uses).

Why not httpx for these: httpx spends about 0.5 ms of CPU per request in httpcore, h11 (which
parses each answer event by event in Python) and its own models. A delivery report reads ten
pages per 1,000 messages and an upload two portions, so httpx was most of their client CPU and,
with the GIL shared by the worker threads, what kept them under the wire's limit
(docs/benchmarks.md, rows 1 and 8). This client does only what the three APIs need: one request at
a time per connection, a bytes body with its length, an answer delimited by ``Content-Length``,
chunked encoding or the connection's end, gzip or deflate, TLS with the process's context.
Everything else (multipart uploads, proxies from the environment, a client with another transport)
still goes through httpx: :func:`transport.send` decides per request.

Failures are httpx's exceptions, so :mod:`transport`'s rules apply unchanged: a connection that
could not be made is ``ConnectError``/``ConnectTimeout`` (the request never left); anything after
the request's first byte is ``WriteError``, ``ReadError``, ``ReadTimeout`` or
``RemoteProtocolError`` (it left). Every socket wait is cut to what is left of the attempt's
overall deadline (:func:`left`).
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import httpx

_MAX_HEAD = 64 * 1024  # status line and headers of one answer
_MAX_HEADERS = 100
_MAX_LINE = 4096  # a chunk-size or trailer line
_RECV = 256 * 1024
_MAX_IDLE = 20  # kept-alive connections per origin, as httpx keeps
# A connection idle this long is closed rather than reused, as httpx does: servers drop idle ones
# after a few seconds (uvicorn 5 s), and a request sent just as they do is lost without an answer.
KEEPALIVE_EXPIRY = 5.0
_ACCEPT_ENCODING = "gzip, deflate"  # what :func:`_decoded` reads (zlib is always there)
_OWN = frozenset((b"host", b"content-length", b"transfer-encoding"))  # written per request by exchange


class TooLarge(Exception):
    """The answer passed the size cap (``transport.MAX_ANSWER_BYTES``) while it was being read."""


# The end (time.monotonic()) of the sync attempt this thread is making, or None: read by every
# socket wait of the sync clients (threads of one hook share its client, not their attempts).
ATTEMPT = threading.local()


def left(timeout: float | None, late: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of this thread's attempt; ``late`` raised when nothing is."""
    end = getattr(ATTEMPT, "end", None)
    if end is None:
        return timeout
    remaining = end - time.monotonic()
    if remaining <= 0:
        raise late("the attempt's overall deadline passed")
    return remaining if timeout is None else min(timeout, remaining)


class _Failing:
    """Socket failures of one phase as httpx's exceptions: ``with _READING: sock.recv(...)``."""

    __slots__ = ("failed", "timed_out")

    def __init__(self, timed_out: type[httpx.TimeoutException], failed: type[httpx.TransportError]) -> None:
        self.timed_out, self.failed = timed_out, failed

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        # Never suppresses (returns None): anything else goes on as it was raised.
        if kind is not None and issubclass(kind, TimeoutError):
            raise self.timed_out(str(exc) or "timed out") from exc
        if kind is not None and issubclass(kind, OSError):
            raise self.failed(str(exc)) from exc


# A connection that could not be made never left; a failure writing or reading the request did.
_CONNECTING = _Failing(httpx.ConnectTimeout, httpx.ConnectError)
_WRITING = _Failing(httpx.WriteTimeout, httpx.WriteError)
_READING = _Failing(httpx.ReadTimeout, httpx.ReadError)


class _Connection:
    __slots__ = ("buf", "idle_since", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()  # bytes received and not yet read
        self.idle_since = 0.0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _dropped(sock: socket.socket) -> bool:
    """True when an idle connection has something to read: the server closed it (or sent what no
    request asked for), so it must not carry the next request."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() here, or a closed socket
        try:
            return bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True


Answer = tuple[int, bytes, httpx.Headers]


class Lane:
    """The kept-alive connections of one sync client, by origin; safe to share between threads."""

    def __init__(self, ssl_context: ssl.SSLContext | None) -> None:
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._lock = threading.Lock()
        self._heads: dict[Any, bytes] = {}
        self.closed = False

    def close(self) -> None:
        with self._lock:
            self.closed = True
            idle = [conn for conns in self._idle.values() for conn in conns]
            self._idle.clear()
        for conn in idle:
            conn.close()

    def headers(self, defaults: httpx.Headers, extra: Mapping[str, str] | None) -> bytes:
        """The header lines sent with every request (``defaults`` overridden by ``extra``), encoded once."""
        key = tuple(extra.items()) if extra else ()
        block = self._heads.get(key)
        if block is None:
            merged = httpx.Headers(defaults)
            merged.update(extra or {})
            merged["Accept-Encoding"] = _ACCEPT_ENCODING
            lines = []
            for name, value in merged.raw:
                if name.lower() in _OWN:
                    continue
                if any(c in name + value for c in b"\r\n\0") or not name or b":" in name:
                    raise httpx.LocalProtocolError("a header name or value holds a line break or NUL; not sent")
                lines.append(name + b": " + value + b"\r\n")
            block = b"".join(lines)
            if len(self._heads) >= 64:  # tokens change: start over rather than grow
                self._heads.clear()
            self._heads[key] = block
        return block

    def exchange(
        self,
        method: str,
        url: httpx.URL,
        header_block: bytes,
        body: bytes | None,
        timeout: httpx.Timeout,
        cap: int,
        on_sent: Callable[[], None] | None = None,
    ) -> Answer:
        """Send one request and read its whole answer, at most ``cap`` bytes: ``(status, body, headers)``."""
        scheme = url.scheme
        host = url.raw_host.decode("ascii")
        port = url.port or (443 if scheme == "https" else 80)
        head = b"%s %s HTTP/1.1\r\nHost: %s\r\n%s" % (method.encode("ascii"), url.raw_path, url.netloc, header_block)
        if body is not None:
            head += b"Content-Length: %d\r\n" % len(body)
        elif method in ("POST", "PUT", "PATCH"):
            head += b"Content-Length: 0\r\n"
        try:
            return self._exchange((scheme, host, port), method, head + b"\r\n" + (body or b""), timeout, cap, on_sent)
        except httpx.RequestError as exc:  # a transport's or a decoding error: name the host
            if exc._request is None:
                exc.request = httpx.Request(method, url)
            raise

    def _exchange(
        self,
        key: tuple[str, str, int],
        method: str,
        data: bytes,
        timeout: httpx.Timeout,
        cap: int,
        on_sent: Callable[[], None] | None,
    ) -> Answer:
        scheme, host, port = key
        conn = self._take(key) or self._connect(scheme, host, port, timeout)
        try:
            self._write(conn, data, timeout)
            if on_sent is not None:
                on_sent()
            status, content, headers, reusable = _read_answer(conn, method, timeout, cap)
        except BaseException:
            conn.close()
            raise
        if reusable:
            self._give(key, conn)
        else:
            conn.close()
        return status, content, headers

    def _take(self, key: tuple[str, str, int]) -> _Connection | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                conn = idle.pop()
            if time.monotonic() - conn.idle_since < KEEPALIVE_EXPIRY and not _dropped(conn.sock):
                return conn
            conn.close()

    def _give(self, key: tuple[str, str, int], conn: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if not self.closed and len(idle) < _MAX_IDLE:
                conn.idle_since = time.monotonic()
                idle.append(conn)
                return
        conn.close()

    def _connect(self, scheme: str, host: str, port: int, timeout: httpx.Timeout) -> _Connection:
        with _CONNECTING:
            sock = socket.create_connection((host, port), timeout=left(timeout.connect, httpx.ConnectTimeout))
        try:
            with _CONNECTING:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if scheme == "https":
                    context = self._ssl or ssl.create_default_context()
                    sock.settimeout(left(timeout.connect, httpx.ConnectTimeout))
                    sock = context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    @staticmethod
    def _write(conn: _Connection, data: bytes, timeout: httpx.Timeout) -> None:
        with _WRITING:
            conn.sock.settimeout(left(timeout.write, httpx.WriteTimeout))
            conn.sock.sendall(data)


def _recv(conn: _Connection, timeout: httpx.Timeout) -> bytes:
    with _READING:
        conn.sock.settimeout(left(timeout.read, httpx.ReadTimeout))
        return conn.sock.recv(_RECV)


_CUT = "the server closed the connection before the whole answer came"


def _read_until(conn: _Connection, timeout: httpx.Timeout, mark: bytes, limit: int, what: str, silent: str) -> bytes:
    """The bytes before ``mark`` (``mark`` consumed too), reading on as needed, at most ``limit`` of them.

    ``what`` names the part for the error when it is too long; ``silent`` is the error when the server
    closes the connection before a byte of it.
    """
    buf = conn.buf
    searched = 0
    while True:
        end = buf.find(mark, max(0, searched - len(mark) + 1))
        if end >= 0:
            found = bytes(buf[:end])
            del buf[: end + len(mark)]
            return found
        if len(buf) > limit:
            raise httpx.RemoteProtocolError(f"{what} of the answer is too long")
        searched = len(buf)
        chunk = _recv(conn, timeout)
        if not chunk:
            raise httpx.RemoteProtocolError(_CUT if buf else silent)
        buf += chunk


def _read_head(conn: _Connection, timeout: httpx.Timeout) -> bytes:
    return _read_until(conn, timeout, b"\r\n\r\n", _MAX_HEAD, "the status line and headers",
                       "Server disconnected without sending a response.")  # httpx's words  # fmt: skip


def _parse_head(head: bytes) -> tuple[bytes, int, list[tuple[bytes, bytes]]]:
    line, _, rest = head.partition(b"\r\n")
    parts = line.split(b" ", 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0") or len(parts[1]) != 3 or not parts[1].isdigit():
        raise httpx.RemoteProtocolError("the answer does not begin with an HTTP/1.x status line")
    status = int(parts[1])
    if status < 100:
        raise httpx.RemoteProtocolError("the answer's status code is not one HTTP has")
    fields: list[tuple[bytes, bytes]] = []
    for field in rest.split(b"\r\n") if rest else ():
        name, colon, value = field.partition(b":")
        if not colon or not name or name != name.strip() or field[:1] in (b" ", b"\t"):
            raise httpx.RemoteProtocolError("the answer has a malformed header line")
        fields.append((name, value.strip(b" \t")))
        if len(fields) > _MAX_HEADERS:
            raise httpx.RemoteProtocolError("the answer has too many headers")
    return parts[0], status, fields


def _values(fields: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """Every comma-separated value of header ``name`` (lower-case), lower-cased, in order."""
    found = [value for key, value in fields if key.lower() == name]
    return [item.strip().lower() for value in found for item in value.split(b",") if item.strip()]


def _read_answer(
    conn: _Connection, method: str, timeout: httpx.Timeout, cap: int
) -> tuple[int, bytes, httpx.Headers, bool]:
    while True:
        version, status, fields = _parse_head(_read_head(conn, timeout))
        if status >= 200:
            break
        if status == 101:
            raise httpx.RemoteProtocolError("the server switched protocols; these APIs speak HTTP/1.1 only")
        # 1xx (100 Continue, 103 Early Hints): the final answer follows.
    keep = version == b"HTTP/1.1" and b"close" not in _values(fields, b"connection")
    codings = _values(fields, b"transfer-encoding")
    lengths = set(_values(fields, b"content-length"))
    if method == "HEAD" or status in (204, 304):
        content = b""
    elif codings:
        # A length beside a transfer coding is a smuggling pattern: read by the coding, never reuse.
        keep = keep and not lengths
        if codings[-1] == b"chunked":
            content = _read_chunked(conn, timeout, cap)
        else:
            content, keep = _read_to_close(conn, timeout, cap), False
    elif lengths:
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            raise httpx.RemoteProtocolError("the answer's Content-Length is not one whole number")
        content = _read_exactly(conn, int(next(iter(lengths))), timeout, cap)
    else:
        content, keep = _read_to_close(conn, timeout, cap), False
    if conn.buf:  # more than the answer said it holds: the next answer could not be told apart
        keep = False
    encoding = _values(fields, b"content-encoding")
    if encoding:
        content = _decoded(content, encoding, cap)
    headers = httpx.Headers(fields)
    return status, content, headers, keep


def _read_exactly(conn: _Connection, size: int, timeout: httpx.Timeout, cap: int) -> bytes:
    if size > cap:
        raise TooLarge
    buf = conn.buf
    if len(buf) >= size:
        content = bytes(buf[:size])
        del buf[:size]
        return content
    body = bytearray(size)
    have = len(buf)
    body[:have] = buf
    buf.clear()
    view = memoryview(body)
    while have < size:
        with _READING:
            conn.sock.settimeout(left(timeout.read, httpx.ReadTimeout))
            got = conn.sock.recv_into(view[have:])
        if not got:
            raise httpx.RemoteProtocolError(_CUT)
        have += got
    return bytes(body)


def _read_line(conn: _Connection, timeout: httpx.Timeout) -> bytes:
    return _read_until(conn, timeout, b"\r\n", _MAX_LINE, "a chunk-size or trailer line", _CUT)


_HEX = frozenset(b"0123456789abcdefABCDEF")


def _read_chunked(conn: _Connection, timeout: httpx.Timeout, cap: int) -> bytes:
    body = bytearray()
    while True:
        size_text = _read_line(conn, timeout).split(b";", 1)[0].strip()
        if not size_text or not _HEX.issuperset(size_text):
            raise httpx.RemoteProtocolError("the answer has a malformed chunk size")
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > cap:
            raise TooLarge
        body += _read_exactly(conn, size, timeout, cap)
        if _read_line(conn, timeout):
            raise httpx.RemoteProtocolError("a chunk of the answer is longer than its size says")
    for _ in range(_MAX_HEADERS + 1):  # trailers, up to the empty line
        if not _read_line(conn, timeout):
            return bytes(body)
    raise httpx.RemoteProtocolError("the answer has too many trailer lines")


def _read_to_close(conn: _Connection, timeout: httpx.Timeout, cap: int) -> bytes:
    body = bytearray(conn.buf)
    conn.buf.clear()
    while True:
        if len(body) > cap:
            raise TooLarge
        chunk = _recv(conn, timeout)
        if not chunk:
            return bytes(body)
        body += chunk


def _decoded(content: bytes, codings: list[bytes], cap: int) -> bytes:
    """``content`` with its content codings undone (last applied first), at most ``cap`` bytes."""
    for coding in reversed(codings):
        if coding == b"identity":
            continue
        if coding in (b"gzip", b"x-gzip"):
            content = _inflate(content, 16 + zlib.MAX_WBITS, cap)
        elif coding == b"deflate":
            try:
                content = _inflate(content, zlib.MAX_WBITS, cap)
            except httpx.DecodingError:  # some servers send raw deflate without the zlib wrapper
                content = _inflate(content, -zlib.MAX_WBITS, cap)
        else:
            raise httpx.DecodingError(f"the answer is encoded with {coding.decode('latin-1')!r}, not asked for")
    return content


def _inflate(content: bytes, wbits: int, cap: int) -> bytes:
    try:
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(content, cap + 1)
        if len(out) > cap or inflater.unconsumed_tail:
            raise TooLarge
        out += inflater.flush()
        if len(out) > cap:
            raise TooLarge
        return out
    except zlib.error as exc:
        raise httpx.DecodingError(f"the answer could not be decompressed ({exc})") from None
