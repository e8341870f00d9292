"""Issue #5, secrets: API keys, private keys and JWTs appear in no log line, XCom, rendered
field, exception or repr.

The example DAGs run with ``dag.test()`` and known, distinctive secrets while everything is
captured: stdout/stderr, Python logging at DEBUG (httpx, httpcore, airflow, the package), task
log files, XComs, rendered template fields, triggers and audit rows. Then the secrets, also
URL-encoded, are looked for in all of it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest

from airflow_sms_provider.hooks.bsg import BsgSession
from airflow_sms_provider.sandbox import bsg as sandbox_bsg
from airflow_sms_provider.sandbox import ogangi as sandbox_ogangi
from tests.conftest import mobizon_conn_uri
from tests.helpers import load_example, set_clock, task_states

# 40 letters and digits, as Mobizon's keys; nothing else in the suite uses it.
MOBIZON_CANARY = "LeakCanaryMobizon0Key1a2b3c4d5e6f7g8h9Zq"
LOGGERS = ("httpx", "httpcore", "airflow", "airflow_sms_provider")
# Airflow 3.0's task SDK logs the message that hands a secret to its masker ("Sending request
# msg=MaskSecret(value=...)") at DEBUG: Airflow's own line, not this package's (gone in 3.3).
AIRFLOW_MASKER_IPC = "MaskSecret(value="


class Recorder(logging.Handler):
    """Keeps every record formatted, tracebacks included."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def debug_logging() -> Iterator[Recorder]:
    """A Recorder on the named loggers, all at DEBUG, for the block."""
    recorder = Recorder()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(recorder)
    try:
        yield recorder
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(recorder)
            logger.setLevel(level)


def variants(secret: str) -> set[str]:
    """The secret as written and as a URL would carry it."""
    return {secret, quote(secret, safe=""), quote_plus(secret)}


def leaks(haystack: str, secrets: set[str]) -> list[str]:
    """Where a secret shows: a short context for each hit (the secret itself masked)."""
    found = []
    for secret in secrets:
        for variant in variants(secret):
            at = haystack.find(variant)
            if at >= 0:
                found.append(haystack[max(0, at - 80):at].replace("\n", " ") + "<SECRET>")
    return found


# ------------------------------------------------------------------ what a run leaves behind


def database_records(run: Any) -> list[str]:
    """XComs, rendered template fields, audit log rows and triggers of ``run``, as text."""
    from airflow.models.log import Log
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.trigger import Trigger
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    out: list[str] = []
    with create_session() as session:
        xcoms = session.scalars(select(XComModel).where(XComModel.dag_id == run.dag_id,
                                                        XComModel.run_id == run.run_id)).all()
        out += [f"xcom {x.task_id} {x.key} {x.value!r}" for x in xcoms]
        rtifs = session.scalars(select(RenderedTaskInstanceFields).where(
            RenderedTaskInstanceFields.dag_id == run.dag_id, RenderedTaskInstanceFields.run_id == run.run_id)).all()
        out += [f"rendered {r.task_id} {json.dumps(r.rendered_fields, default=str)}" for r in rtifs]
        out += [f"log {row.event} {row.extra}" for row in session.scalars(select(Log).where(Log.dag_id == run.dag_id))]
        out += [f"trigger {t.classpath} {t.kwargs!r}" for t in session.scalars(select(Trigger))]
    assert xcoms, "the run pushed no XCom: nothing was checked"
    return out


def log_files(since: float) -> list[str]:
    home = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    files = [p for p in home.rglob("*") if p.is_file() and p.stat().st_mtime >= since] if home.exists() else []
    return [p.read_text(encoding="utf-8", errors="replace") for p in files]


def reprs(conn_id: str, hook_class: type) -> list[str]:
    """repr() and str() of the hook and what it holds once it has read its connection."""
    hook = hook_class(conn_id)
    settings = hook.settings
    return [repr(hook), str(hook), repr(settings), str(settings), repr(settings.http)]


# ------------------------------------------------------------------ the three example DAGs


