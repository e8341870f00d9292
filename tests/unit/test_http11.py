"""The lean HTTP/1.1 lane of the sync clients: exact request bytes, every answer framing, keep-alive
reuse and its limits, hostile answers, and the same retry decisions as httpx's path (over loopback)."""

from __future__ import annotations

import gzip
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider import transport
from airflow_sms_provider.protocols import mobizon as proto
from airflow_sms_provider.transport import Response, RetryPolicy, send, sync_client

KEY = "K" * 40
FAST = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.001)
OK = b'{"code":0,"data":"1","message":""}'
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def answer(body: bytes = OK, status: bytes = b"200 OK", headers: bytes = b"") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(body), headers, body)


class Scripted:
    """A raw server on 127.0.0.1: answers each request with the next scripted bytes (a callable gets the
    request); ``close_after`` closes the connection after that many answers. Records requests and
    connections; stops by itself."""

    def __init__(self, answers: list[bytes | Callable[[bytes], bytes]], close_after: int = 0) -> None:
        self.answers, self.close_after = list(answers), close_after
        self.requests: list[bytes] = []
        self.connections = 0
        self.hung_up = threading.Event()  # set each time the server closes a connection
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(5)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with self._sock:
            while self.answers:
                try:
                    conn, _ = self._sock.accept()
                except OSError:
                    return
                self.connections += 1
                with conn:
                    conn.settimeout(5)
                    self._one_connection(conn)
                self.hung_up.set()

    def _one_connection(self, conn: socket.socket) -> None:
        data, served = b"", 0
        while self.answers:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, data = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
            while len(data) < length:
                data += conn.recv(65536)
            request = head + b"\r\n\r\n" + data[:length]
            data = data[length:]
            self.requests.append(request)
            reply = self.answers.pop(0)
            conn.sendall(reply(request) if callable(reply) else reply)
            served += 1
            if served == self.close_after:
                return


def get(idempotent: bool = True) -> transport.Request:
    return proto.build("campaign", "get" if idempotent else "send", KEY, {"id": 7}, idempotent=idempotent)


def content(resp: Response) -> bytes:
    return resp.content


def test_the_request_bytes_are_exactly_these() -> None:
    server = Scripted([answer()])
    req = get()
    with sync_client(server.url, 5.0, True) as client:
        assert send(client, req, content, FAST) == OK
    port = server.url.rsplit(":", 1)[1]
    assert server.requests == [
        b"POST /service/campaign/get?output=json&api=v1&apiKey=" + KEY.encode() + b" HTTP/1.1\r\n"
        b"Host: 127.0.0.1:" + port.encode() + b"\r\n"
        b"Accept: */*\r\n"
        b"Accept-Encoding: gzip, deflate\r\n"
        b"Connection: keep-alive\r\n"
        b"User-Agent: airflow-sms-provider\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 4\r\n\r\n"
        b"id=7"
    ]


def test_a_kept_alive_connection_carries_the_next_request() -> None:
    server = Scripted([answer(b"one"), answer(b"two"), answer(b"three")])
    with sync_client(server.url, 5.0, True) as client:
        assert [send(client, get(), content, FAST) for _ in range(3)] == [b"one", b"two", b"three"]
    assert server.connections == 1


def test_a_connection_the_server_closed_while_idle_is_not_used_again() -> None:
    server = Scripted([answer(b"one"), answer(b"two")], close_after=1)
    with sync_client(server.url, 5.0, True) as client:
        first = send(client, get(idempotent=False), content, FAST)
        assert server.hung_up.wait(5)  # closed before the next request: a close racing a request is ambiguous
        time.sleep(0.05)  # the FIN on its way over loopback
        second = send(client, get(idempotent=False), content, FAST)  # a money call: no retry needed
    assert (first, second) == (b"one", b"two") and server.connections == 2


