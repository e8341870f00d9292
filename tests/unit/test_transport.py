"""Retry decisions: what is repeated, what is never sent twice, and secrets kept out of errors."""

from __future__ import annotations

import logging
import socket
import threading

import httpx
import pytest
import respx

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider import transport
from airflow_sms_provider.protocols import mobizon as proto
from airflow_sms_provider.redaction import RedactingFilter, redact_text, register_secret
from airflow_sms_provider.transport import RetryPolicy, send

BASE = "https://api.example.test"
KEY = "K" * 40
OK = {"code": 0, "data": "1", "message": ""}
FAST = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.001)


def call(idempotent: bool):
    req = proto.build("campaign", "send" if not idempotent else "get", KEY, {"id": 1}, idempotent=idempotent)
    with httpx.Client(base_url=BASE) as client:
        return send(client, req, proto.parse, FAST, sleep=lambda _: None)


@respx.mock
def test_connect_error_is_retried_even_for_money_calls() -> None:
    route = respx.post(f"{BASE}/service/campaign/send").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=OK)]
    )
    assert call(idempotent=False).data == "1"
    assert route.call_count == 2


@respx.mock
def test_read_timeout_on_a_money_call_is_ambiguous_and_not_repeated() -> None:
    route = respx.post(f"{BASE}/service/campaign/send").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(exc.SmsAmbiguousError):
        call(idempotent=False)
    assert route.call_count == 1


@respx.mock
def test_5xx_on_a_money_call_is_ambiguous_and_not_repeated() -> None:
    route = respx.post(f"{BASE}/service/campaign/send").mock(return_value=httpx.Response(502))
    with pytest.raises(exc.SmsAmbiguousError):
        call(idempotent=False)
    assert route.call_count == 1


@respx.mock
def test_rate_limit_on_a_money_call_is_retried_because_nothing_was_done() -> None:
    route = respx.post(f"{BASE}/service/campaign/send").mock(
        side_effect=[httpx.Response(200, json={"code": 30, "data": None, "message": "slow down"}),
                     httpx.Response(200, json=OK)]
    )
    assert call(idempotent=False).code == 0
    assert route.call_count == 2


@respx.mock
def test_reads_retry_timeouts_and_5xx_until_attempts_run_out() -> None:
    route = respx.post(f"{BASE}/service/campaign/get").mock(
        side_effect=[httpx.ReadTimeout("x"), httpx.Response(503), httpx.Response(200, json=OK)]
    )
    assert call(idempotent=True).code == 0
    assert route.call_count == 3
    route.side_effect = None
    route.return_value = httpx.Response(500)
    route.reset()
    with pytest.raises(exc.SmsServerError):
        call(idempotent=True)
    assert route.call_count == FAST.max_attempts


@respx.mock
def test_fatal_codes_are_not_retried() -> None:
    route = respx.post(f"{BASE}/service/campaign/get").mock(
        return_value=httpx.Response(200, json={"code": 8, "data": None, "message": "bad key"})
    )
    with pytest.raises(exc.SmsAuthError):
        call(idempotent=True)
    assert route.call_count == 1


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=4.0)
    delays = [policy.delay(n) for n in range(1, 10)]
    assert all(d is not None and 0 <= d <= 4.0 for d in delays)
    assert policy.delay(10) is None
    assert max(policy.delay(1) or 0 for _ in range(200)) <= 1.0


def test_redaction_of_query_keys_bearer_tokens_and_registered_secrets() -> None:
    register_secret("my-private-key-123")
    text = redact_text(
        "GET https://h/service/a/b?output=json&apiKey=abcdef123 Authorization: Bearer eyJhbGciOi.x.y "
        "signed with my-private-key-123"
    )
    assert "abcdef123" not in text and "eyJhbGciOi" not in text and "my-private-key-123" not in text
    assert "apiKey=***" in text


def test_httpx_request_log_line_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("httpx-test")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="httpx-test"):
        logger.info('HTTP Request: %s %s "%s"', "POST", httpx.URL(f"{BASE}/x?apiKey={KEY}"), "HTTP/1.1 200 OK")
    assert KEY not in caplog.text and "apiKey=***" in caplog.text


