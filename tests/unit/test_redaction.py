"""Issue 12, part 2: a secret echoed back in any encoding is masked where the package makes errors.

Keys hold ``+ / = % &`` (and a space, a tilde, a non-ASCII letter): the characters whose
encodings differ between percent-encoding styles, form encoding, JSON and HTML.
"""

from __future__ import annotations

import base64
import json
import traceback
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest

from airflow_sms_provider import exceptions as exc_mod
from airflow_sms_provider.redaction import MASK, redact_text, register_secret
from tests.secret_forms import encodings

KEY = "Rk7+Yq/9=Zp%Lm&Tx2v W~Ж8Qa0"  # registered: an API key
PRIVATE = "Pv+Key/Abc=12%3D&zz-00"  # registered: an Ogangi private key (it even holds "%3D")
QUOTED = "Qt\"Key\\Back'sl+/=%&9"  # registered: quotes and a backslash (JSON's \" and \\, repr()'s \')
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJjYW5hcnkiLCJleHAiOjQxMDI0NDQ4MDB9."
    "Zm9vYmFyLWNhbmFyeS1zaWduYXR1cmUtMDEyMzQ1Njc4OQ"
)  # never registered: masked by its shape
UNREGISTERED_JWT = "eyJ0eXAiOiJKV1QifQ.eyJ4IjoxfQ.c2ln_-abc"


@pytest.fixture(autouse=True, scope="module")
def _registered() -> None:
    register_secret(KEY)
    register_secret(PRIVATE)
    register_secret(QUOTED)


ALL_FORMS = [(name, secret, form) for secret in (KEY, PRIVATE, QUOTED) for name, form in encodings(secret).items()]


@pytest.mark.parametrize(("name", "secret", "form"), ALL_FORMS, ids=[f"{n}-{i}" for i, (n, _, _) in
                                                                     enumerate(ALL_FORMS)])
def test_every_encoding_of_a_registered_secret_is_masked(name: str, secret: str, form: str) -> None:
    text = f"error page: the request was /service?output=json&x={form}&y=1 ({form})"
    redacted = redact_text(text)
    assert form not in redacted, redacted
    assert MASK in redacted


@pytest.mark.parametrize("prefix", ["", "u", "us", "user:", "peter:"])
def test_base64_embedded_secret_is_masked(prefix: str) -> None:
    """``Basic base64(user:key)`` or any base64 blob holding the key: the key's own run is masked."""
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        blob = encode(f"{prefix}{KEY}-and-more".encode()).decode()
        redacted = redact_text(f"echo: {blob}")
        core = encode(KEY.encode()).decode()[4:-4]  # whatever offset: no long run of the key stays
        assert core not in redacted
        assert MASK in redacted
        # at most 2 characters of base64 on either side depend on the secret and survive
        left = redacted.split(MASK)[0].removeprefix("echo: ")
        assert len(left) <= len(encode(prefix.encode()).decode().rstrip("=")) + 1


@pytest.mark.parametrize("text", [
    f"Authorization: Bearer {JWT}",
    f'{{"message": "Invalid token", "errors": {{"authorization": ["Bearer {JWT}"]}}}}',
    f"token={JWT}&x=1",
    f"jwt {UNREGISTERED_JWT} refused",
    f'{{"bearer": "{UNREGISTERED_JWT}"}}',
    json.dumps({"header": f"Bearer: {JWT}"}),
])
def test_anything_shaped_like_a_jwt_is_masked(text: str) -> None:
    redacted = redact_text(text)
    for token in (JWT, UNREGISTERED_JWT):
        assert token not in redacted
        for part in token.split("."):
            assert part not in redacted, redacted


def test_credential_shaped_values_are_masked_even_unregistered() -> None:
    text = ('GET /service/user/getownbalance?output=json&api=v1&apiKey=SomeOtherKey123 '
            '{"api_key": "live_neverRegistered42"} Authorization: Basic dXNlcjpwYXNz '
            "/mmc/rest/api/getBroadcast/8/123/pub/" + "ab" * 32)
    redacted = redact_text(text)
    for secret in ("SomeOtherKey123", "live_neverRegistered42", "dXNlcjpwYXNz", "ab" * 32):
        assert secret not in redacted, redacted
    assert "output=json" in redacted and "getBroadcast/8/123/pub/" in redacted  # the rest is kept


def test_ordinary_text_is_left_alone() -> None:
    text = "mobizon: code 5 (recipient 77011110000 is on the stop list); campaign 42 is DONE"
    assert redact_text(text) == text