@pytest.mark.parametrize(
    "reply, reused",
    [
        (CHUNKED + b"3;ext=1\r\none\r\n5\r\n, two\r\n0\r\nX-T: 1\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\none, two", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\none, two", False),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\none, two", True),
        (answer(gzip.compress(b"one, two"), headers=b"Content-Encoding: gzip\r\n"), True),
        (answer(zlib.compress(b"one, two"), headers=b"Content-Encoding: deflate\r\n"), True),
        (answer(zlib.compress(b"one, two")[2:-4], headers=b"Content-Encoding: deflate\r\n"), True),
        (answer(b"one, two") + b"HTTP/1.1 200 OK\r\n", False),  # more than it said: never reused
        (CHUNKED[:-2] + b"Content-Length: 8\r\n\r\n8\r\none, two\r\n0\r\n\r\n", False),
    ],
    ids=["chunked", "until-close", "http-1.0", "100-continue", "gzip", "deflate", "raw-deflate", "extra-bytes",
         "length-and-chunked"],
)  # fmt: skip
def test_every_answer_framing_is_read_and_reuse_follows_it(reply: bytes, reused: bool) -> None:
    server = Scripted([reply, answer(b"next")], close_after=0 if reused else 1)
    with sync_client(server.url, 5.0, True) as client:
        assert send(client, get(), content, FAST) == b"one, two"
        assert send(client, get(), content, FAST) == b"next"
    assert server.connections == (1 if reused else 2)


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\n",  # closed in the headers
        b"",  # closed before a byte
        b"SMTP 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\n folded: header\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nfour\r\n0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        answer(b"not gzip", headers=b"Content-Encoding: gzip\r\n"),
        answer(b"x", headers=b"Content-Encoding: br\r\n"),
    ],
    ids=["cut-headers", "nothing", "not-http", "status-4-digits", "two-lengths", "negative-length", "cut-body",
         "obs-fold", "bad-chunk-size", "long-chunk", "switching", "bad-gzip", "unasked-coding"],
)  # fmt: skip
def test_an_unreadable_answer_is_ambiguous_for_a_money_call_and_a_server_error_for_a_read(reply: bytes) -> None:
    server = Scripted([reply, reply, reply, reply], close_after=1)
    with sync_client(server.url, 5.0, True) as client:
        with pytest.raises(exc.SmsAmbiguousError, match=f"after the request was sent.*|{server.url}"):
            send(client, get(idempotent=False), content, FAST)
        assert len(server.requests) == 1  # never repeated
        with pytest.raises(exc.SmsServerError, match=server.url.replace(".", r"\.")):
            send(client, get(), content, FAST)
    assert len(server.requests) == 4  # the read: tried three times


@pytest.mark.parametrize(
    "reply",
    [
        answer(b" " * 101),
        CHUNKED + b"40\r\n" + b" " * 64 + b"\r\n40\r\n" + b" " * 64 + b"\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b" " * 4096,
        answer(gzip.compress(b" " * 10_000), headers=b"Content-Encoding: gzip\r\n"),
    ],
    ids=["declared", "chunked", "until-close", "gzip-bomb"],
)
def test_an_answer_past_the_cap_is_refused(monkeypatch: pytest.MonkeyPatch, reply: bytes) -> None:
    monkeypatch.setattr(transport, "MAX_ANSWER_BYTES", 100)
    server = Scripted([reply, reply], close_after=1)
    with sync_client(server.url, 5.0, True) as client:
        with pytest.raises(exc.SmsProtocolError, match="larger than the 100 bytes"):
            send(client, get(), content, FAST)
        with pytest.raises(exc.SmsAmbiguousError, match="larger than the 100 bytes"):
            send(client, get(idempotent=False), content, FAST)
    assert len(server.requests) == 2


def test_a_header_with_a_line_break_is_never_sent() -> None:
    server = Scripted([answer()])
    req = transport.Request("POST", "/x", "test call", headers={"X-Token": "abc\r\nX-Injected: 1"}, content=b"")
    with sync_client(server.url, 5.0, True) as client, pytest.raises(exc.SmsServerError):
        send(client, req, content, RetryPolicy(max_attempts=1))
    assert server.requests == []


def test_a_refused_connection_names_the_host_and_the_cause() -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    refused = rf"could not connect to http://127\.0\.0\.1:{port}: connection refused \(ConnectError\)"
    with sync_client(f"http://127.0.0.1:{port}", 5.0, True) as client, pytest.raises(exc.SmsServerError, match=refused):
        send(client, get(idempotent=False), content, RetryPolicy(max_attempts=1))


def test_a_proxy_from_the_environment_keeps_the_call_on_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    server = Scripted([answer()])
    monkeypatch.setenv("HTTP_PROXY", server.url)  # the "proxy" answers: httpx sent it there
    with sync_client("http://api.example.test", 5.0, True) as client:
        assert send(client, get(), content, FAST) == OK
        assert transport._lane(client, get()) is None
    assert server.requests[0].startswith(b"POST http://api.example.test/service/campaign/get?")  # proxy form