class _Endless(httpx.SyncByteStream):
    """An answer with no Content-Length, far past the limit; counts what was read of it."""

    def __init__(self) -> None:
        self.chunks = 0

    def __iter__(self):
        while self.chunks < 4096:  # ends, so a missing cap fails the test instead of hanging it
            self.chunks += 1
            yield b" " * 1024


@pytest.mark.parametrize("idempotent", [True, False], ids=["read", "money-call"])
def test_an_endless_answer_is_refused_while_it_streams(monkeypatch: pytest.MonkeyPatch, idempotent: bool) -> None:
    from airflow_sms_provider import transport

    monkeypatch.setattr(transport, "MAX_ANSWER_BYTES", 64 * 1024)
    stream = _Endless()
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, stream=stream)

    req = proto.build("campaign", "get" if idempotent else "send", KEY, {"id": 1}, idempotent=idempotent)
    with httpx.Client(base_url=BASE, transport=httpx.MockTransport(answer)) as client:
        expected = exc.SmsProtocolError if idempotent else exc.SmsAmbiguousError
        with pytest.raises(expected, match="larger than the 65536 bytes accepted") as info:
            send(client, req, proto.parse, FAST, sleep=lambda _: None)
    assert len(calls) == 1  # not repeated: the same server would answer the same
    assert stream.chunks <= 65  # reading stopped at the limit, not at the end of memory
    assert KEY not in str(info.value)


@respx.mock
def test_a_declared_oversize_answer_is_refused_before_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_sms_provider import transport

    monkeypatch.setattr(transport, "MAX_ANSWER_BYTES", 100)
    respx.post(f"{BASE}/service/campaign/get").mock(
        return_value=httpx.Response(200, headers={"content-length": "101"}, content=b" " * 101)
    )
    with pytest.raises(exc.SmsProtocolError, match="larger than the 100 bytes"):
        call(idempotent=True)
    respx.post(f"{BASE}/service/campaign/get").mock(
        return_value=httpx.Response(200, json=OK | {"message": "x" * (100 - len(httpx.Response(200, json=OK).content))})
    )
    assert call(idempotent=True).code == 0  # exactly at the limit is accepted


def test_the_async_path_refuses_an_endless_answer_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from airflow_sms_provider import transport

    class Endless(httpx.AsyncByteStream):
        async def __aiter__(self):
            for _ in range(4096):
                yield b" " * 1024

    monkeypatch.setattr(transport, "MAX_ANSWER_BYTES", 8 * 1024)
    req = proto.build("campaign", "get", KEY, {"id": 1}, idempotent=True)

    async def run() -> None:
        mock = httpx.MockTransport(lambda request: httpx.Response(200, stream=Endless()))
        async with httpx.AsyncClient(base_url=BASE, transport=mock) as client:
            await transport.asend(client, req, proto.parse, FAST)

    with pytest.raises(exc.SmsProtocolError, match="larger than the 8192 bytes"):
        asyncio.run(run())


# ------------------------------------------------------------------ only an explicit refusal means "not done"


def _failing_parser(error: BaseException):
    def parse(resp):  # type: ignore[no-untyped-def]
        raise error

    return parse


@pytest.mark.parametrize(
    "error", [ValueError("text where fields were"), KeyError("id"), TypeError("int(None)"), RecursionError()],
    ids=["ValueError", "KeyError", "TypeError", "RecursionError"],
)
@respx.mock
def test_a_parser_failure_after_a_money_call_is_ambiguous_not_a_refusal(error: BaseException) -> None:
    from airflow_sms_provider.transport import is_refusal

    route = respx.post(f"{BASE}/service/campaign/send").mock(return_value=httpx.Response(200, json=OK))
    req = proto.build("campaign", "send", KEY, {"id": 1}, idempotent=False)
    with httpx.Client(base_url=BASE) as client, pytest.raises(exc.SmsAmbiguousError) as raised:
        send(client, req, _failing_parser(error), FAST, sleep=lambda _: None)
    assert route.call_count == 1 and type(error).__name__ in str(raised.value)
    assert not is_refusal(raised.value)


@respx.mock
def test_a_parser_failure_of_a_read_is_a_protocol_error() -> None:
    respx.post(f"{BASE}/service/campaign/get").mock(return_value=httpx.Response(200, json=OK))
    req = proto.build("campaign", "get", KEY, {"id": 1})
    with httpx.Client(base_url=BASE) as client, pytest.raises(exc.SmsProtocolError, match="ValueError"):
        send(client, req, _failing_parser(ValueError("odd")), FAST, sleep=lambda _: None)


