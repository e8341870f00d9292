"""Issue #5, secrets (transport part): TLS on by default, plain http only when written, XML
from the network only through defusedxml, size limits on uploads and answers."""

from __future__ import annotations

import ast
import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_sms_provider.exceptions import SmsProtocolError, SmsValidationError
from airflow_sms_provider.hooks.bsg import BsgHook
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.hooks.ogangi import OgangiHook, build_sms_file, read_upload
from airflow_sms_provider.protocols import bsg as bsg_proto
from airflow_sms_provider.protocols import mobizon as mobizon_proto
from airflow_sms_provider.protocols import ogangi as ogangi_proto
from airflow_sms_provider.transport import Response
from tests.helpers import add_faults, sandbox_requests

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_sms_provider"
HOOKS = {"mobizon": MobizonHook, "bsg": BsgHook, "ogangi": OgangiHook}
OGANGI_EXTRA = {"instance_id": 8, "public_key": "pub"}


def use(monkeypatch: pytest.MonkeyPatch, provider: str, host: str | None, port: int | None = None,
        **extra: Any) -> Any:
    """The provider's hook on a connection with this Host/Port and these extras."""
    conn = {"conn_type": provider, "host": host, "port": port, "login": "peter", "password": "secret-key-0001",
            "extra": {**(OGANGI_EXTRA if provider == "ogangi" else {}), **extra}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{provider.upper()}_DEFAULT", json.dumps(conn))
    return HOOKS[provider]()


def verify_mode(client: httpx.Client | httpx.AsyncClient) -> ssl.VerifyMode:
    return client._transport._pool._ssl_context.verify_mode  # type: ignore[attr-defined]


# ------------------------------------------------------------------ TLS


@pytest.mark.parametrize(("provider", "host", "url"), [
    ("mobizon", "api.mobizon.kz", "https://api.mobizon.kz"),
    ("bsg", None, "https://one-api.bsg.world"),
    ("bsg", "one-api.bsg.world", "https://one-api.bsg.world"),
    ("ogangi", "customer.example.com/mmc", "https://customer.example.com/mmc"),
])
def test_a_bare_host_means_https_with_certificates_checked(
    monkeypatch: pytest.MonkeyPatch, provider: str, host: str | None, url: str
) -> None:
    hook = use(monkeypatch, provider, host)
    assert (hook.settings.http.base_url, hook.settings.http.verify) == (url, True)
    client = hook.get_conn()
    assert str(client.base_url).startswith(url) and verify_mode(client) == ssl.CERT_REQUIRED
    hook.close()
    assert verify_mode(hook.settings.async_client()) == ssl.CERT_REQUIRED  # the triggers' client


@pytest.mark.parametrize("provider", sorted(HOOKS))
@pytest.mark.parametrize(("value", "verify"), [
    (None, True), ("", True), ("true", True), (True, True), ("false", False), (False, False), ("0", False),
])
def test_verify_ssl_is_off_only_when_the_connection_says_so(
    monkeypatch: pytest.MonkeyPatch, provider: str, value: Any, verify: bool
) -> None:
    extra = {} if value is None else {"verify_ssl": value}
    hook = use(monkeypatch, provider, "api.example.com", **extra)
    assert hook.settings.http.verify is verify
    assert verify_mode(hook.get_conn()) == (ssl.CERT_REQUIRED if verify else ssl.CERT_NONE)
    hook.close()


@pytest.mark.parametrize("provider", sorted(HOOKS))
@pytest.mark.parametrize(("host", "port", "url"), [
    ("http://127.0.0.1:8765", None, "http://127.0.0.1:8765"),
    ("api.example.com", 8443, "https://api.example.com:8443"),
    ("api.example.com:8443", None, "https://api.example.com:8443"),
    ("https://api.example.com/", None, "https://api.example.com"),
])
def test_plain_http_only_when_the_url_says_so(
    monkeypatch: pytest.MonkeyPatch, provider: str, host: str, port: int | None, url: str
) -> None:
    assert use(monkeypatch, provider, host, port).settings.http.base_url == url


@pytest.mark.parametrize("provider", sorted(HOOKS))
def test_other_schemes_are_refused(monkeypatch: pytest.MonkeyPatch, provider: str) -> None:
    with pytest.raises(SmsValidationError, match=r"ftp://files\.example\.com"):
        _ = use(monkeypatch, provider, "ftp://files.example.com").settings


# ------------------------------------------------------------------ XML


DTD_ANSWERS = {
    "entity": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "boom">]><response><status>OK</status>'
              b"<description>&x;</description></response>",
    "billion-laughs": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
                      b"<response><status>OK</status><description>&b;</description></response>",
    "external": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                b"<response><status>OK</status><description>&x;</description></response>",
    "dtd-only": b'<?xml version="1.0"?><!DOCTYPE response SYSTEM "http://evil.example/r.dtd">'
                b"<response><status>OK</status></response>",
}


@pytest.mark.parametrize("body", DTD_ANSWERS.values(), ids=list(DTD_ANSWERS))
def test_ogangi_refuses_xml_with_a_dtd_or_entities(body: bytes) -> None:
    with pytest.raises(SmsProtocolError, match="DTD or entities"):
        ogangi_proto.parse(Response(200, body, {}))