def test_a_closed_client_refuses_as_httpx_does() -> None:
    server = Scripted([answer()])
    client = sync_client(server.url, 5.0, True)
    send(client, get(), content, FAST)
    client.close()
    with pytest.raises(RuntimeError, match="client has been closed"):
        send(client, get(), content, FAST)
    assert client.lane.closed


def test_a_plain_httpx_client_is_sent_by_httpx() -> None:
    with httpx.Client(base_url="http://127.0.0.1:9") as client:
        assert transport._lane(client, get()) is None


def test_a_connection_idle_past_the_expiry_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_sms_provider import http11

    server = Scripted([answer(b"one"), answer(b"two"), answer(b"three")], close_after=0)
    with sync_client(server.url, 5.0, True) as client:
        assert send(client, get(), content, FAST) == b"one"
        assert send(client, get(), content, FAST) == b"two"
        assert server.connections == 1
        monkeypatch.setattr(http11, "KEEPALIVE_EXPIRY", 0.0)
        assert send(client, get(), content, FAST) == b"three"
    assert server.connections == 2


# ------------------------------------------------------------------ TLS


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (IP SAN) signed by its own key: (cert, key) PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sandbox test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_file, key_file


class TlsScripted(Scripted):
    """:class:`Scripted` behind TLS: the handshake happens in the server's thread, per connection."""

    def __init__(self, answers: list[bytes | Callable[[bytes], bytes]], cert: Path, key: Path) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self.handshakes_failed = 0
        super().__init__(answers)
        self.url = self.url.replace("http://", "https://")

    def _one_connection(self, conn: socket.socket) -> None:
        try:
            tls = self._context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1
            self.answers.pop(0)  # the client refused this server: nothing more will come on it
            return
        with tls:
            super()._one_connection(tls)


def test_tls_with_a_trusted_certificate_carries_the_requests_on_one_connection(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = TlsScripted([answer(b"one"), answer(b"two")], cert, key)
    trusted = ssl.create_default_context(cafile=str(cert))  # checks the name too: 127.0.0.1 is in the SAN
    with transport.SyncClient(**{**transport.client_options(server.url, 5.0, True), "verify": trusted}) as client:
        assert client.lane is not None and (transport._lane(client, get()) or (None,))[0] is client.lane
        assert [send(client, get(), content, FAST) for _ in range(2)] == [b"one", b"two"]
    assert server.connections == 1 and server.requests[0].startswith(b"POST /service/campaign/get?")


def test_tls_with_an_untrusted_certificate_never_sends_and_says_why(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = TlsScripted([answer()], cert, key)
    with sync_client(server.url, 5.0, True) as client, pytest.raises(
        exc.SmsServerError, match=r"could not connect to https://127\.0\.0\.1:\d+: TLS failed: the certificate is "
                                  r"not trusted \(ConnectError\)"):  # fmt: skip
        send(client, get(idempotent=False), content, RetryPolicy(max_attempts=1))
    assert server.requests == []


def test_tls_unchecked_only_when_the_connection_says_so(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = TlsScripted([answer(b"unchecked")], cert, key)
    with sync_client(server.url, 5.0, False) as client:
        assert send(client, get(), content, FAST) == b"unchecked"


@pytest.mark.parametrize("wrapped_before_import", [False, True])
def test_httpx_wrapped_by_instrumentation_sends_every_call_itself(
    monkeypatch: pytest.MonkeyPatch, wrapped_before_import: bool
) -> None:
    import functools

    seen: list[str] = []
    original = httpx.HTTPTransport.handle_request

    @functools.wraps(original)
    def traced(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)  # what a tracing span would record
        return original(self, request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", traced)
    if wrapped_before_import:  # instrumented before the package was imported: the wrapper is what it captured
        monkeypatch.setattr(transport, "_HTTPX_SENDS", (traced, transport._HTTPX_SENDS[1]))
    server = Scripted([answer()])
    with sync_client(server.url, 5.0, True) as client:
        assert transport._lane(client, get()) is None
        assert send(client, get(), content, FAST) == OK
    assert seen == ["/service/campaign/get"]