def test_refusals_are_the_providers_no_or_a_request_that_never_left() -> None:
    from airflow_sms_provider.transport import is_refusal

    assert is_refusal(exc.SmsValidationError("bad"))
    assert is_refusal(exc.SmsAuthError("key"))
    assert is_refusal(exc.SmsRateLimitedError("slow down"))
    assert is_refusal(exc.SmsServerError("could not connect"))
    assert not is_refusal(exc.SmsAmbiguousError("no answer"))
    assert not is_refusal(exc.SmsProtocolError("unreadable"))
    assert not is_refusal(ValueError("x"))
    assert not is_refusal(RecursionError())


class _OneConnection:
    """A raw HTTP/1.1 server on 127.0.0.1 for one keep-alive connection: records each request's bytes
    and answers it only once ``sent`` is set (or after 2 s, answering ``late``); stops by itself."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers, self.requests = answers, []
        self.sent = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(10)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._sock.accept()
        with conn, self._sock:
            conn.settimeout(10)
            data = b""
            for answer in self.answers:
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, data = data.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length:")))  # fmt: skip
                while len(data) < length:
                    data += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + data[:length])
                data = data[length:]
                body = answer if self.sent.wait(2) else b"late"
                self.sent.clear()
                status = b"503 Service Unavailable" if body == b"503" else b"200 OK"
                conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    def join(self) -> None:
        self._thread.join(timeout=10)


def test_on_sent_runs_once_the_body_is_written_and_the_wire_bytes_stay_the_same() -> None:
    # The upload wakes its worker thread from on_sent: it must run after the body left and before
    # the answer is awaited (this server answers only once it ran), and change nothing on the wire.
    req = proto.build("campaign", "addRecipients", KEY, {"id": 7, "recipients": ["77011112233"]})
    server = _OneConnection([b"one", b"two"])
    calls = []

    def on_sent() -> None:
        calls.append(True)
        server.sent.set()

    with httpx.Client(base_url=server.url) as client:
        first = send(client, req, lambda resp: resp.content, FAST, on_sent=on_sent)
        server.sent.set()  # the plain call: no on_sent, answered at once
        second = send(client, req, lambda resp: resp.content, FAST)
    server.join()
    assert (first, second) == (b"one", b"two") and len(calls) == 1
    with_hook, plain = server.requests
    assert with_hook == plain
    assert b"\r\ncontent-length: %d\r\n" % len(req.content or b"") in with_hook.lower()
    assert b"transfer-encoding" not in with_hook.lower()


def test_on_sent_runs_once_however_many_attempts_write_the_body() -> None:
    req = proto.build("campaign", "get", KEY, {"id": 7})
    server = _OneConnection([b"503", b"ok"])
    calls = []

    def on_sent() -> None:
        calls.append(True)
        server.sent.set()

    with httpx.Client(base_url=server.url) as client:
        answer = send(client, req, _content_unless_5xx, FAST, sleep=lambda _: server.sent.set(), on_sent=on_sent)
    server.join()
    assert answer == b"ok" and len(calls) == 1 and len(server.requests) == 2


def _content_unless_5xx(resp: transport.Response) -> bytes:
    if resp.status_code >= 500:
        raise exc.SmsServerError("503", provider="test", code=503)
    return resp.content


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_cookie_an_answer_sets_is_never_sent_back(asynchronous: bool) -> None:
    # Keys, tokens and signatures authenticate every call; a cookie (a proxy's, a load balancer's)
    # is neither kept nor returned, and reading it cost a tenth of an upload portion's CPU.
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"Set-Cookie": "session=abc; Path=/"}, content=b"{}")

    options = {**transport.client_options(BASE, 5.0, True), "transport": httpx.MockTransport(answer)}
    req = proto.build("campaign", "get", KEY, {"id": 7})
    if asynchronous:
        import asyncio

        async def twice() -> None:
            async with httpx.AsyncClient(**options) as client:
                for _ in range(2):
                    await transport.asend(client, req, lambda resp: resp.content, FAST)
                assert not client.cookies

        asyncio.run(twice())
    else:
        with httpx.Client(**options) as client:
            for _ in range(2):
                send(client, req, lambda resp: resp.content, FAST)
            assert not client.cookies
    assert seen == [None, None]