def _mobizon(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, set[str], Callable[[], Any]]:
    httpx.post(f"{url}/_sandbox/mobizon/accounts", json={"api_key": MOBIZON_CANARY}).raise_for_status()
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", mobizon_conn_uri(url, api_key=MOBIZON_CANARY))
    set_clock(url, speed=600)
    return "example_mobizon_campaign.py", "example_mobizon_campaign", {MOBIZON_CANARY}, contextlib.nullcontext


def _bsg(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, set[str], Callable[[], Any]]:
    # Tokens live 3 real seconds: the deferred wait outlives one, so the run logs in again (a login per
    # task, plus renewals): several JWTs to look for.
    httpx.post(f"{url}/_sandbox/bsg/config", json={"jwt_ttl": 30}).raise_for_status()
    set_clock(url, speed=10)
    return "example_bsg_campaign.py", "example_bsg_campaign", {sandbox_bsg.SANDBOX_BSG_API_KEY}, contextlib.nullcontext


def _ogangi(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, set[str], Callable[[], Any]]:
    from tests.e2e.test_example_ogangi import time_flies_after_resume

    return ("example_ogangi_broadcast.py", "example_ogangi_broadcast", {sandbox_ogangi.SANDBOX_OGANGI_PRIVATE_KEY},
            lambda: time_flies_after_resume(url))


EXAMPLES = {"mobizon": _mobizon, "bsg": _bsg, "ogangi": _ogangi}


@pytest.mark.parametrize("provider", sorted(EXAMPLES))
def test_example_dag_leaks_no_secret(
    provider: str, airflow_db: None, mobizon_conn: str, bsg_conn: str, ogangi_conn: str, sandbox_url: str,
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], jwts: set[str],
) -> None:
    from airflow_sms_provider.hooks.bsg import BsgHook
    from airflow_sms_provider.hooks.mobizon import MobizonHook
    from airflow_sms_provider.hooks.ogangi import OgangiHook

    filename, dag_id, secrets, around = EXAMPLES[provider](sandbox_url, monkeypatch)
    dag = load_example(filename, dag_id)
    started = time.time() - 1
    capfd.readouterr()
    with debug_logging() as recorder, around():
        run = dag.test()
    out, err = capfd.readouterr()
    assert str(run.state).endswith("success"), task_states(run)

    hooks = {"mobizon": MobizonHook, "bsg": BsgHook, "ogangi": OgangiHook}
    captured = "\n".join([out, err, *recorder.lines, *log_files(started), *database_records(run),
                          *reprs(f"{provider}_default", hooks[provider])])
    haystack = "\n".join(line for line in captured.splitlines() if AIRFLOW_MASKER_IPC not in line)
    assert " outcome: {" in haystack, "the report task's output was not captured"
    if provider == "bsg":
        assert len(jwts) >= 2, "the run should have used several tokens"
        secrets |= jwts
    assert not leaks(haystack, secrets)
    if provider == "mobizon":  # the URL lines were captured, key masked: the check saw them
        assert "apiKey=***" in haystack and "HTTP Request:" in haystack


# ------------------------------------------------------------------ reprs, exceptions, the httpx line


def _conn(conn_type: str, host: str, password: str, **extra: Any) -> Any:
    from airflow.models.connection import Connection

    return Connection(conn_id=f"{conn_type}_x", conn_type=conn_type, host=host, password=password, login="peter",
                      extra=json.dumps({"instance_id": 8, "public_key": "pub", **extra}))


def _everything(value: Any) -> str:
    """repr, str and (for exceptions) the whole formatted traceback."""
    text = f"{value!r}\n{value}"
    if isinstance(value, BaseException):
        text += "".join(traceback.format_exception(value))
    return text