# ------------------------------------------------------------------ exceptions redact in their constructor

ERROR_CLASSES = [
    cls for cls in vars(exc_mod).values()
    if isinstance(cls, type) and issubclass(cls, exc_mod.SmsProviderError)
]


def _make(cls: type, message: str, details: Any) -> exc_mod.SmsProviderError:
    kwargs: dict[str, Any] = {"provider": "mobizon", "code": 8, "details": details}
    if cls is exc_mod.SmsWrongDomainError:
        kwargs["domain"] = "api.mobizon.kz"
    if cls is exc_mod.SmsValidationError:
        kwargs.update(field="password", value=f"apiKey={quote(KEY, safe='')}")
    return cls(message, **kwargs)


def _everything(err: BaseException) -> str:
    parts = [str(err), repr(err), repr(err.args), *map(str, err.args), repr(getattr(err, "details", None)),
             repr(getattr(err, "value", None)), "".join(traceback.format_exception(err))]
    return "\n".join(parts)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_exception_constructors_redact_message_and_details(cls: type) -> None:
    echoes = encodings(KEY)
    message = (f"mobizon: code 8: Invalid apiKey {quote_plus(KEY)} (you sent {KEY}); "
               f"Authorization: Bearer {JWT}")
    details = {
        "api_key": [f"The key {json.dumps(KEY)[1:-1]} is not valid."],
        "nested": [{"url": f"/service?apiKey={quote(KEY, safe='')}", "echo": (echoes["json-slash"],)}],
        "header": f"Bearer {JWT}",
    }
    err = _make(cls, message, details)
    text = _everything(err)
    for form in {*echoes.values(), JWT}:
        assert form not in text, (cls.__name__, form)
    assert "code 8" in str(err)  # the useful part stays
    assert isinstance(err.details, dict) and set(err.details) == set(details)


def test_wrapped_httpx_error_and_its_request_url_are_redacted() -> None:
    """The httpx error a provider error is raised from (its traceback cause) shows no key either."""
    url = f"http://127.0.0.1:9/service/user/getownbalance?output=json&apiKey={quote(KEY, safe='')}"
    request = httpx.Request("GET", url)
    try:
        try:
            raise httpx.ConnectError(f"cannot connect to {url}", request=request)
        except httpx.ConnectError:
            raise exc_mod.SmsServerError("mobizon user/getownbalance: could not connect (ConnectError)") from None
    except exc_mod.SmsServerError as err:
        caught = err
    cause = caught.__context__
    assert isinstance(cause, httpx.ConnectError)
    text = _everything(caught) + str(cause) + repr(cause.args) + str(cause.request.url)
    for form in encodings(KEY).values():
        assert form not in text


def test_registration_hands_every_form_to_airflows_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    """So task and trigger logs are masked for lines the package does not write (e.g. Airflow's own)."""
    import airflow.providers.common.compat.sdk as sdk

    told: list[str] = []

    def record(value: Any, name: str | None = None) -> None:
        told.extend([value] if isinstance(value, str) else list(value))

    monkeypatch.setattr(sdk, "mask_secret", record)
    secret = "Reg+Canary/Key=1%2&3"
    register_secret(secret)
    forms = encodings(secret)
    for name in ("raw", "quote", "quote-lower-hex", "quote_plus", "httpx-query", "form", "json-slash",
                 "json-u-lower", "json-u-upper", "base64"):
        # Airflow's masker replaces substrings: a form told without base64's "=" padding masks all but it
        assert any(told_form in forms[name] and len(told_form) >= len(forms[name]) - 2 for told_form in told), name
    # repr() of the text and of its bytes, as a traceback or a frame's locals show a non-ASCII or quoted key
    quoted = "Reg+Ж/Key'1%2&3\"x"
    register_secret(quoted)
    for name in ("repr", "repr-bytes", "json"):
        assert encodings(quoted)[name] in told, name


