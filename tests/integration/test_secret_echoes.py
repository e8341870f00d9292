"""Issue 12, part 2: a provider (or a proxy) that echoes a secret back, over real HTTP.

Three echoes, injected with the sandbox's fault API: Mobizon code 8 whose message quotes
the API key; a BSG 422 whose ``errors`` quote the API key; a BSG 422 quoting the
``Authorization: Bearer <JWT>`` header. Keys hold ``+ / = % &``; each echo writes the
secret raw, percent-encoded, form-encoded, JSON- and HTML-escaped at once. No form may
show in the raised exception (str, repr, args, details, traceback), in the task's log (a
poke-mode sensor), in the trigger's event and log (a deferrable sensor, its trigger run
in-process by ``dag.test()``), or in the trigger's event when it is run directly.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from typing import Any

import httpx
import pendulum
import pytest

from tests.helpers import add_faults, run_dag, task_states
from tests.integration.test_secrets import AIRFLOW_MASKER_IPC, debug_logging, log_files
from tests.secret_forms import echo, leaks

MOBIZON_KEY = "EchoMobizon+Key/9=Zx%41&q0123456789abcdefAB"
BSG_KEY = "live_Echo+Bsg/Key=7%2F&zz0123456789"
START = pendulum.datetime(2026, 1, 1, tz="UTC")


def _everything(err: BaseException) -> str:
    parts = [str(err), repr(err), repr(err.args), repr(getattr(err, "details", None)),
             repr(getattr(err, "value", None)), "".join(traceback.format_exception(err))]
    return "\n".join(parts)


def _raised(call: Any) -> BaseException:
    with pytest.raises(Exception) as caught:
        call()
    return caught.value


async def _first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def _trigger_event(trigger: Any) -> dict[str, Any]:
    return asyncio.run(asyncio.wait_for(_first_event(trigger), timeout=30))


@pytest.fixture
def mobizon_echo(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A Mobizon connection whose key holds + / = % &, and every call answered code 8 quoting it."""
    from tests.conftest import mobizon_conn_uri

    httpx.post(f"{sandbox_url}/_sandbox/mobizon/accounts", json={"api_key": MOBIZON_KEY}).raise_for_status()
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", mobizon_conn_uri(sandbox_url, api_key=MOBIZON_KEY))
    add_faults(sandbox_url, {"provider": "mobizon", "action": "mobizon_code", "code": 8, "times": None,
                             "message": f"Wrong API key: {echo(MOBIZON_KEY)}",
                             "data": {"apiKey": MOBIZON_KEY, "echo": echo(MOBIZON_KEY)}})
    return "mobizon_default"