def test_reprs_and_errors_built_with_secrets_do_not_show_them(sandbox_url: str) -> None:
    from airflow_sms_provider.hooks.bsg import BsgSettings
    from airflow_sms_provider.hooks.mobizon import MobizonSettings
    from airflow_sms_provider.hooks.ogangi import OgangiSettings
    from airflow_sms_provider.protocols import bsg as bsg_proto
    from airflow_sms_provider.protocols import ogangi as ogangi_proto
    from airflow_sms_provider.transport import Response, _failure

    key, bsg_key = "ReprCanaryMobizonKey0123456789abcdefABCD", "test_ReprCanaryBsgKey42"
    private = "REPR-CANARY-PRIV-KEY"
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJyZXByIn0.ReprCanarySignature0123456789"
    mobizon = MobizonSettings.from_connection(_conn("mobizon", "api.mobizon.kz", key))
    bsg = BsgSettings.from_connection(_conn("bsg", "", bsg_key))
    ogangi = OgangiSettings.from_connection(_conn("ogangi", "https://c.example.com/mmc", private))
    session = BsgSession(bsg)
    session._keep(jwt)
    mobizon_request = mobizon.request("campaign", "create", {"data": {"text": "x"}})
    objects: list[Any] = [
        mobizon, mobizon.http, bsg, ogangi, ogangi.account, session, session._token,
        mobizon_request, bsg_proto.login(bsg_key), bsg_proto.authorize(bsg_proto.get_balance(), jwt),
        bsg_proto.refresh(jwt), ogangi_proto.get_shortcodes(ogangi.account),
        # errors: a transport failure of a request carrying the key, answers that echo secrets back
        _failure(mobizon_request, httpx.ConnectError(f"cannot reach /service?apiKey={key}")),
        bsg_proto.error_for(502, None, f'<html>{{"api_key": "{bsg_key}"}}</html>'.encode()),
        bsg_proto.error_for(401, {"message": f"Bearer {jwt} refused"}),
        _raised(lambda: bsg_proto.parse(Response(502, f"echo: {bsg_key} {jwt}".encode(), {}))),
        _raised(lambda: ogangi_proto.parse(Response(200, f"<x>{private}</x>".encode(), {}))),
    ]
    for value in objects:
        text = _everything(value)
        assert not leaks(text, {key, bsg_key, private, jwt}), (type(value).__name__, text[:300])


def _raised(call: Callable[[], Any]) -> BaseException:
    with pytest.raises(Exception) as caught:
        call()
    return caught.value


def test_mobizon_error_excerpt_is_redacted() -> None:
    from airflow_sms_provider.protocols import mobizon as proto
    from airflow_sms_provider.redaction import register_secret
    from airflow_sms_provider.transport import Response

    key = "ExcerptCanaryMobizonKey0123456789abcdef"
    register_secret(key)
    body = f"<html>502 from proxy for /service/user/getownbalance?apiKey={key}</html>".encode()
    err = _raised(lambda: proto.parse(Response(200, body, {})))
    assert not leaks(_everything(err), {key})


def test_hooks_talking_to_the_sandbox_show_no_secret(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real failures through the hooks: refused credentials, an unreachable host."""
    from airflow_sms_provider.exceptions import SmsAuthError, SmsServerError
    from airflow_sms_provider.hooks.bsg import BsgHook
    from airflow_sms_provider.hooks.mobizon import MobizonHook

    key, bsg_key = "HookCanaryMobizonKey0123456789abcdefABCD", "test_HookCanaryBsgKey42"
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", mobizon_conn_uri("http://127.0.0.1:9", api_key=key,
                                                                        retry_attempts=1))
    monkeypatch.setenv("AIRFLOW_CONN_BSG_DEFAULT", json.dumps({"conn_type": "bsg", "host": sandbox_url,
                                                               "password": bsg_key}))
    errors = [_raised(MobizonHook().get_balance), _raised(BsgHook().get_balance)]
    assert isinstance(errors[0], SmsServerError) and isinstance(errors[1], SmsAuthError)
    ok, message = BsgHook().test_connection()
    assert not ok
    for value in [*errors, message, MobizonHook(), BsgHook()]:
        assert not leaks(_everything(value), {key, bsg_key})


def test_httpx_request_line_is_redacted_at_info(mobizon_conn: str, caplog: pytest.LogCaptureFixture) -> None:
    from airflow_sms_provider.hooks.mobizon import MobizonHook
    from airflow_sms_provider.sandbox import SANDBOX_MOBIZON_API_KEY

    hook = MobizonHook()
    with caplog.at_level(logging.INFO, logger="httpx"):
        hook.get_balance()
    hook.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx" and "HTTP Request:" in r.getMessage()]
    assert lines and all("apiKey=***" in line for line in lines), lines
    assert not leaks("\n".join(lines), {SANDBOX_MOBIZON_API_KEY})