@pytest.mark.parametrize("conn_type", ["mobizon", "bsg", "ogangi"])
def test_reading_a_connection_registers_every_form(conn_type: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What hooks and triggers both call (Settings.from_connection): the trigger path is covered too."""
    import airflow.providers.common.compat.sdk as sdk
    from airflow.models.connection import Connection

    from airflow_sms_provider.hooks.bsg import BsgSettings
    from airflow_sms_provider.hooks.mobizon import MobizonSettings
    from airflow_sms_provider.hooks.ogangi import OgangiSettings

    told: list[str] = []
    monkeypatch.setattr(sdk, "mask_secret", lambda value, name=None: told.extend(
        [value] if isinstance(value, str) else list(value)))
    secret = f"{conn_type}+Read/Key=4%2&9"
    conn = Connection(conn_id=f"{conn_type}_x", conn_type=conn_type, host="https://example.com", login="peter",
                      password=secret, extra=json.dumps({"instance_id": 8, "public_key": "pub"}))
    {"mobizon": MobizonSettings, "bsg": BsgSettings, "ogangi": OgangiSettings}[conn_type].from_connection(conn)
    forms = encodings(secret)
    for name in ("raw", "quote", "quote-lower-hex", "httpx-query", "json-slash", "json-u-upper"):
        assert forms[name] in told, name


@pytest.mark.parametrize("conn_type", ["mobizon", "bsg", "ogangi"])
def test_reading_a_connection_masks_its_secret_extras_unused_or_not(
    conn_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``report_salt_secret`` and ``webhook_secret`` are secrets from the first read of the connection, by any
    task: a campaign task, a trigger or a sensor that never hashes or receives a webhook still logs
    lines (and raises errors) in which they could show."""
    import airflow.providers.common.compat.sdk as sdk
    from airflow.models.connection import Connection

    from airflow_sms_provider.hooks.bsg import BsgSettings
    from airflow_sms_provider.hooks.mobizon import MobizonSettings
    from airflow_sms_provider.hooks.ogangi import OgangiSettings

    told: list[str] = []
    monkeypatch.setattr(sdk, "mask_secret", lambda value, name=None: told.extend(
        [value] if isinstance(value, str) else list(value)))
    salt, hook_secret = f"Salt+{conn_type}/x=1%2F&yy", f"Whk+{conn_type}/z=3%3D&ww"
    extra = {"instance_id": 8, "public_key": "pub-key-not-secret", "report_salt_secret": salt,
             "webhook_secret": hook_secret}
    conn = Connection(conn_id=f"{conn_type}_x", conn_type=conn_type, host="https://example.com", login="peter",
                      password="Pw+Read/Key=4%2&9", extra=json.dumps(extra))
    {"mobizon": MobizonSettings, "bsg": BsgSettings, "ogangi": OgangiSettings}[conn_type].from_connection(conn)
    for secret in (salt, hook_secret):
        for name, form in encodings(secret).items():
            assert MASK in redact_text(f"echo {form}!"), name
        for name in ("raw", "quote", "quote-lower-hex", "httpx-query", "json-slash", "json-u-upper", "repr-bytes"):
            assert encodings(secret)[name] in told, name
    assert "pub-key-not-secret" not in told  # Ogangi's public key travels in every URL: not a secret


def test_the_webhook_receivers_connection_read_masks_every_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver (in the API server) reads the Mobizon connection itself: every form, also of the salt."""
    from airflow_sms_provider.events.mobizon import connection_secret

    hook_secret, salt = "Recv+Whk/Sec=5%2B&qq", "Recv+Salt/Sec=6%3D&rr"
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_RECV", json.dumps({
        "conn_type": "mobizon", "host": "https://example.com", "password": "Recv+Key/Api=7%26&ss",
        "extra": {"webhook_secret": hook_secret, "report_salt_secret": salt}}))
    assert connection_secret("mobizon_recv") == hook_secret
    for secret in (hook_secret, salt):
        for name, form in encodings(secret).items():
            assert MASK in redact_text(f"echo {form}!"), name


@pytest.mark.parametrize(("host", "verify", "warned"), [
    ("http://127.0.0.1:8765", True, False), ("http://localhost:8765", True, False), ("http://[::1]:80", True, False),
    ("https://api.mobizon.kz", True, False), ("api.mobizon.kz", True, False),
    ("http://10.0.0.5:8080", True, True), ("https://api.mobizon.kz", False, True),
])
def test_plain_http_off_the_machine_and_unverified_tls_are_warned(
    host: str, verify: bool, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    from types import SimpleNamespace

    from airflow_sms_provider.connections import HttpSettings

    conn = SimpleNamespace(conn_id="c", host=host, port=None, extra_dejson={"verify_ssl": verify})
    with caplog.at_level("WARNING", logger="airflow_sms_provider.connections"):
        HttpSettings.from_connection(conn)
    assert any(r.name == "airflow_sms_provider.connections" for r in caplog.records) is warned