@pytest.fixture
def bsg_account(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    httpx.post(f"{sandbox_url}/_sandbox/bsg/accounts", json={"api_key": BSG_KEY}).raise_for_status()
    conn = {"conn_type": "bsg", "host": sandbox_url, "password": BSG_KEY,
            "extra": {"retry_base_delay": 0.01, "retry_attempts": 1}}
    monkeypatch.setenv("AIRFLOW_CONN_BSG_DEFAULT", json.dumps(conn))
    return "bsg_default"


def _bsg_422(sandbox_url: str, path: str, secret: str, header: bool) -> None:
    if header:
        body = {"message": f"Bad header Authorization: Bearer {secret}",
                "errors": {"authorization": [f"Bearer {secret}", echo(secret)]}}
    else:
        body = {"message": "Invalid data", "errors": {"api_key": [f"{echo(secret)} is not allowed here"],
                                                      "phones0number": [f"not a phone: {secret}"]}}
    add_faults(sandbox_url, {"provider": "bsg", "path": path, "action": "http_status", "status": 422,
                             "body": body, "times": None})


def _login_token(conn_id: str) -> str:
    """A live JWT of the account (a login of its own): what a 422 may quote back."""
    from airflow_sms_provider.hooks.bsg import BsgHook

    hook = BsgHook(conn_id)
    hook.get_balance()
    token = hook.session._token
    assert token is not None
    hook.close()
    return token.value


# ------------------------------------------------------------------ raised exceptions and trigger events


def test_mobizon_code_8_echoing_the_key(mobizon_echo: str) -> None:
    from airflow_sms_provider.exceptions import SmsAuthError
    from airflow_sms_provider.hooks.mobizon import MobizonHook
    from airflow_sms_provider.triggers.mobizon import MobizonCampaignTrigger

    hook = MobizonHook(mobizon_echo)
    err = _raised(hook.get_balance)
    assert isinstance(err, SmsAuthError) and "8" in str(err)
    ok, message = hook.test_connection()
    event = _trigger_event(MobizonCampaignTrigger(mobizon_echo, 1, poll_interval=0.1))
    assert not ok and event["status"] == "error"
    assert not leaks("\n".join([_everything(err), message, json.dumps(event)]), {MOBIZON_KEY})


@pytest.mark.parametrize("header", [False, True], ids=["errors-echo-key", "quotes-authorization-jwt"])
def test_bsg_422_echoing_a_secret(sandbox_url: str, bsg_account: str, header: bool) -> None:
    from airflow_sms_provider.exceptions import SmsValidationError
    from airflow_sms_provider.hooks.bsg import BsgHook
    from airflow_sms_provider.triggers.bsg import BsgCampaignsTrigger

    secret = _login_token(bsg_account) if header else BSG_KEY
    _bsg_422(sandbox_url, r"/api/campaigns", secret, header)
    hook = BsgHook(bsg_account)
    err = _raised(lambda: hook.send_bulk(["380501234567"], "hello", sender="Sandbox"))
    assert isinstance(err, SmsValidationError), _everything(err)
    assert err.details  # the provider's per-field messages are kept, redacted
    event = _trigger_event(BsgCampaignsTrigger(bsg_account, [1], poll_interval=0.1))
    assert event["status"] == "error"
    text = "\n".join([_everything(err), json.dumps(event)])
    assert "422" in text
    assert not leaks(text, {BSG_KEY, secret})


# ------------------------------------------------------------------ task and trigger logs through dag.test()


def _run_captured(dag: Any, capfd: pytest.CaptureFixture[str]) -> tuple[Any, str]:
    started = time.time() - 1
    capfd.readouterr()
    with debug_logging() as recorder:
        run = run_dag(dag)
    out, err = capfd.readouterr()
    captured = "\n".join([out, err, *recorder.lines, *log_files(started)])
    # Airflow 3.0's own DEBUG line carrying the secret to its masker (test_secrets.AIRFLOW_MASKER_IPC).
    return run, "\n".join(line for line in captured.splitlines() if AIRFLOW_MASKER_IPC not in line)


# Airflow 3.0's in-process task log (dag.test) renders a failing task's traceback with every frame's
# locals (structlog + rich), outside the secrets masker. These checks were expected failures there while
# the parsers kept the echoing answer in a local; they hold on 3.0 too since the parsers do not (#12).
def test_mobizon_echo_stays_out_of_task_and_trigger_logs(
    airflow_db: None, mobizon_echo: str, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow.providers.common.compat.sdk import DAG

    from airflow_sms_provider.sensors.mobizon import MobizonCampaignSensor

    with DAG(dag_id="secret_echo_mobizon", schedule=None, start_date=START) as dag:
        MobizonCampaignSensor(task_id="poke", campaign_id=1, poke_interval=0.1, timeout=30, deferrable=False)
        MobizonCampaignSensor(task_id="deferred", campaign_id=1, poke_interval=0.1, timeout=30, deferrable=True)
    run, captured = _run_captured(dag, capfd)
    states = task_states(run)
    assert all(state.endswith("failed") for state in states.values()), states
    assert "Wrong API key" in captured, "the provider's message was not captured: nothing was checked"
    assert not leaks(captured, {MOBIZON_KEY})


@pytest.mark.parametrize("header", [False, True], ids=["errors-echo-key", "quotes-authorization-jwt"])
def test_bsg_echo_stays_out_of_task_and_trigger_logs(
    airflow_db: None, sandbox_url: str, bsg_account: str, header: bool, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow.providers.common.compat.sdk import DAG

    from airflow_sms_provider.sensors.bsg import BsgCampaignSensor

    secret = _login_token(bsg_account) if header else BSG_KEY
    _bsg_422(sandbox_url, r"/api/campaigns/\d+$", secret, header)
    with DAG(dag_id=f"secret_echo_bsg_{int(header)}", schedule=None, start_date=START) as dag:
        BsgCampaignSensor(task_id="poke", campaign_ids=[1], poke_interval=0.1, timeout=30, deferrable=False)
        BsgCampaignSensor(task_id="deferred", campaign_ids=[1], poke_interval=0.1, timeout=30, deferrable=True)
    run, captured = _run_captured(dag, capfd)
    states = task_states(run)
    assert all(state.endswith("failed") for state in states.values()), states
    assert "422" in captured, "the provider's answer was not captured: nothing was checked"
    assert not leaks(captured, {BSG_KEY, secret})


def test_httpx_request_line_shows_no_encoded_key(mobizon_echo: str) -> None:
    """The request line httpx logs carries the key percent-encoded: masked in every form."""
    from airflow_sms_provider.hooks.mobizon import MobizonHook

    with debug_logging() as recorder:
        _raised(MobizonHook(mobizon_echo).get_balance)
    assert any("HTTP Request:" in line for line in recorder.lines), recorder.lines
    assert not leaks("\n".join(recorder.lines), {MOBIZON_KEY})


def _package_frame_locals(exc: BaseException) -> str:
    """The locals of this package's frames, as a traceback that prints locals shows them (Airflow 3.0's task
    log, structlog's rich tracebacks under DEV=1, ``capture_locals``): the exception's frames and its causes."""
    import traceback

    lines: list[str] = []
    for part in (exc, exc.__cause__, exc.__context__):
        if part is None:
            continue
        stack = traceback.TracebackException.from_exception(part, capture_locals=True).stack
        lines += [f"{f.filename}:{f.lineno} {f.locals}" for f in stack if "airflow_sms_provider" in f.filename]
    assert lines, "no frame of the package in the traceback: nothing was checked"
    return "\n".join(lines)


def test_frame_locals_of_a_mobizon_echo_hold_no_form_of_the_key(mobizon_echo: str) -> None:
    from airflow_sms_provider.hooks.mobizon import MobizonHook

    hook = MobizonHook(mobizon_echo)
    raised = _raised(hook.get_balance)
    hook.close()
    assert not leaks(_package_frame_locals(raised), [MOBIZON_KEY])


@pytest.mark.parametrize("header", [False, True], ids=["key-in-errors", "jwt-in-authorization"])
def test_frame_locals_of_a_bsg_echo_hold_no_form_of_the_key_or_jwt(
    bsg_account: str, sandbox_url: str, header: bool
) -> None:
    from airflow_sms_provider.hooks.bsg import BsgHook

    token = _login_token(bsg_account)
    _bsg_422(sandbox_url, "/api/campaigns", token if header else BSG_KEY, header=header)
    hook = BsgHook(bsg_account)
    raised = _raised(lambda: hook.get_campaign_detail(4242))
    hook.close()
    assert not leaks(_package_frame_locals(raised), [BSG_KEY, token])