def test_ogangi_hook_refuses_such_an_answer_from_the_network(ogangi_conn: str, sandbox_url: str) -> None:
    add_faults(sandbox_url, {"provider": "ogangi", "path": "getShortcodes", "action": "http_status", "status": 200,
                             "body": DTD_ANSWERS["external"].decode()})
    with pytest.raises(SmsProtocolError, match="DTD or entities"):
        OgangiHook().get_shortcodes()
    assert len(sandbox_requests(sandbox_url, "ogangi")) == 1  # refused, not retried


def test_no_module_parses_xml_with_the_standard_library() -> None:
    """Only defusedxml parses; ``xml.*`` is imported for types and error codes alone."""
    allowed = {"xml.etree.ElementTree": {"Element", "ParseError"}, "xml.parsers": {"expat"}}
    for path in PACKAGE.rglob("*.py"):
        if "sandbox" in path.parts:  # the sandbox writes XML and parses only its own admin input
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                bad = [a.name for a in node.names if a.name.split(".")[0] in ("xml", "lxml")]
                assert not bad, (path.name, bad)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("xml", "lxml"):
                names = {a.name for a in node.names}
                assert names <= allowed.get(node.module or "", set()), (path.name, node.module, names)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "expat":
                assert node.attr == "errors", (path.name, node.attr)


# ------------------------------------------------------------------ size limits


def big_file(tmp_path: Path, name: str, size: int) -> Path:
    """A sparse file of ``size`` bytes (instant, takes no disk)."""
    path = tmp_path / name
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def test_ogangi_uploads_are_limited(ogangi_conn: str, sandbox_url: str, tmp_path: Path) -> None:
    from airflow_sms_provider.operators.ogangi import OgangiSendSmsByFileOperator

    path = big_file(tmp_path, "audience.csv", ogangi_proto.MAX_UPLOAD_BYTES + 1)
    with pytest.raises(SmsValidationError, match=f"at most {ogangi_proto.MAX_UPLOAD_BYTES}"):
        read_upload(str(path))
    with pytest.raises(SmsValidationError, match=r"audience\.csv"):
        OgangiSendSmsByFileOperator(task_id="t", file_path=str(path)).execute({})
    assert sandbox_requests(sandbox_url, "ogangi") == []
    with pytest.raises(SmsValidationError, match="passes 200 bytes"):
        build_sms_file(({"number": f"1415555{i:04d}", "text": "Hi"} for i in range(100)), limit=200)
    with pytest.raises(SmsValidationError, match="passes 100 bytes"):
        ogangi_proto.recipients_json(({"to": f"1415555{i:04d}", "text": "Hi"} for i in range(100)), limit=100)


@pytest.mark.parametrize(("proto", "parse"), [
    (ogangi_proto, ogangi_proto.parse), (bsg_proto, bsg_proto.parse), (bsg_proto, bsg_proto.parse_token),
    (bsg_proto, bsg_proto.parse_page),
], ids=["ogangi", "bsg", "bsg-token", "bsg-page"])
def test_answers_over_the_limit_are_refused(monkeypatch: pytest.MonkeyPatch, proto: Any, parse: Any) -> None:
    monkeypatch.setattr(proto, "MAX_RESPONSE_BYTES", 64)
    with pytest.raises(SmsProtocolError, match="larger than the 64 accepted"):
        parse(Response(200, b'{"data": "' + b"x" * 100 + b'"}', {}))


def test_bsg_request_bodies_are_bounded(bsg_conn: str, sandbox_url: str) -> None:
    """No file goes to BSG; a campaign body is bounded by 10,000 phones, checked before sending."""
    phones = [str(380500000000 + i) for i in range(bsg_proto.MAX_PHONES_PER_CAMPAIGN + 1)]
    with pytest.raises(SmsValidationError, match="at most 10000"):
        BsgHook().send_bulk(phones, "Hi", "MyShop")
    assert sandbox_requests(sandbox_url, "bsg") == []


def test_mobizon_spooled_uploads_stay_under_the_file_limit(tmp_path: Path) -> None:
    from airflow_sms_provider.recipients import CsvSpool

    with CsvSpool(max_bytes=1024, directory=str(tmp_path)) as spool:
        for i in range(500):
            spool.write([f"7701{i:07d}"])
        spool.finish()
        assert len(spool.parts) > 1 and all(Path(p).stat().st_size <= 1024 for p in spool.parts)
    assert mobizon_proto.MAX_UPLOAD_BYTES == 8 * 1024 * 1024


def test_mobizon_recipients_file_over_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"code": 100, "data": 1, "message": ""})

    hook = use(monkeypatch, "mobizon", "http://mobizon.invalid")
    hook._client = httpx.Client(base_url="http://mobizon.invalid", transport=httpx.MockTransport(answer))
    path = big_file(tmp_path, "audience.csv", mobizon_proto.MAX_UPLOAD_BYTES + 1)
    try:
        with pytest.raises(SmsValidationError):
            hook.add_recipients(1, file=str(path))
    finally:
        hook.close()
    assert sent == []


def test_mobizon_answers_over_the_limit_are_refused() -> None:
    limit = getattr(mobizon_proto, "MAX_RESPONSE_BYTES", 32 * 1024 * 1024)
    body = b" " * limit + b'{"code": 0, "data": null, "message": ""}'
    with pytest.raises(SmsProtocolError):
        mobizon_proto.parse(Response(200, body, {}))
